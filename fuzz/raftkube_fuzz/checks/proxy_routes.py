"""Where each kube-proxy would send traffic, judged against the Endpoints the API serves.

:func:`misrouted` is part of eventual stable reconciliation (the suite's end check adds its
problems to :func:`~raftkube_fuzz.checks.reconciliation.unreconciled`'s): once everything
healed and settled, every running proxier's endpoints for a Service port are exactly the ready
addresses (``addresses``, never ``notReadyAddresses``) that the port's Endpoints object lists
at the latest committed revision, port for port, and a port whose Endpoints list none (or
which has no Endpoints object) has no route at all. Ports are matched by name, as the
userspace proxier matches an Endpoints subset's port to the Service's.

It is computed here from the Endpoints objects directly, not with the proxier's own
:func:`~raftkube.proxy.servicemap.endpoints_map`, so a bug in that function would be seen too.
:func:`note_routes` also puts each change of a proxier's table on its node's lane of the
timeline. What it cannot see: connections (nothing in the simulated world listens on a
ClusterIP or in a pod, see :class:`~raftkube_fuzz.cluster.components.ProxyProcess`), and how
long a proxier ran behind during the run, only that it caught up by the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from raftkube.proxy.servicemap import HostPort, ServicePortName
from raftkube_fuzz.timeline import CHECK

if TYPE_CHECKING:
    from raftkube_fuzz.cluster.plane import ControlPlane
    from raftkube_fuzz.example import Run

Obj = dict[str, Any]
Routes = Mapping[ServicePortName, list[HostPort]]


def ready_routes(endpoints: Iterable[Obj]) -> dict[ServicePortName, list[HostPort]]:
    """The ready ``(ip, port)`` pairs of every TCP Service port the ``endpoints`` objects
    list, each sorted; ports without a ready address are left out."""
    out: dict[ServicePortName, set[HostPort]] = {}
    for obj in endpoints:
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        for subset in obj.get("subsets") or []:
            ips = [str(a["ip"]) for a in subset.get("addresses") or [] if a.get("ip")]
            for port in subset.get("ports") or []:
                if (port.get("protocol") or "TCP") != "TCP" or not isinstance(
                    port.get("port"), int
                ):
                    continue
                spn = ServicePortName(namespace, name, str(port.get("name") or ""))
                out.setdefault(spn, set()).update((ip, port["port"]) for ip in ips)
    return {spn: sorted(pairs) for spn, pairs in sorted(out.items()) if pairs}


def misrouted(endpoints: Iterable[Obj], proxies: Mapping[str, Routes | None]) -> list[str]:
    """Every Service port where a proxier (by node name, in ``proxies``; None for one whose
    proxier has not started) routes other than the ``endpoints`` objects' ready addresses
    (empty: every proxier is right)."""
    want = ready_routes(endpoints)
    problems: list[str] = []
    for node, routes in sorted(proxies.items()):
        if routes is None:
            problems.append(f"kube-proxy on {node} has not started")
            continue
        have = {spn: sorted(pairs) for spn, pairs in routes.items()}
        for spn in sorted(set(want) | set(have)):
            if have.get(spn, []) != want.get(spn, []):
                problems.append(
                    f"kube-proxy on {node} routes {spn} to {_show(have.get(spn, []))}, "
                    f"its Endpoints list {_show(want.get(spn, []))}"
                )
    return problems


def routes_by_node(plane: ControlPlane) -> dict[str, Routes | None]:
    """Where each up node's kube-proxy routes each Service port, by node name (None: its
    proxier has not started yet)."""
    return {
        node: None if process.proxy.proxier is None else process.proxy.proxier.routes()
        for node, process in plane.runtimes().items()
    }


def note_routes(run: Run, plane: ControlPlane) -> None:
    """Put each kube-proxy's table on its node's lane when it changes: what each proxier made
    of the Endpoints, for a person reading the timeline."""
    last = run.extras.setdefault("proxy_routes", {})
    for process in plane.runtimes().values():
        proxier = process.proxy.proxier
        text = "not started" if proxier is None else show_routes(proxier.routes())
        if last.get(process.env.name) != text:
            last[process.env.name] = text
            info = {"host": process.env.name}
            run.timeline.add(run.sim.now, None, CHECK, f"kube-proxy routes {text}", info)


def show_routes(routes: Routes) -> str:
    """A proxier's table in one line, each port's endpoints sorted (the ring's position is
    not part of where traffic may go), for the timeline."""
    text = "; ".join(f"{spn} -> {_show(sorted(pairs))}" for spn, pairs in sorted(routes.items()))
    return text or "nothing"


def _show(pairs: list[HostPort]) -> str:
    return "[" + ", ".join(f"{ip}:{port}" for ip, port in pairs) + "]" if pairs else "nothing"
