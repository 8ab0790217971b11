"""kubectl's columns for every kind served, computed on the server as upstream does.

Each printer follows its namesake in kubernetes ``pkg/printers/internalversion/printers.go``
(1.32): the same column definitions (names, types, wide-only priorities) and the same cell
values, with every cell computed as upstream's server computes it (``Wide: true``: the wide
columns are always filled; kubectl hides them unless ``-o wide``). Kinds upstream prints with
its default convertor (roles, cluster roles, the reviews) get ``Name`` and ``Created At``
(RFC 3339), as ``kubectl get clusterroles`` shows. Pods and nodes are in
:mod:`raftkube.apiserver.printers_pods`.

One departure: where upstream joins a Go set in map order (node roles, a load balancer's
addresses), the values here are sorted, so the output is the same on every call.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from raftkube.apiserver.printers_pods import NODE, POD
from raftkube.apiserver.printing import (
    AGE,
    AGE_DESCRIPTION,
    NAME,
    NAME_DESCRIPTION,
    Cells,
    Column,
    Object,
    Printer,
    as_int,
    as_list,
    as_str,
    creation_age,
    field,
    format_label_selector,
    format_labels,
    join_names,
    meta,
    name_of,
    parse_time,
    selector_string,
    since,
)

_WIDE_CONTAINERS = Column(
    "Containers", priority=1, description="Names of each container in the template."
)
_WIDE_IMAGES = Column(
    "Images", priority=1, description="Images referenced by each container in the template."
)


def _template_containers(obj: Object) -> tuple[str, str]:
    """``layoutContainerCells`` of the pod template: names and images, comma-joined."""
    containers = as_list(field(obj, "spec", "template", "spec", "containers"))
    return join_names(containers, "name"), join_names(containers, "image")


# ---- services and endpoints -----------------------------------------------------------------


def service_external_ip(svc: Object) -> str:
    """``getServiceExternalIP`` (wide): external IPs, a load balancer's addresses,
    ``<pending>`` while it has none, the external name, ``<none>``."""
    spec = field(svc, "spec")
    kind = as_str(field(spec, "type"))
    external = [as_str(ip) for ip in as_list(field(spec, "externalIPs"))]
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if kind == "LoadBalancer":
        lb: list[str] = []
        for ingress in as_list(field(svc, "status", "loadBalancer", "ingress")):
            value = as_str(field(ingress, "ip")) or as_str(field(ingress, "hostname"))
            if value and value not in lb:
                lb.append(value)
        lb.sort()
        if external:
            return ",".join(lb + external)
        return ",".join(lb) if lb else "<pending>"
    if kind == "ExternalName":
        return as_str(field(spec, "externalName"))
    return "<unknown>"


def _port_string(ports: list[Any]) -> str:
    pieces = []
    for port in ports:
        number, protocol = as_int(field(port, "port")), as_str(field(port, "protocol"))
        node_port = as_int(field(port, "nodePort"))
        pieces.append(
            f"{number}:{node_port}/{protocol}" if node_port > 0 else f"{number}/{protocol}"
        )
    return ",".join(pieces)


def service_cells(svc: Object, now: datetime) -> Cells:
    """``printService``."""
    cluster_ips = as_list(field(svc, "spec", "clusterIPs"))
    return [
        name_of(svc),
        as_str(field(svc, "spec", "type")),
        as_str(cluster_ips[0]) if cluster_ips else "<none>",
        service_external_ip(svc),
        _port_string(as_list(field(svc, "spec", "ports"))) or "<none>",
        creation_age(svc, now),
        format_labels(field(svc, "spec", "selector")),
    ]


SERVICE = Printer(
    (
        NAME,
        Column("Type", description="type determines how the Service is exposed."),
        Column("Cluster-IP", description="clusterIP is the IP address of the service."),
        Column(
            "External-IP",
            description="externalIPs is a list of IP addresses for which "
            "nodes in the cluster will also accept traffic for this service.",
        ),
        Column("Port(s)", description="The list of ports that are exposed by this service."),
        AGE,
        Column(
            "Selector",
            priority=1,
            description="Route service traffic to pods with label "
            "keys and values matching this selector.",
        ),
    ),
    service_cells,
)


def format_endpoints(endpoints: Object) -> str:
    """``formatEndpoints`` (all ports): up to three ``ip:port``, then ``+ N more...``."""
    subsets = as_list(endpoints.get("subsets"))
    if not subsets:
        return "<none>"
    shown: list[str] = []
    maximum, count, more = 3, 0, False
    for subset in subsets:
        addresses = [as_str(field(a, "ip")) for a in as_list(field(subset, "addresses"))]
        ports = as_list(field(subset, "ports"))
        if not ports:
            count += len(addresses)
            for ip in addresses:
                if len(shown) == maximum:
                    more = True
                    break
                shown.append(ip)
            continue
        for port in ports:
            count += len(addresses)
            for ip in addresses:
                if len(shown) == maximum:
                    more = True
                    break
                host = f"[{ip}]" if ":" in ip else ip
                shown.append(f"{host}:{as_int(field(port, 'port'))}")
    text = ",".join(shown)
    return f"{text} + {count - maximum} more..." if more else text


ENDPOINTS = Printer(
    (
        NAME,
        Column("Endpoints", description="The set of all endpoints is the union of all subsets."),
        AGE,
    ),
    lambda ep, now: [name_of(ep), format_endpoints(ep), creation_age(ep, now)],
)


# ---- workloads ------------------------------------------------------------------------------

_SELECTOR = Column(
    "Selector",
    priority=1,
    description="A label query over pods that should match the replica count.",
)


def deployment_cells(obj: Object, now: datetime) -> Cells:
    """``printDeployment``: READY is ``readyReplicas/spec.replicas``."""
    status = field(obj, "status")
    names, images = _template_containers(obj)
    selector = selector_string(field(obj, "spec", "selector"))
    return [
        name_of(obj),
        f"{as_int(field(status, 'readyReplicas'))}/{as_int(field(obj, 'spec', 'replicas'))}",
        as_int(field(status, "updatedReplicas")),
        as_int(field(status, "availableReplicas")),
        creation_age(obj, now),
        names,
        images,
        "<invalid>" if selector is None else selector,
    ]


DEPLOYMENT = Printer(
    (
        NAME,
        Column("Ready", description="Number of the pod with ready state"),
        Column(
            "Up-to-date",
            description="Total number of non-terminated pods targeted by this "
            "deployment that have the desired template spec.",
        ),
        Column(
            "Available",
            description="Total number of available pods (ready for at least "
            "minReadySeconds) targeted by this deployment.",
        ),
        AGE,
        _WIDE_CONTAINERS,
        _WIDE_IMAGES,
        _SELECTOR,
    ),
    deployment_cells,
)


def _replica_cells(obj: Object, now: datetime, selector: str) -> Cells:
    status = field(obj, "status")
    names, images = _template_containers(obj)
    return [
        name_of(obj),
        as_int(field(obj, "spec", "replicas")),
        as_int(field(status, "replicas")),
        as_int(field(status, "readyReplicas")),
        creation_age(obj, now),
        names,
        images,
        selector,
    ]


_REPLICA_COLUMNS = (
    NAME,
    Column("Desired", type="integer", description="Replicas is the number of desired replicas."),
    Column(
        "Current",
        type="integer",
        description="Replicas is the most recently observed number of replicas.",
    ),
    Column(
        "Ready", type="integer", description="The number of ready replicas for this replica set."
    ),
    AGE,
    _WIDE_CONTAINERS,
    _WIDE_IMAGES,
    _SELECTOR,
)

REPLICA_SET = Printer(
    _REPLICA_COLUMNS,
    lambda rs, now: _replica_cells(rs, now, format_label_selector(field(rs, "spec", "selector"))),
)
REPLICATION_CONTROLLER = Printer(
    _REPLICA_COLUMNS,
    lambda rc, now: _replica_cells(rc, now, format_labels(field(rc, "spec", "selector"))),
)


# ---- configuration, accounts, events, leases, RBAC ------------------------------------------


def _count(obj: Object, *keys: str) -> int:
    total = 0
    for key in keys:
        value = obj.get(key)
        total += len(value) if isinstance(value, (Mapping, list)) else 0
    return total


NAMESPACE = Printer(
    (NAME, Column("Status", description="The status of the namespace"), AGE),
    lambda ns, now: [name_of(ns), as_str(field(ns, "status", "phase")), creation_age(ns, now)],
)
SECRET = Printer(
    (
        NAME,
        Column("Type", description="Used to facilitate programmatic handling of secret data."),
        Column("Data", description="Data contains the secret data."),
        AGE,
    ),
    lambda s, now: [name_of(s), as_str(s.get("type")), _count(s, "data"), creation_age(s, now)],
)
CONFIG_MAP = Printer(
    (NAME, Column("Data", description="Data contains the configuration data."), AGE),
    lambda cm, now: [name_of(cm), _count(cm, "data", "binaryData"), creation_age(cm, now)],
)
SERVICE_ACCOUNT = Printer(
    (
        NAME,
        Column(
            "Secrets",
            description="Secrets is a list of the secrets in the same "
            "namespace that pods running using this ServiceAccount are allowed to use.",
        ),
        AGE,
    ),
    lambda sa, now: [name_of(sa), _count(sa, "secrets"), creation_age(sa, now)],
)
LEASE = Printer(
    (
        NAME,
        Column(
            "Holder",
            description="holderIdentity contains the identity of the holder of a current lease.",
        ),
        AGE,
    ),
    lambda le, now: [
        name_of(le),
        as_str(field(le, "spec", "holderIdentity")),
        creation_age(le, now),
    ],
)


def event_cells(ev: Object, now: datetime) -> Cells:
    """``printEvent``: LAST SEEN falls back to the first timestamp, the first to
    ``eventTime``; a series overrides both the last time and the count."""
    first = since(ev.get("firstTimestamp"), now)
    if parse_time(ev.get("firstTimestamp")) is None:
        first = since(ev.get("eventTime"), now)
    last = since(ev.get("lastTimestamp"), now)
    if parse_time(ev.get("lastTimestamp")) is None:
        last = first
    count = as_int(ev.get("count"))
    series = ev.get("series")
    if isinstance(series, Mapping):
        last = since(series.get("lastObservedTime"), now)
        count = as_int(series.get("count"))
    elif count == 0:
        count = 1
    involved = field(ev, "involvedObject")
    kind = as_str(field(involved, "kind")).lower()
    name = as_str(field(involved, "name"))
    component = as_str(field(ev, "source", "component")) or as_str(ev.get("reportingComponent"))
    host = as_str(field(ev, "source", "host")) or as_str(ev.get("reportingInstance"))
    return [
        last,
        as_str(ev.get("type")),
        as_str(ev.get("reason")),
        f"{kind}/{name}" if name else kind,
        as_str(field(involved, "fieldPath")),
        f"{component}, {host}" if host else component,
        as_str(ev.get("message")).strip(),
        first,
        count,
        name_of(ev),
    ]


EVENT = Printer(
    (
        Column(
            "Last Seen",
            description="The time at which the most recent occurrence of this event was recorded.",
        ),
        Column("Type", description="Type of this event (Normal, Warning)."),
        Column(
            "Reason",
            description="This should be a short, machine understandable string "
            "that gives the reason for the transition into the object's current status.",
        ),
        Column("Object", description="The object that this event is about."),
        Column("Subobject", priority=1, description="The field of the object the event is about."),
        Column("Source", priority=1, description="The component reporting this event."),
        Column(
            "Message", description="A human-readable description of the status of this operation."
        ),
        Column(
            "First Seen", priority=1, description="The time at which the event was first recorded."
        ),
        Column("Count", priority=1, description="The number of times this event has occurred."),
        Column("Name", priority=1, format="name", description=NAME_DESCRIPTION),
    ),
    event_cells,
)


def subjects_strings(subjects: Any) -> tuple[str, str, str]:
    """``SubjectsStrings``: users, groups and ``namespace/name`` service accounts, each
    joined with ``", "``."""
    users: list[str] = []
    groups: list[str] = []
    accounts: list[str] = []
    for s in as_list(subjects):
        kind, name = as_str(field(s, "kind")), as_str(field(s, "name"))
        if kind == "ServiceAccount":
            accounts.append(f"{as_str(field(s, 'namespace'))}/{name}")
        elif kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
    return ", ".join(users), ", ".join(groups), ", ".join(accounts)


def binding_cells(obj: Object, now: datetime) -> Cells:
    """``printRoleBinding`` / ``printClusterRoleBinding``: ROLE is ``Kind/name``."""
    ref = field(obj, "roleRef")
    role = f"{as_str(field(ref, 'kind'))}/{as_str(field(ref, 'name'))}"
    return [name_of(obj), role, creation_age(obj, now), *subjects_strings(obj.get("subjects"))]


def _binding_printer(what: str) -> Printer:
    return Printer(
        (
            NAME,
            Column(
                "Role",
                description="RoleRef can reference a Role in the current namespace "
                "or a ClusterRole in the global namespace.",
            ),
            AGE,
            Column("Users", priority=1, description=f"Users in the {what}"),
            Column("Groups", priority=1, description=f"Groups in the {what}"),
            Column("ServiceAccounts", priority=1, description=f"ServiceAccounts in the {what}"),
        ),
        binding_cells,
    )


ROLE_BINDING = _binding_printer("roleBinding")
CLUSTER_ROLE_BINDING = _binding_printer("clusterRoleBinding")


def created_at(obj: Object) -> str:
    """Upstream's default convertor's ``Created At`` cell: the creation time in RFC 3339,
    UTC, whole seconds (empty for an object without one, where upstream prints Go's zero
    time)."""
    ts = parse_time(meta(obj).get("creationTimestamp"))
    if ts is None:
        return "0001-01-01T00:00:00Z"
    return ts.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


DEFAULT = Printer(
    (NAME, Column("Created At", type="date", description=AGE_DESCRIPTION)),
    lambda obj, _now: [name_of(obj), created_at(obj)],
)

PRINTERS: Mapping[tuple[str, str], Printer] = {
    ("", "Pod"): POD,
    ("", "Node"): NODE,
    ("", "Service"): SERVICE,
    ("", "Endpoints"): ENDPOINTS,
    ("", "ReplicationController"): REPLICATION_CONTROLLER,
    ("", "Namespace"): NAMESPACE,
    ("", "Secret"): SECRET,
    ("", "ConfigMap"): CONFIG_MAP,
    ("", "ServiceAccount"): SERVICE_ACCOUNT,
    ("", "Event"): EVENT,
    ("apps", "Deployment"): DEPLOYMENT,
    ("apps", "ReplicaSet"): REPLICA_SET,
    ("coordination.k8s.io", "Lease"): LEASE,
    ("rbac.authorization.k8s.io", "RoleBinding"): ROLE_BINDING,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): CLUSTER_ROLE_BINDING,
}


def printer_for(group: str, kind: str) -> Printer:
    """The printer of a kind; upstream's default (Name, Created At) for the others."""
    return PRINTERS.get((group, kind), DEFAULT)
