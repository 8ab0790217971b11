"""The deterministic simulated world the real implementation runs in.

``clock`` (per-host clocks over Trio's virtual time), ``network`` (Raft messages: latency,
loss, duplication, partitions), ``streams`` (byte streams between hosts over the same links
and partitions), ``disk`` (storage that loses unsynced writes on a crash), ``host`` (any
program's incarnations on one machine; a Raft member's in particular), ``world`` (the hosts
and their faults), ``driver`` (one Trio run stepped pass by pass from synchronous code, with
virtual time and timers), ``client`` (recorded KV requests and watches, in-process) and
``wire_client`` (the same through the real client library over the streams).
Import from the modules themselves; this package keeps its import cheap.
"""
