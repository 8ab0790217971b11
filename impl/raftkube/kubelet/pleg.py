"""The pod lifecycle event generator: upstream's ``GenericPLEG`` in one function.

Once a second (``relistPeriod``) the runtime's containers are listed, and every pod one of
whose containers appeared, changed state or vanished since the last list is reported, so its
worker syncs at once instead of at its next resync. One list serves every pod of the node,
which is what lets a worker otherwise sleep until its own next deadline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from raftkube.clock import Clock, sleep_for
from raftkube.runtime.interface import ContainerRuntimeError, ContainerState, RuntimeService

RELIST_PERIOD = 1.0
POD_UID = "io.kubernetes.pod.uid"
log = logging.getLogger(__name__)


def changed_pods(
    before: dict[str, tuple[str, ContainerState]], after: dict[str, tuple[str, ContainerState]]
) -> set[str]:
    """The pod uids with a container (id -> (pod uid, state)) new, changed or gone."""
    pods = {after[cid][0] for cid in after if before.get(cid) != after[cid]}
    pods |= {before[cid][0] for cid in before if cid not in after}
    return pods


async def relist(
    runtime: RuntimeService,
    clock: Clock,
    notify: Callable[[str], None],
    period: float = RELIST_PERIOD,
) -> None:
    """Call ``notify(pod_uid)`` for every pod whose containers changed; runs until cancelled."""
    last: dict[str, tuple[str, ContainerState]] = {}
    while True:
        try:
            listed = await runtime.list_containers()
        except (ContainerRuntimeError, OSError) as exc:
            log.warning("relisting the runtime failed: %s", exc)
        else:
            now = {c.id: (c.labels.get(POD_UID, ""), c.state) for c in listed}
            for uid in changed_pods(last, now):
                notify(uid)
            last = now
        await sleep_for(clock, period)
