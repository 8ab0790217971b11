"""The simulated cluster's credentials: ``raftkube up``'s own plan, made once per process.

:func:`~raftkube.cluster.control_plane.plan_control_plane` writes the cluster CA, the API
server's serving certificate, a client certificate and kubeconfig per component and one per
simulated node, exactly as ``raftkube up --sim-nodes`` does. Making keys draws on the OS's
entropy, so the files differ from process to process; nothing a run decides depends on their
bytes (stream chunks are delivered whole, whatever their length), which is why a trace still
replays exactly in a new process with new keys. They are made once per process, in a
temporary directory removed at exit, because key generation and certificate signing would
otherwise dominate a short example.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import attrs

from raftkube.cluster.control_plane import ControlPlanePlan, plan_control_plane

MAX_NODES = 4
"""Simulated nodes with credentials in the plan (``sim-0`` ... ``sim-3``)."""


@attrs.frozen
class SimPKI:
    plan: ControlPlanePlan
    hosts: tuple[str, ...]
    """The API servers' hosts the serving certificate names."""


_cached: SimPKI | None = None


def sim_pki(api_hosts: tuple[str, ...], api_port: int) -> SimPKI:
    """The process's plan for API servers at ``https://HOST:api_port`` for each of
    ``api_hosts``: one serving certificate that names them all (as an HA control plane's
    servers share one), every kubeconfig naming the first."""
    global _cached
    if _cached is None or _cached.hosts != api_hosts or _cached.plan.port != api_port:
        directory = Path(tempfile.mkdtemp(prefix="raftkube-fuzz-pki-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        plan = plan_control_plane(
            directory, api_hosts[0], api_port, sim_nodes=MAX_NODES, extra_sans=api_hosts[1:]
        )
        _cached = SimPKI(plan, api_hosts)
    return _cached
