"""A composed-model state as a few readable lines, for counterexample traces."""

from __future__ import annotations

from raftkube_spec.control.model import ClusterState
from raftkube_spec.control.records import (
    Endpoints,
    Lease,
    Node,
    Pod,
    Record,
    ReplicaSet,
    Service,
    Stamp,
)


def _stamp(t: Stamp | None) -> str:
    return "-" if t is None else f"{t.t:+d}s"


def record(r: Record) -> str:
    m = r.meta
    name = f"{m.kind}/{m.namespace + '/' if m.namespace else ''}{m.name}"
    extra = " deleting" if m.deleting else ""
    if m.finalizers:
        extra += f" finalizers={','.join(m.finalizers)}"
    if m.owners:
        extra += f" owners={','.join(o.name for o in m.owners)}"
    if isinstance(r, Node):
        taints = ",".join(f"{t.key.rpartition('/')[2]}:{t.effect}" for t in r.taints)
        extra += f" ready={r.ready}" + (f" taints={taints}" if taints else "")
    elif isinstance(r, Pod):
        extra += f" node={r.node or '-'} ready={r.ready}"
    elif isinstance(r, ReplicaSet):
        extra += f" replicas={r.replicas}"
    elif isinstance(r, Endpoints):
        extra += f" addresses={','.join(a.pod for a in r.addresses) or '-'}"
    elif isinstance(r, Service):
        extra += f" lb={r.load_balancer} ingress={r.ingress or '-'}"
    elif isinstance(r, Lease):
        extra += f" holder={r.holder or '-'} renew={_stamp(r.renew_time)}"
    return name + extra


def state(s: ClusterState, indent: str = "") -> str:
    lines = [record(r) for r in s.api.objects if r.meta.kind != "Namespace"]
    for m in s.machines:
        running = ",".join(m.running) or "-"
        lines.append(f"machine {m.name}: {'up' if m.connected else 'partitioned'}, runs {running}")
    for b in s.cloud.balancers:
        lines.append(f"cloud balancer {b.service} {b.ip} -> {','.join(b.targets) or '-'}")
    if s.cloud.routes:
        lines.append("cloud routes " + ", ".join(f"{n}:{c}" for n, c in s.cloud.routes))
    if any(offset for _, offset in s.offsets):
        lines.append("clocks " + ", ".join(f"{n} {o:+d}s" for n, o in s.offsets))
    return "\n".join(indent + line for line in lines)
