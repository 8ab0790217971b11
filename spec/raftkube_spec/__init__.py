"""raftkube's executable specification: pure models of Raft (:mod:`.raft`), of etcd's key/value
API (:mod:`.kv`), of the Kubernetes object API (:mod:`.kube`) and of the control loops that act
on it (:mod:`.control`).

Theory of operation
-------------------
Everything under this package is a *model*: immutable state, and functions from a state (plus
the label of an action) to its successor. The implementation in ``raftkube`` is checked against
these models; it may import the *vocabulary* (the event, message and entry types) but never the
transition functions or invariants, so the two stay independent implementations of one protocol.

Rules of what may live here:

* no I/O, no clock, no randomness, no threads; time, when a model needs it, is an explicit input;
* only the standard library and ``attrs``; nothing from ``raftkube`` or ``raftkube_fuzz``;
* state is built from frozen ``attrs`` classes, tuples and frozensets, so states hash and compare
  by value and a model checker can deduplicate them.

The one exception is :mod:`raftkube_spec.cli`, the thin shell that runs the model checker and
prints what it found; nothing else imports it.
"""
