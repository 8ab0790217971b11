"""kube-scheduler: upstream's default scheduler, in Trio.

The decision is plain code over plain objects, so a checker can compare each decision with what
the specification allows from the same view: :mod:`.nodeinfo` (what a node and a pod amount to),
:mod:`.cache` (nodes, bound and *assumed* pods), :mod:`.filters` and :mod:`.scores` (the default
profile's plugins) and :mod:`.algorithm` (one decision: filter, score, select, or the
``FitError`` message). :mod:`.queue` is the scheduling queue with back-off, :mod:`.recorder`
writes pod conditions and Events, :mod:`.scheduler` is the process (informers, the scheduling
loop, concurrent bindings) and :mod:`.cli` is ``raftkube scheduler``.
"""
