"""A pure specification of the control loops, composed with the API and checked.

Theory of operation
-------------------
Each control loop is one pure function ``sync(memory, view, clock) -> (memory, requests)``: its
view is the snapshot of the API its informers last delivered (a possibly stale World, see
``world.py``), its memory is what upstream keeps in the process (the scheduler's assumed pods,
the ReplicaSet expectations, the node health map, the elector's observed record), and its clock
is its own reading. Loops never see the API directly, except leader election, which does a
GET as client-go does. Records are small abstract objects with a documented mapping to the API
objects (``records.py``), so that a fuzzer can compare a real controller's requests with the
spec's from the same view.

Modules, one loop each: ``scheduler``, ``replicaset``, ``deployment``, ``endpoints``,
``accounts`` (service accounts, tokens, the token authenticator, namespaces),
``nodelifecycle`` (node lifecycle and taint eviction), ``gc``, ``election``, ``cloud`` (cloud
node, route and service controllers on a simulated provider). ``kubelet`` is a stand-in for
the next issue's kubelet. ``model`` composes them with nodes, faults, a clock and users;
``slices`` cuts the composition into exhaustively checkable pieces; ``properties`` and ``esr``
say what is checked; ``check`` runs the breadth-first explorer over a slice; ``mutants`` holds
the classic bugs the checks must catch.

Simplifications, each stated where it is made: a view is one consistent snapshot (upstream's
informers lag per resource); a loop's requests in one step are applied together; times are
whole seconds with small thresholds; no loop sees a request fail except through its next view.

Rules for this package: pure and deterministic; standard library and ``attrs`` only; frozen
``attrs`` state; ``mypy --strict`` clean.
"""
