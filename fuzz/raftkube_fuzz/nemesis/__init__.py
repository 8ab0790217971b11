"""``raftkube fuzz nemesis``: a Jepsen-style test of real member processes.

The simulation (:mod:`raftkube_fuzz.world`) controls everything and so can only find what its
models of processes, sockets, disks and clocks let happen. This package checks the same
properties on the real thing: three ``raftkube member`` processes on loopback
(:mod:`.cluster`), their Raft traffic through relays the nemesis can cut
(:mod:`.relay`), a seeded schedule of SIGKILLs, SIGSTOPs and partitions (:mod:`.schedule`,
:mod:`.faults`), the ``kv`` suite's requests from concurrent clients (:mod:`.workload`), and
at the end the fuzzer's own linearizability and watch checkers plus a count of lost
acknowledged writes (:mod:`.verdict`). :mod:`.runner` ties one run together; docs/nemesis.md
explains it.
"""
