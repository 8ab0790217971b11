"""The deterministic simulated world the real implementation runs in.

``clock`` (per-member clocks over Trio's virtual time), ``network`` (latency, loss,
duplication, partitions), ``disk`` (storage that loses unsynced writes on a crash), ``host``
(one member's incarnations), ``world`` (the cluster and its faults), ``driver`` (one Trio
run stepped pass by pass from synchronous code, with virtual time and timers) and ``client``
(recorded KV requests and watches).
Import from the modules themselves; this package keeps its import cheap.
"""
