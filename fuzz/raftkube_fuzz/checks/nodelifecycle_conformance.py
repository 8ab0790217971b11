"""Request conformance of the node lifecycle controller and of taint-based eviction.

The rules here are pure functions of what the loops had seen when they sent a request; the
suite's monitor (:mod:`raftkube_fuzz.cluster.nodelifecycle_monitor`) collects it. The spec is
:mod:`raftkube_spec.control.nodelifecycle`: :meth:`NodeLifecycle.sync` is one atomic step
(health, NoSchedule taints, zone states, NoExecute taints), :meth:`TaintEviction.sync` another.
The real controller (:mod:`raftkube.controllers.nodelifecycle`, upstream's) splits the first
into loops that run at their own pace: the *monitor* pass (every ``--node-monitor-period``:
health, the Unknown status writes, NoExecute taints swapped or taken off at once, and at its end
the zone states and each zone's tainting rate), the *tainting* pass (every 100 ms: the nodes the
monitor queued get their NoExecute taint as their zone's rate limiter allows) and the
*NoSchedule* worker (one node per sync). Each request is judged against the view of the loop
that decided it, with the memory that loop keeps:

* **NoSchedule taint writes** (:func:`no_schedule_write`; worker ``node-lifecycle-noschedule``,
  upstream's ``doNoScheduleTaintingPass``). The spec gives a node that is not Ready the
  ``not-ready`` (Ready False) or ``unreachable`` (Ready Unknown) NoSchedule taint and takes it
  off otherwise. The worker writes the whole taint list, computed from the node it had read (its
  *base*: the cached node, or a fresh GET after a conflict) with the additions and removals
  decided from its view; so a controller taint the written list has and the base did not is
  *added*, and one the base had and the list has not is *removed*. Allowed iff every one added
  is the one the view's Ready condition calls for, every one removed is not, and no NoExecute
  taint changes. The other NoSchedule taints (pressure conditions, ``unschedulable``) are not
  judged: the spec does not model them.
* **NoExecute taints added by the tainting pass** (:func:`tainting_write`; one decision per node
  taken off a zone's queue, upstream's ``doNoExecuteTaintingPass``). The taint added must be the
  one the decision's view of the node calls for (False: ``not-ready``, Unknown:
  ``unreachable``), the opposite one may go, nothing else changes. *Master disruption*: the spec
  taints nothing while every zone is fully disrupted. The real decision is the zone's rate
  limiter, which the monitor pass sets at its *end*, from the Ready statuses it judged, while
  the tainting pass runs on its own; so a node queued before the pass that sees every node down
  can still be tainted until that pass ends (upstream's behaviour, not a bug). The rule
  therefore asks what the limiter certainly is (:func:`master_disruption`): refused when the
  monitor passes that *completed* before the decision end with a run of passes that each found
  every counted node not Ready, the run began with the controller entering master disruption
  (its first pass, or a pass after one that found a Ready node in a zone the run's first pass
  still counts: upstream's ``handleDisruption`` then sets every zone's rate to 0), the node's
  zone was counted in every pass of the run (a zone that drops out and comes back gets a fresh
  queue at the normal rate), and the pass under way, if any, has seen no Ready node yet (it may
  end the mode). A pass whose status write for some node failed is not known exactly (upstream
  may then not count the node) and judges nothing. Ready is the Ready condition ``True``; nodes
  labelled ``exclude-disruption`` count in no zone.
* **NoExecute taints swapped or removed by the monitor pass** (:func:`monitor_taint_write`;
  upstream's ``processTaintBaseEviction`` and ``markNodeAsReachable``). Departures from the
  spec's single step, all upstream's: a node already tainted ``unreachable`` that reads Ready
  False gets ``not-ready`` at once (and back), without the rate limiter and whatever the zone
  states (the spec would rate-limit the new key); and a node the controller incarnation sees for
  the first time (after a restart, or back after being deleted) has its NoExecute taints taken
  off whatever its condition (upstream's ``monitorNodeHealth`` calls ``markNodeAsReachable`` for
  every node it adds). So a monitor pass's taint write is allowed iff it adds no NoSchedule or
  NoExecute taint but the swap's (the base, or a state of the node the pass read, its cached one
  or a GET, has the opposite NoExecute taint: the swap is decided on what the pass read, and
  another manager may have changed the node since; and some state read calls for the new key; a
  node without a Ready condition reads Unknown, as upstream's observed condition does), and each
  NoExecute taint it removes is the swapped one, or the node is new to this incarnation (it was
  not in the previous pass's view), or some state read shows it Ready, or the pass may be
  entering master disruption (no counted node it judged Ready, or a status write of the pass
  failed so that this cannot be told).
* **The status write setting Ready Unknown** (:func:`status_write`; upstream's
  ``tryUpdateNodeHealth``). The spec marks a node Unknown once its own clock has run more than
  ``grace`` past its *probe*: when it last saw the node's Lease ``renewTime`` change (the
  kubelet's clock, only compared). Upstream (and the real code) renews the probe when it reads a
  renewTime *later* than the one it saved (``Before``), or a changed Ready
  ``lastHeartbeatTime``, or first sees the node, or leaves master disruption. The rule needs a
  time that is certainly no later than the real probe (:func:`probe_bound`), so that the real
  code is never accused, and close to it, so that a wrong write is named: the later of (a) when
  the controller incarnation's first pass of the node's current stay began (it starts every
  node's probe when it first sees it), and (b) the last moment the controller was seen (a pass
  start, or a status write) with a Lease cache at a revision before the first store revision
  whose renewTime was no earlier than the one its cache holds now: every renewTime the
  controller could have read before that moment was earlier, so its saved renewTime (no earlier
  than the current one, or it would have renewed the probe now) was read after it, and the probe
  with it. Allowed iff Ready is set Unknown and the clock at the write is more than ``grace``
  past that bound. Heartbeats in the node status are not followed (they only make the real probe
  later), nor the reset on leaving master disruption (the same). The node's grace is
  ``--node-monitor-grace-period``, or the startup grace for a node that never posted Ready.
* **Taint-based eviction** (:func:`eviction_delete`; worker ``taint-eviction-fire``, the DELETE
  and the ``DisruptionTarget`` status write before it). The spec evicts a pod bound to a node
  with a NoExecute taint it does not tolerate at once, and one it tolerates for
  ``tolerationSeconds`` once that long has passed on the manager's clock since it first saw the
  taint. The real manager's memory is its scheduled evictions: started by a sync of
  ``taint-eviction`` (a node's or a pod's) at that sync's clock reading, kept while later syncs
  see the pod tainted, cancelled by one that does not; the firing worker deletes when the time
  is up without looking again (the cancel comes from the syncs). The rule's memory is the same,
  gathered from every ``taint-eviction`` sync that looked at the pod (the pods of the node it
  syncs, or the pod itself): a *sighting* is the sync's clock reading and the delay its view
  gives (0: a taint not tolerated; the smallest ``tolerationSeconds`` of the tolerations that
  tolerate a taint; none: not tainted, tolerated for ever, or gone). A run of sightings with a
  delay, the same uid and no sighting without one between, starts at its first. Allowed iff some
  sighting before the request has delay 0, or one has ``start of its run + delay <= now``. This
  is sound although several syncs run at once: the eviction that fires was scheduled by some
  sync at its start, with that sync's delay, and the run that sync is in began no later. A later
  sighting without a delay does not take back an earlier run's claim: its sync may not have
  cancelled the eviction yet when it fired (a node's sync cancels its pods one after the other,
  awaiting an Event for each). Tolerations are matched as upstream's ``ToleratesTaint`` (keys,
  values, operators and effects; the spec's records have no values), and the delay is the
  smallest ``tolerationSeconds`` among *all* matching tolerations (upstream takes the first
  matching one per taint: never earlier).

What this cannot see: requests these loops should have made and did not (eventual stable
reconciliation and ``NoTaintingInFullDisruption`` judge those), the pods' Ready writes of
``node-lifecycle-pods`` and of the monitor pass (``MarkPodsNotReady``: the spec does not model
pod conditions), Events, and the rate limiter itself: one NoExecute taint per zone per 10 s is
not judged, because the limiter's bucket is refilled and replaced by ``handleDisruption`` at
moments the requests do not show (each rate change starts a new bucket, carrying only an empty
one's debt), so a sound bound would need the zone state of every pass, which a failed status
write makes unknowable; master disruption (rate 0) is judged as above.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from raftkube_spec.control.records import NO_EXECUTE, NO_SCHEDULE, NOT_READY, UNREACHABLE

Obj = Mapping[str, Any]

TaintKey = tuple[str, str]
"""(key, effect) of a taint."""

CONTROLLER_TAINTS = frozenset(
    (key, effect) for key in (NOT_READY, UNREACHABLE) for effect in (NO_SCHEDULE, NO_EXECUTE)
)
"""The taints the node lifecycle controller keeps; the rules judge changes of these only."""


def taint_keys(taints: Sequence[Obj] | None) -> frozenset[TaintKey]:
    """The controller's taints among ``taints`` (a node's ``spec.taints``)."""
    found = {(str(t.get("key") or ""), str(t.get("effect") or "")) for t in taints or ()}
    return frozenset(found & CONTROLLER_TAINTS)


def called_for(ready: str | None) -> str | None:
    """The taint key the spec gives a node whose Ready condition reads ``ready`` (None: no
    condition): ``not-ready`` for False, ``unreachable`` for Unknown, none when Ready."""
    return {"False": NOT_READY, "Unknown": UNREACHABLE}.get(ready or "")


def _opposite(key: str) -> str:
    return UNREACHABLE if key == NOT_READY else NOT_READY


def _names(keys: frozenset[TaintKey] | set[TaintKey]) -> list[str]:
    return sorted(f"{k.rpartition('/')[2]}:{e}" for k, e in keys)


def _changes(
    base: frozenset[TaintKey], written: frozenset[TaintKey], effect: str
) -> tuple[set[str], set[str]]:
    added = {k for k, e in written - base if e == effect}
    removed = {k for k, e in base - written if e == effect}
    return added, removed


# --- the NoSchedule worker ----------------------------------------------------------------------


def no_schedule_write(
    ready: str | None, base: frozenset[TaintKey], written: frozenset[TaintKey]
) -> str | None:
    """A taint write of the NoSchedule worker: ``ready`` is the view's Ready status of the
    node, ``base`` the controller taints of the node the write was computed from, ``written``
    those of the list written."""
    if _changes(base, written, NO_EXECUTE) != (set(), set()):
        return f"it changes NoExecute taints ({_names(base)} -> {_names(written)})"
    added, removed = _changes(base, written, NO_SCHEDULE)
    wanted = called_for(ready)
    wrong = sorted(added - {wanted} if wanted else added)
    if wrong:
        return f"it adds the NoSchedule taint {wrong} while its view shows Ready {ready!r}"
    if wanted in removed:
        return f"it removes the NoSchedule taint {wanted} while its view shows Ready {ready!r}"
    return None


# --- the tainting pass --------------------------------------------------------------------------


@attrs.frozen
class PassView:
    """One monitor pass as the rules read it: when it began (the controller's clock), each
    node of its view ``(name, zone, Ready status, counted in a zone)``, the nodes it wrote
    Ready Unknown for (answered 2xx) and those whose status write failed, and the Ready
    statuses of the nodes it read again (GETs)."""

    start: float
    nodes: tuple[tuple[str, str, str | None, bool], ...]
    unknown: frozenset[str] = frozenset()
    failed: frozenset[str] = frozenset()
    reread: tuple[str | None, ...] = ()

    def zones(self) -> frozenset[str]:
        return frozenset(zone for _, zone, _, counted in self.nodes if counted)

    def judged(self) -> dict[str, list[str | None]] | None:
        """The Ready status the pass judged each counted node to have, by zone (what
        ``handleDisruption`` reads at its end); None if a status write failed (the node may
        then be uncounted, or judged from a fresh read)."""
        if self.failed:
            return None
        out: dict[str, list[str | None]] = {}
        for name, zone, ready, counted in self.nodes:
            if counted:
                out.setdefault(zone, []).append("Unknown" if name in self.unknown else ready)
        return out

    def all_down(self) -> bool:
        """It judged every counted node not Ready (every zone fully disrupted)."""
        judged = self.judged()
        if not judged:
            return False
        return all(s != "True" for ss in judged.values() for s in ss)

    def saw_ready(self) -> bool:
        """Some counted node of its view, or some node it read again, was Ready."""
        return any(r == "True" for _, _, r, c in self.nodes if c) or "True" in self.reread


def master_disruption(
    completed: Sequence[PassView], current: PassView | None, zone: str
) -> str | None:
    """Why the tainting rate of ``zone`` is certainly 0 (master disruption) at a decision, or
    None: ``completed`` are the monitor passes of the incarnation that had ended before it,
    oldest first; ``current`` the one under way (or the last, if none was)."""
    i = len(completed)
    while i > 0 and completed[i - 1].all_down():
        i -= 1
    run = completed[i:]
    if not run or any(zone not in p.zones() for p in run):
        return None
    if i > 0:
        before = completed[i - 1].judged()
        if before is None:
            return None
        ready_zones = {z for z, ss in before.items() if "True" in ss}
        if not ready_zones & run[0].zones():
            return None
    if current is not None and current.saw_ready():
        return None
    return (
        f"the monitor passes that began at {run[0].start:.3f} to {run[-1].start:.3f} on its clock "
        f"({len(run)}) found every counted node not Ready, and the first entered master "
        "disruption, which stops tainting in every zone"
    )


def tainting_write(
    ready: str | None,
    base: frozenset[TaintKey],
    written: frozenset[TaintKey],
    disrupted: str | None,
) -> str | None:
    """A taint write of one tainting decision: ``ready`` the view's Ready status of the node;
    ``disrupted`` why master disruption holds (:func:`master_disruption`), or None."""
    if _changes(base, written, NO_SCHEDULE) != (set(), set()):
        return f"it changes NoSchedule taints ({_names(base)} -> {_names(written)})"
    added, removed = _changes(base, written, NO_EXECUTE)
    wanted = called_for(ready)
    if wanted is None and (added or removed):
        return f"its view shows the node Ready {ready!r}: the spec taints it no more"
    if added - {wanted} or removed - {_opposite(wanted or "")}:
        return (
            f"it adds {sorted(added)} and removes {sorted(removed)} (NoExecute) while its view "
            f"shows Ready {ready!r}: the spec's taint is {wanted}"
        )
    if added and disrupted is not None:
        return f"it adds the NoExecute taint {wanted} in master disruption: {disrupted}"
    return None


# --- the monitor pass ---------------------------------------------------------------------------


def monitor_taint_write(
    states: Sequence[str | None],
    new_node: bool,
    entering: bool,
    base: frozenset[TaintKey],
    written: frozenset[TaintKey],
    read: frozenset[TaintKey] = frozenset(),
) -> str | None:
    """A taint write of a monitor pass: ``states`` the node's Ready statuses the pass read
    (its view, its GETs) and ``read`` the controller taints of those reads; ``new_node``: the
    node was not in the previous pass's view; ``entering``: the pass may be entering master
    disruption."""
    if _changes(base, written, NO_SCHEDULE) != (set(), set()):
        return f"it changes NoSchedule taints ({_names(base)} -> {_names(written)})"
    added, removed = _changes(base, written, NO_EXECUTE)
    observed = {called_for(s if s is not None else "Unknown") for s in states}
    # The swap is decided on a node read earlier in the pass; the write's base is read at
    # once, and may have lost the old taint meanwhile (another manager acting).
    had = {k for k, e in base | read if e == NO_EXECUTE}
    for key in sorted(added):
        if _opposite(key) not in had:
            return (
                f"it adds the NoExecute taint {key} to a node without {_opposite(key)}: only "
                "the tainting pass, at its zone's rate, adds a new one"
            )
        if key not in observed:
            told = sorted(map(str, states))
            return f"it swaps in {key} while the node's Ready statuses it read were {told}"
    for key in sorted(removed):
        swapped = _opposite(key) in added
        if not (swapped or new_node or "True" in states or entering):
            return (
                f"it removes the NoExecute taint {key} from a node it had seen before, whose "
                f"Ready statuses it read were {sorted(map(str, states))}, in a pass that "
                "judged some counted node Ready (not master disruption)"
            )
    return None


# --- the status write ---------------------------------------------------------------------------


def parse_micro_time(stamp: str | None) -> datetime.datetime | None:
    """A ``metav1.MicroTime`` or ``Time`` (RFC 3339), None if absent or not one."""
    if not stamp:
        return None
    try:
        moment = datetime.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)


def first_revision_renewed(
    revisions: Sequence[int], times: Sequence[str | None], renew: str
) -> int | None:
    """The first revision at which the Lease held a renewTime no earlier than ``renew`` (one
    that cannot be compared counts, to err towards an earlier bound)."""
    target = parse_micro_time(renew)
    if target is None:
        return None
    for revision, stamp in zip(revisions, times, strict=True):
        if stamp is None:
            continue
        moment = parse_micro_time(stamp)
        if moment is None or moment >= target:
            return revision
    return None


def probe_bound(
    first_seen: float,
    observations: Sequence[tuple[float, int]],
    first_renewed: int | None,
) -> tuple[float, str]:
    """A time no later than the controller's probe of a node, and what it is: ``first_seen``
    its first pass of the node's stay; ``observations`` (clock, the Lease cache's revision),
    oldest first; ``first_renewed`` :func:`first_revision_renewed` of the renewTime its cache
    holds now."""
    bound, basis = first_seen, "(it first saw the node then)"
    if first_renewed is not None:
        before = [clock for clock, revision in observations if revision < first_renewed]
        if before and max(before) > bound:
            bound = max(before)
            basis = (
                f"(its Lease cache was still before revision {first_renewed}, which wrote the "
                "renewTime it holds now, then)"
            )
    return bound, basis


def status_write(
    ready_written: str | None, now: float, grace: float, bound: float, basis: str
) -> str | None:
    """A status write of a monitor pass: the Ready status it writes, the controller's clock
    at the write, the node's grace period and :func:`probe_bound`."""
    if ready_written != "Unknown":
        return f"it sets Ready {ready_written!r}: the controller only ever sets Unknown"
    if now <= bound + grace:
        return (
            f"its clock read {now:.3f} and it had seen the node's heartbeat at {bound:.3f} or "
            f"later {basis}: not yet {grace:g} s (its grace period) without one"
        )
    return None


# --- taint-based eviction -----------------------------------------------------------------------


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Upstream's ``Toleration.ToleratesTaint``."""
    effect, key = toleration.get("effect") or "", toleration.get("key") or ""
    if (effect and effect != taint.get("effect")) or (key and key != taint.get("key")):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def eviction_delay(tolerations: Sequence[Obj], taints: Sequence[Obj]) -> float | None:
    """How long the spec lets a pod with ``tolerations`` stay on a node with the NoExecute
    ``taints``: 0 if one is not tolerated, else the smallest ``tolerationSeconds`` among the
    matching tolerations (a non-positive one: 0); None: not tainted, or tolerated for ever."""
    if not taints:
        return None
    seconds: list[float] = []
    for taint in taints:
        matching = [t for t in tolerations if tolerates(t, taint)]
        if not matching:
            return 0.0
        seconds += [float(t["tolerationSeconds"]) for t in matching
                    if t.get("tolerationSeconds") is not None]  # fmt: skip
    if not seconds:
        return None
    return max(0.0, min(seconds))


@attrs.frozen
class Sighting:
    """A ``taint-eviction`` sync that looked at a pod: its clock reading at the start, the
    pod's uid in its view ("" if gone) and the delay its view gives (None: no eviction)."""

    start: float
    uid: str
    delay: float | None


def eviction_delete(now: float, sightings: Sequence[Sighting]) -> str | None:
    """An eviction request (the DELETE, or the status write before it) sent at ``now`` on the
    manager's clock, from the sightings of the pod (oldest first)."""
    run_start: float | None = None
    uid = None
    for seen in sightings:
        if seen.start > now:
            break
        if seen.delay is None or seen.uid != uid:
            run_start = None
        uid = seen.uid
        if seen.delay is None:
            continue
        if run_start is None:
            run_start = seen.start
        if seen.delay <= 0 or run_start + seen.delay <= now:
            return None
    if not sightings:
        return "the taint manager never saw the pod on a node with a NoExecute taint"
    last = sightings[-1]
    told = "gone" if not last.uid else (
        "not tainted or tolerated for ever" if last.delay is None else
        f"tolerating its taints for {last.delay:g} s"
    )  # fmt: skip
    return (
        f"its clock read {now:.3f}; no sync of the taint manager had seen the pod on a tainted "
        f"node it does not tolerate, nor had its tolerationSeconds run out since it first saw "
        f"it tainted ({len(sightings)} sightings, the last at {last.start:.3f}: {told})"
    )
