"""Leader election on a ``coordination.k8s.io/v1`` Lease: client-go's ``leaderelection``.

Candidates race to write their identity into one Lease; the holder renews it every
``retry_period`` and must succeed within ``renew_deadline``, or it stops leading. A candidate
takes the Lease over only once it has watched the record stay *unchanged* for
``leaseDurationSeconds`` of its **own** clock: expiry is judged by the local time elapsed since
this candidate last saw the record change (``observed_time``), never by comparing the record's
``renewTime`` with the local clock. So the candidates' clocks may be offset by any amount; what
must hold is that their clock *rates* agree closely enough that the holder, which stops at
``renew_deadline`` < ``lease_duration``, stops before any other candidate's lease_duration has
passed (client-go issue #448 is the bug of trusting ``renewTime`` instead).

There is no fencing: a deposed leader's in-flight writes may still land, as upstream.

:func:`may_acquire` and :func:`next_record` are the decision, as plain functions of what was
observed and the local time; :class:`LeaderElector` only moves data.
"""

from __future__ import annotations

import datetime
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import attrs
import trio

from raftkube.clock import Clock, move_on_after, sleep_for
from raftkube.controllers.events import NORMAL, EventRecorder
from raftkube.controllers.resources import LEASES
from raftkube.kubeclient import KubeAPIError, KubeClient, KubeConnectionError

logger = logging.getLogger("raftkube.controllers.leaderelection")

Obj = dict[str, Any]

JITTER_FACTOR = 1.2
"""client-go's ``JitterFactor``: acquisition retries wait retry_period * (1 + 1.2 * rand)."""


def micro_time(seconds: float) -> str:
    """A wall-clock time as ``metav1.MicroTime`` writes it."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@attrs.frozen
class LeaderElectionRecord:
    """client-go's ``LeaderElectionRecord``: a Lease's spec."""

    holder_identity: str
    lease_duration_seconds: int
    acquire_time: str
    renew_time: str
    leader_transitions: int

    @classmethod
    def from_spec(cls, spec: Obj) -> LeaderElectionRecord:
        return cls(
            holder_identity=str(spec.get("holderIdentity") or ""),
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=str(spec.get("acquireTime") or ""),
            renew_time=str(spec.get("renewTime") or ""),
            leader_transitions=int(spec.get("leaseTransitions") or 0),
        )

    def to_spec(self) -> Obj:
        spec: Obj = {
            "holderIdentity": self.holder_identity,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "leaseTransitions": self.leader_transitions,
        }
        if self.acquire_time:
            spec["acquireTime"] = self.acquire_time
        if self.renew_time:
            spec["renewTime"] = self.renew_time
        return spec


@attrs.frozen
class Now:
    """One reading of both of this host's clocks, as Go's ``time.Now()`` carries both: the
    monotonic clock that durations are measured on, and the wall clock that records are
    stamped with for people to read (which NTP may step, and which another host's may be
    offset from, so no decision compares it with another host's stamp)."""

    monotonic: float
    wall: float


def may_acquire(
    identity: str, record: LeaderElectionRecord, observed_time: float, now: Now
) -> bool:
    """Whether ``identity`` may write ``record``'s Lease now: it is free, ours, or its holder
    has not changed it for ``leaseDurationSeconds`` of our clock (``observed_time`` is our
    monotonic reading when we last saw it change)."""
    if not record.holder_identity or record.holder_identity == identity:
        return True
    return observed_time + record.lease_duration_seconds <= now.monotonic


def next_record(
    identity: str, old: LeaderElectionRecord | None, lease_duration: float, wall_now: float
) -> LeaderElectionRecord:
    """What ``identity`` writes to take or renew the Lease whose current record is ``old``:
    a renewal keeps the acquire time and transition count; a takeover counts a transition."""
    stamp = micro_time(wall_now)
    if old is None:
        return LeaderElectionRecord(identity, int(lease_duration), stamp, stamp, 0)
    if old.holder_identity == identity:
        return LeaderElectionRecord(
            identity, int(lease_duration), old.acquire_time, stamp, old.leader_transitions
        )
    return LeaderElectionRecord(
        identity, int(lease_duration), stamp, stamp, old.leader_transitions + 1
    )


class ResourceLock(Protocol):
    """client-go's ``resourcelock.Interface``: where the record lives."""

    identity: str

    async def get(self) -> LeaderElectionRecord | None:
        """The current record, None if there is no lock object; raises on other failures."""
        ...

    async def create(self, record: LeaderElectionRecord) -> None: ...

    async def update(self, record: LeaderElectionRecord) -> None:
        """Write over the object last read by :meth:`get` (a conflict raises)."""
        ...

    async def record_event(self, message: str) -> None:
        """Record ``"{identity} {message}"`` on the lock object, best effort."""
        ...

    def describe(self) -> str: ...


@attrs.define
class LeaseLock:
    """A :class:`ResourceLock` on the Lease ``namespace/name``, written with optimistic
    concurrency (the resourceVersion last read). With an ``event_recorder``, leadership
    changes are recorded as ``LeaderElection`` Events on the Lease, as upstream's are."""

    client: KubeClient
    namespace: str
    name: str
    identity: str
    event_recorder: EventRecorder | None = None
    _lease: Obj | None = attrs.field(init=False, default=None)

    async def get(self) -> LeaderElectionRecord | None:
        try:
            self._lease = await self.client.get(LEASES, self.name, namespace=self.namespace)
        except KubeAPIError as exc:
            if exc.code == 404:
                return None
            raise
        return LeaderElectionRecord.from_spec(self._lease.get("spec") or {})

    async def create(self, record: LeaderElectionRecord) -> None:
        body = {
            "apiVersion": LEASES.group_version,
            "kind": LEASES.kind,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": record.to_spec(),
        }
        self._lease = await self.client.create(LEASES, body, namespace=self.namespace)

    async def update(self, record: LeaderElectionRecord) -> None:
        if self._lease is None:
            raise RuntimeError("lease not initialized, call get or create first")
        body = dict(self._lease)
        body["spec"] = record.to_spec()
        self._lease = await self.client.update(LEASES, body, namespace=self.namespace)

    async def record_event(self, message: str) -> None:
        if self.event_recorder is None or self._lease is None:
            return
        subject = {
            "apiVersion": LEASES.group_version,
            "kind": LEASES.kind,
            "metadata": self._lease.get("metadata") or {},
        }
        await self.event_recorder.event(
            subject, NORMAL, "LeaderElection", f"{self.identity} {message}"
        )

    def describe(self) -> str:
        return f"{self.namespace}/{self.name}"


@attrs.define
class LeaderElectionConfig:
    """client-go's ``LeaderElectionConfig``, with its defaults as kube-controller-manager uses
    them (``--leader-elect-lease-duration`` and friends)."""

    lock: ResourceLock
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = False
    name: str = ""

    def __attrs_post_init__(self) -> None:
        if self.lease_duration <= self.renew_deadline:
            raise ValueError("leaseDuration must be greater than renewDeadline")
        if self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            raise ValueError("renewDeadline must be greater than retryPeriod*JitterFactor")
        if self.retry_period <= 0:
            raise ValueError("retryPeriod must be greater than zero")


@attrs.define(eq=False)
class LeaderElector:
    """Runs one candidate; see the module docstring. ``clock`` judges expiry and paces the
    loops; ``wall`` only stamps acquire and renew times into the record for people to read."""

    config: LeaderElectionConfig
    clock: Clock
    wall: Callable[[], float] = time.time
    rng: random.Random = attrs.field(factory=random.Random)
    observed_record: LeaderElectionRecord | None = attrs.field(init=False, default=None)
    observed_time: float = attrs.field(init=False, default=0.0)
    _reported_leader: str = attrs.field(init=False, default="")

    @property
    def identity(self) -> str:
        return self.config.lock.identity

    def is_leader(self) -> bool:
        """Whether the last record we wrote or read names us."""
        record = self.observed_record
        return record is not None and record.holder_identity == self.identity

    def get_leader(self) -> str:
        return self.observed_record.holder_identity if self.observed_record else ""

    def _observe(self, record: LeaderElectionRecord) -> None:
        self.observed_record = record
        self.observed_time = self.clock.now()

    async def try_acquire_or_renew(self) -> bool:
        """One attempt to take or renew the Lease (client-go's ``tryAcquireOrRenew``)."""
        lock = self.config.lock
        try:
            old = await lock.get()
            if old is None:
                record = next_record(self.identity, None, self.config.lease_duration, self.wall())
                await lock.create(record)
                self._observe(record)
                return True
            if old != self.observed_record:
                self._observe(old)
            assert self.observed_record is not None
            now = Now(self.clock.now(), self.wall())
            if not self.is_leader() and not may_acquire(
                self.identity, old, self.observed_time, now
            ):
                return False
            record = next_record(self.identity, old, self.config.lease_duration, now.wall)
            await lock.update(record)
        except (KubeAPIError, KubeConnectionError) as exc:
            logger.info(
                "%s: failed to acquire or renew %s: %s", self.identity, lock.describe(), exc
            )
            return False
        self._observe(record)
        return True

    def _report_transition(self) -> None:
        leader = self.get_leader()
        if leader != self._reported_leader:
            self._reported_leader = leader
            logger.info("%s: new leader elected: %s", self.config.lock.describe(), leader)

    async def acquire(self) -> None:
        """Return once we hold the Lease, retrying every jittered ``retry_period``."""
        while True:
            ok = await self.try_acquire_or_renew()
            self._report_transition()
            if ok:
                logger.info("%s: acquired lease %s", self.identity, self.config.lock.describe())
                return
            delay = self.config.retry_period * (1.0 + JITTER_FACTOR * self.rng.random())
            await sleep_for(self.clock, delay)

    async def renew(self) -> None:
        """Keep renewing every ``retry_period``; return once a renewal has not succeeded
        within ``renew_deadline`` (leadership lost). It writes nothing on the way out: the
        caller stops the leader's work first (see :meth:`run`)."""
        while True:
            renewed = False
            with move_on_after(self.clock, self.config.renew_deadline):
                while not (renewed := await self.try_acquire_or_renew()):
                    await sleep_for(self.clock, self.config.retry_period)
            self._report_transition()
            if not renewed:
                logger.info(
                    "%s: failed to renew lease %s", self.identity, self.config.lock.describe()
                )
                return
            await sleep_for(self.clock, self.config.retry_period)

    async def _record_started_leading(self) -> None:
        """The "became leader" Event, best effort and bounded by ``retry_period``, written
        beside the leader's work and its renewals rather than before them: upstream's
        recorder sends it in the background, and a write that waits on an unreachable server
        must neither delay the work nor hold up the renewals that keep the Lease."""
        with move_on_after(self.clock, self.config.retry_period):
            await self.config.lock.record_event("became leader")

    async def _record_stopped_leading(self) -> None:
        """The "stopped leading" Event, best effort and bounded by ``retry_period``. Upstream's
        recorder queues Events and sends them in the background, and the process exits on
        OnStoppedLeading at once, so the Event is often lost too; here it is written only
        after the leader's work has stopped, and a server that cannot be reached (whose
        write would wait out the client's timeout) delays the exit by one retry period."""
        with move_on_after(self.clock, self.config.retry_period):
            await self.config.lock.record_event("stopped leading")

    async def release(self) -> None:
        """Give the Lease up at once (an empty holder and a 1 s lease), if we hold it."""
        if not self.is_leader() or self.observed_record is None:
            return
        stamp = micro_time(self.wall())
        record = LeaderElectionRecord("", 1, stamp, stamp, self.observed_record.leader_transitions)
        try:
            await self.config.lock.update(record)
        except (KubeAPIError, KubeConnectionError) as exc:
            logger.info("%s: failed to release lease: %s", self.identity, exc)
            return
        self._observe(record)

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Acquire, then run ``lead()`` while renewing. Returns when leadership is lost (with
        ``lead`` cancelled) or when ``lead`` returns; the caller decides what losing means
        (kube-controller-manager exits)."""
        lost = False
        try:
            await self.acquire()
            async with trio.open_nursery() as nursery:

                async def leading() -> None:
                    await lead()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(leading)
                nursery.start_soon(self._record_started_leading)
                await self.renew()
                lost = True
                nursery.cancel_scope.cancel()
            # Only now, with lead() cancelled and finished, is the loss written down: a
            # deposed leader must not keep acting while an Event write waits on a server
            # it may be cut off from.
            if lost:
                await self._record_stopped_leading()
        finally:
            if self.config.release_on_cancel:
                with move_on_after(self.clock, self.config.renew_deadline) as scope:
                    scope.shield = True
                    await self.release()


class LeaderElectionLost(Exception):
    """The Lease was lost: a component must stop acting (upstream exits with "leaderelection
    lost"), so a restarted process competes afresh instead of acting on a stale belief."""


async def run_while_leading(
    client: KubeClient,
    lead: Callable[[], Awaitable[None]],
    *,
    component: str,
    namespace: str,
    name: str,
    identity: str,
    clock: Clock,
    wall: Callable[[], float],
    rng: random.Random,
    lease_duration: float,
    renew_deadline: float,
    retry_period: float,
) -> None:
    """Run ``lead`` only while holding the Lease ``namespace/name`` as ``identity`` (Events
    from ``component``); returns never: raises :class:`LeaderElectionLost` once it is lost."""
    recorder = EventRecorder(client, component, wall=wall)
    lock = LeaseLock(client, namespace, name, identity, recorder)
    config = LeaderElectionConfig(
        lock,
        lease_duration=lease_duration,
        renew_deadline=renew_deadline,
        retry_period=retry_period,
        name=name,
    )
    elector = LeaderElector(config, clock, wall=wall, rng=random.Random(rng.random()))
    await elector.run(lead)
    raise LeaderElectionLost("leaderelection lost")
