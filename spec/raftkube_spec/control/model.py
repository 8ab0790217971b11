"""The composed model: the API state, the loops, their informers, nodes, a clock, faults, users.

Theory of operation
-------------------
A :class:`ClusterState` holds the API's objects (a :class:`World`), the simulated cloud, the true
time, one :class:`Component` per loop (its view: the snapshot its informers last delivered, None
after a crash until the next delivery; and its memory), one :class:`Machine` per node (whether
its kubelet can reach the API, and the containers it runs) and the budgets of faults and user
changes left. The actions, each one atomic step:

* ``deliver C``: C's informers catch up: its view becomes the current API state (of the kinds
  it watches).
* ``run C``: C's loop reads its view (a live read for a loop that does a GET, as leader
  election does) and its own clock, and its requests are applied in order; a request the API
  refuses changes nothing and the loop goes on (a retry is a later step). Taken only if it
  changes something.
* ``crash C``: memory and view are lost; the restarted loop acts only after a delivery (it
  waits for its informers to sync, as every upstream controller does).
* ``kubelet N``: the kubelet stand-in of a connected machine (``kubelet.py``).
* ``partition N`` / ``heal N``: the machine loses or regains the API; its containers go on.
* ``tick``: time advances one second. Every clock reads true time plus a fixed offset (equal
  rates: client-go's leader election assumes exactly that).
* user changes named by the slice (scale, delete, flip readiness, terminate an instance...).

Crashes, partitions and heals spend the fault budget, user changes their own budget, so the
environment stops, as ESR needs. Only differences of times are ever read, so the state keeps
the present at 0 and a tick moves every stamp one second into the past, compressing those older
than the slice's horizon (:meth:`Model.tick`): the state space is finite, and ticking on is a
finite loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs

from raftkube_spec.control.records import Address, Lease, Meta, Node, Pod, Stamp, Toleration
from raftkube_spec.control.world import Request, World, apply

Step = Callable[[Any, World, int], tuple[Any, tuple[Request, ...]]]


@attrs.frozen
class Loop:
    name: str
    step: Step
    initial: Any
    live: bool = False
    """Reads the API directly (a GET) instead of an informer's view."""
    watches: tuple[str, ...] = ()
    """The kinds its informers watch (empty: every kind); its view holds only those."""

    def project(self, api: World) -> World:
        if not self.watches:
            return api
        return World(tuple(o for o in api.objects if o.meta.kind in self.watches))


@attrs.frozen
class Component:
    view: World | None
    memory: Any


@attrs.frozen
class Machine:
    name: str
    connected: bool = True
    running: tuple[str, ...] = ()


@attrs.frozen
class Instance:
    """A virtual machine of the simulated cloud."""

    node: str
    provider_id: str
    address: str
    exists: bool = True


@attrs.frozen
class Balancer:
    service: str
    ip: str
    targets: tuple[str, ...]


@attrs.frozen
class Cloud:
    """The simulated cloud provider's own state, which only its API changes."""

    instances: tuple[Instance, ...] = ()
    routes: tuple[tuple[str, str], ...] = ()
    """(node name, pod CIDR)."""
    balancers: tuple[Balancer, ...] = ()


@attrs.frozen(cache_hash=True)
class ClusterState:
    api: World
    components: tuple[Component, ...]
    machines: tuple[Machine, ...] = ()
    cloud: Cloud = Cloud()
    faults: int = 0
    changes: int = 0
    ticks: int = 0
    """Seconds the exploration may still let pass (a bound, as the Raft checker bounds terms;
    the fair schedule of the ESR check is not bound by it)."""
    offsets: tuple[tuple[str, int], ...] = ()
    """Each component's (or machine's) clock reads its offset: the present is always 0 (see
    :meth:`Model.tick`). Offsets are fixed for a run."""

    def clock(self, name: str) -> int:
        for who, offset in self.offsets:
            if who == name:
                return offset
        return 0

    def machine(self, name: str) -> Machine | None:
        return next((m for m in self.machines if m.name == name), None)


@attrs.frozen
class Action:
    verb: str
    target: str = ""

    def __str__(self) -> str:
        return f"{self.verb} {self.target}".strip()


UserChange = Callable[[ClusterState], ClusterState | None]
CloudStep = Callable[[Any, World, Cloud, int], tuple[Any, tuple[Request, ...], Cloud]]
Kubelet = Callable[[Machine, World, int], tuple[Machine, World]]


@attrs.frozen
class Model:
    """The actions of one slice: which loops run, what the environment may do, the bounds."""

    loops: tuple[Loop, ...]
    user: tuple[tuple[str, UserChange], ...] = ()
    kubelet: Kubelet | None = None
    crashes: bool = True
    partitions: bool = False
    ticks: bool = False
    horizon: int = 8
    constraint: Callable[[ClusterState], bool] = lambda s: True
    """A state constraint in TLC's sense: successors breaking it are not explored."""
    cloud_loops: tuple[tuple[str, CloudStep], ...] = ()
    """Loops that also call the cloud provider: their step gets and returns the cloud's state."""

    def run(self, s: ClusterState, index: int) -> ClusterState:
        loop, comp = self.loops[index], s.components[index]
        view = s.api if loop.live else comp.view
        if view is None:
            return s
        cloud = s.cloud
        calls = dict(self.cloud_loops).get(loop.name)
        if calls is not None:
            memory, requests, cloud = calls(comp.memory, view, cloud, s.clock(loop.name))
        else:
            memory, requests = loop.step(comp.memory, view, s.clock(loop.name))
        api = s.api
        for request in requests:
            api = apply(api, request) or api
        comps = list(s.components)
        comps[index] = Component(comp.view, memory)
        return attrs.evolve(s, api=api, components=tuple(comps), cloud=cloud)

    def deliver(self, s: ClusterState, index: int) -> ClusterState:
        comps = list(s.components)
        comps[index] = attrs.evolve(comps[index], view=self.loops[index].project(s.api))
        return attrs.evolve(s, components=tuple(comps))

    def kubelet_step(self, s: ClusterState, machine: Machine) -> ClusterState:
        if self.kubelet is None or not machine.connected:
            return s
        after, api = self.kubelet(machine, s.api, s.clock(machine.name))
        machines = tuple(after if m.name == machine.name else m for m in s.machines)
        return attrs.evolve(s, api=api, machines=machines)

    def successors(self, s: ClusterState) -> Iterator[tuple[Action, ClusterState]]:
        for n, loop in enumerate(self.loops):
            comp = s.components[n]
            if not loop.live:
                delivered = self.deliver(s, n)
                if delivered != s:
                    yield Action("deliver", loop.name), delivered
            t = self.run(s, n)
            if t != s:
                yield Action("run", loop.name), t
            if self.crashes and s.faults > 0 and comp != Component(None, loop.initial):
                crashed = Component(None, loop.initial)
                comps = (*s.components[:n], crashed, *s.components[n + 1 :])
                yield (
                    Action("crash", loop.name),
                    attrs.evolve(s, components=comps, faults=s.faults - 1),
                )
        for m in s.machines:
            t = self.kubelet_step(s, m)
            if t != s:
                yield Action("kubelet", m.name), t
            if self.partitions and s.faults > 0:
                flipped = attrs.evolve(m, connected=not m.connected)
                machines = tuple(flipped if x.name == m.name else x for x in s.machines)
                verb = "partition" if m.connected else "heal"
                yield Action(verb, m.name), attrs.evolve(s, machines=machines, faults=s.faults - 1)
        if self.ticks and s.ticks > 0:
            yield Action("tick"), attrs.evolve(self.tick(s), ticks=s.ticks - 1)
        if s.changes > 0:
            for name, change in self.user:
                t2 = change(s)
                if t2 is not None and t2 != s:
                    yield Action("user", name), attrs.evolve(t2, changes=s.changes - 1)

    def explore_successors(self, s: ClusterState) -> Iterator[tuple[Action, ClusterState]]:
        return ((a, t) for a, t in self.successors(s) if self.constraint(t))

    def fair_round(self, s: ClusterState) -> ClusterState:
        """One round of the fault-free fair schedule: every loop runs on the view it has, every
        connected kubelet acts, every informer delivers, and the clock ticks."""
        for n in range(len(self.loops)):
            s = self.run(s, n)
        for m in s.machines:
            current = s.machine(m.name)
            if current is not None:
                s = self.kubelet_step(s, current)
        for n, loop in enumerate(self.loops):
            if not loop.live:
                s = self.deliver(s, n)
        return self.tick(s) if self.ticks else s

    def canonical(self, s: ClusterState) -> ClusterState:
        """States are kept canonical by :meth:`tick` itself (``now`` is always 0)."""
        return s

    def tick(self, s: ClusterState) -> ClusterState:
        """One second passes: every stamp moves one second into the past, so ``now`` stays 0
        and the state space stays finite.

        A stamp ``horizon`` or more old is past every threshold any loop compares an age with,
        so its exact age does not matter, but its order and equality with the other stamps do
        (a Lease's renewTime is compared with the one last seen): stale stamps are renumbered
        ``-horizon-1``, ``-horizon-2``, ... from the newest, which keeps both."""
        stamps: set[int] = set()

        def collect(t: Stamp) -> Stamp:
            stamps.add(t.t)
            return t

        _walk(s, collect)
        stale = sorted((t - 1 for t in stamps if t - 1 < -self.horizon), reverse=True)
        moved = {t + 1: -self.horizon - 1 - rank for rank, t in enumerate(stale)}
        shifted: ClusterState = _walk(s, lambda t: Stamp(moved.get(t.t, t.t - 1)))
        return shifted


_STAMP_FREE = (str, int, bool, type(None), Meta, Pod, Toleration, Machine, Cloud, Address)
"""Values that hold no :class:`Stamp`, which the walk need not enter."""
_STAMPED = (Node, Lease)
"""The records that may hold a :class:`Stamp`."""


def _walk(value: Any, f: Callable[[Stamp], Stamp], memo: dict[int, Any] | None = None) -> Any:
    """``value`` with every :class:`Stamp` in it replaced by ``f(stamp)``.

    ``memo`` maps the id of each object already rewritten to its result, so a World shared by
    the API and several views (a delivery shares it) is rewritten once."""
    if isinstance(value, _STAMP_FREE):
        return value
    if isinstance(value, Stamp):
        return f(value)
    memo = {} if memo is None else memo
    key = id(value)
    if key in memo:
        return memo[key]
    if isinstance(value, World):
        objects = tuple(_walk(o, f, memo) if isinstance(o, _STAMPED) else o for o in value.objects)
        out: Any = value
        if any(a is not b for a, b in zip(objects, value.objects, strict=True)):
            out = World(objects, value.serial)
    elif isinstance(value, tuple):
        items = tuple(_walk(v, f, memo) for v in value)
        out = value if all(a is b for a, b in zip(items, value, strict=True)) else items
    elif attrs.has(type(value)):
        changes = {}
        for field in _fields(type(value)):
            old = getattr(value, field)
            new = _walk(old, f, memo)
            if new is not old:
                changes[field] = new
        out = attrs.evolve(value, **changes) if changes else value
    else:
        out = value
    memo[key] = out
    return out


_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields(cls: type) -> tuple[str, ...]:
    found = _FIELDS.get(cls)
    if found is None:
        found = _FIELDS[cls] = tuple(a.name for a in attrs.fields(cls))
    return found
