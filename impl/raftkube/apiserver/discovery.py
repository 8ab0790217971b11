"""Discovery: what kubectl and client-go read to learn which resources the server has.

Every document is computed from the resource table (:mod:`raftkube.apiserver.resources`), in
upstream's JSON shapes (``k8s.io/apimachinery/pkg/apis/meta/v1`` and
``k8s.io/api/apidiscovery/v2``), field names, order and omissions included:

* ``/api`` -> ``APIVersions``; ``/apis`` -> ``APIGroupList`` (named groups only);
  ``/apis/{group}`` -> ``APIGroup``;
* ``/api/v1`` and ``/apis/{group}/{version}`` -> ``APIResourceList``, resources sorted by
  name, each subresource its own ``pods/status`` entry with the kind and verbs upstream
  registers for it (``pods/eviction`` answers ``policy/v1 Eviction``, ``*/scale``
  ``autoscaling/v1 Scale``);
* ``/api`` and ``/apis`` with an ``Accept`` asking for it -> aggregated discovery
  (``APIGroupDiscoveryList``), which kubectl 1.32 asks for first: one request instead of one
  per group version;
* ``/version`` -> ``version.Info``, which client-go's discovery client also reads.

As upstream, the core group's documents (``/api``, ``/api/v1``) carry no ``apiVersion``
(they predate it), the others carry ``apiVersion: v1``. ``serverAddressByClientCIDRs`` (on
``/api`` only, as kube-apiserver serves it) is the single ``0.0.0.0/0`` entry naming the
server's external address; upstream's optional extra per-CIDR rules are not offered.
"""

from __future__ import annotations

import base64
import hashlib
import json
import platform
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from raftkube.apiserver import accept, resources
from raftkube.apiserver.request import Request, Response
from raftkube.apiserver.resources import ResourceInfo

KUBERNETES_MAJOR = "1"
KUBERNETES_MINOR = "32"
GIT_VERSION = "v1.32.0-raftkube"


@attrs.frozen
class Subresource:
    """How upstream registers one subresource: the kind its requests and answers carry
    (empty group/version: the parent's) and its verbs."""

    verbs: tuple[str, ...]
    kind: str = ""  # empty: the parent's kind
    group: str = ""
    version: str = ""


_STATUS_VERBS = ("get", "patch", "update")
SUBRESOURCES: Mapping[str, Subresource] = {
    "status": Subresource(_STATUS_VERBS),
    "finalize": Subresource(("update",)),
    "binding": Subresource(("create",), "Binding"),
    "eviction": Subresource(("create",), "Eviction", "policy", "v1"),
    "log": Subresource(("get",)),
    "scale": Subresource(_STATUS_VERBS, "Scale", "autoscaling", "v1"),
    "token": Subresource(("create",), "TokenRequest", "authentication.k8s.io", "v1"),
}


def storage_version_hash(group: str, version: str, kind: str) -> str:
    """Upstream's ``discovery.StorageVersionHash``: base64 of the first 8 bytes of
    sha256(``group/version/kind``)."""
    digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def server_address_by_client_cidrs(server_address: str) -> list[dict[str, str]]:
    return [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]


def _group_version(group: str, version: str) -> dict[str, str]:
    return {"groupVersion": f"{group}/{version}" if group else version, "version": version}


def api_versions(server_address: str) -> dict[str, Any]:
    """``GET /api``: the legacy core group's versions."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": server_address_by_client_cidrs(server_address),
    }


def _named_groups() -> list[str]:
    return [g for g in resources.groups() if g]


def _api_group_fields(group: str) -> dict[str, Any]:
    gv = _group_version(group, resources.GROUP_PREFERRED_VERSION[group])
    return {"name": group, "versions": [gv], "preferredVersion": gv}


def api_group(group: str) -> dict[str, Any] | None:
    """``GET /apis/{group}`` (None for a group not served)."""
    if not group or group not in resources.GROUP_PREFERRED_VERSION:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_api_group_fields(group)}


def api_group_list() -> dict[str, Any]:
    """``GET /apis``: every named group (the core group is at ``/api``). As kube-apiserver's
    (whose aggregator writes this list) the groups carry no ``serverAddressByClientCIDRs``."""
    groups = [_api_group_fields(name) for name in _named_groups()]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_resources(group: str, version: str) -> list[dict[str, Any]]:
    """The ``APIResource`` entries of one group version, subresources included, sorted by
    name as upstream lists them."""
    out: list[dict[str, Any]] = []
    for info in resources.in_group(group, version):
        out.append(_api_resource(info))
        for sub in info.subresources:
            out.append(_api_subresource(info, sub))
    out.sort(key=lambda r: str(r["name"]))
    return out


def _api_resource(info: ResourceInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": info.resource,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    if info.storage:
        entry["storageVersionHash"] = storage_version_hash(info.group, info.version, info.kind)
    return entry


def _api_subresource(info: ResourceInfo, name: str) -> dict[str, Any]:
    sub = SUBRESOURCES[name]
    entry: dict[str, Any] = {
        "name": f"{info.resource}/{name}",
        "singularName": "",
        "namespaced": info.namespaced,
    }
    if sub.group or sub.version:
        entry["group"] = sub.group
        entry["version"] = sub.version
    entry["kind"] = sub.kind or info.kind
    entry["verbs"] = list(sub.verbs)
    return entry


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    """``GET /api/v1`` or ``GET /apis/{group}/{version}`` (None for one not served)."""
    if not resources.in_group(group, version):
        return None
    doc: dict[str, Any] = {"kind": "APIResourceList"}
    if group:
        doc["apiVersion"] = "v1"
    doc["groupVersion"] = f"{group}/{version}" if group else version
    doc["resources"] = api_resources(group, version)
    return doc


def aggregated_discovery(*, core: bool, version: str = "v2") -> dict[str, Any]:
    """The ``APIGroupDiscoveryList`` served at ``/api`` (``core=True``: the core group only)
    or ``/apis`` (every named group), as ``apidiscovery.k8s.io/{version}`` (``v2`` or
    ``v2beta1``: the two have the same fields). Built from the ``APIResource`` lists as
    upstream's ``ConvertGroupVersionIntoToDiscovery`` does: a resource's ``responseKind``
    carries only its kind (empty group and version mean the enclosing group version),
    a subresource's the group and version it was registered with."""
    names = [""] if core else _named_groups()
    items = [_group_discovery(name) for name in names]
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"apidiscovery.k8s.io/{version}",
        "metadata": {},
        "items": items,
    }


def _group_discovery(group: str) -> dict[str, Any]:
    version = resources.GROUP_PREFERRED_VERSION[group]
    return {
        "metadata": {"name": group, "creationTimestamp": None},
        "versions": [
            {
                "version": version,
                "resources": _resource_discovery(api_resources(group, version)),
                "freshness": "Current",
            }
        ],
    }


def _resource_discovery(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    top: dict[str, dict[str, Any]] = {}
    subs: list[dict[str, Any]] = []
    for r in entries:
        if "/" in r["name"]:
            subs.append(r)
            continue
        doc: dict[str, Any] = {
            "resource": r["name"],
            "responseKind": {"group": "", "version": "", "kind": r["kind"]},
            "scope": "Namespaced" if r["namespaced"] else "Cluster",
            "singularResource": r["singularName"],
            "verbs": r["verbs"],
        }
        for key in ("shortNames", "categories"):
            if key in r:
                doc[key] = r[key]
        top[r["name"]] = doc
    for r in subs:
        parent, _, name = r["name"].partition("/")
        top[parent].setdefault("subresources", []).append(
            {
                "subresource": name,
                "responseKind": {
                    "group": r.get("group", ""),
                    "version": r.get("version", ""),
                    "kind": r["kind"],
                },
                "verbs": r["verbs"],
            }
        )
    return list(top.values())


def etag(document: Mapping[str, Any]) -> str:
    """Upstream's discovery ETag: upper-case hex sha512 of the JSON document."""
    return hashlib.sha512(_encode(document)).hexdigest().upper()


def version_info(*, git_commit: str = "", build_date: str = "") -> dict[str, str]:
    """``GET /version``. ``gitVersion`` says which Kubernetes API release this server
    follows (kubectl compares it with its own for its version-skew warning); the build
    fields describe the Python runtime where upstream names Go's."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    impl = sys.implementation
    return {
        "major": KUBERNETES_MAJOR,
        "minor": KUBERNETES_MINOR,
        "gitVersion": GIT_VERSION,
        "gitCommit": git_commit,
        "gitTreeState": "clean" if git_commit else "",
        "buildDate": build_date,
        "goVersion": f"{impl.name}{platform.python_version()}",
        "compiler": impl.name,
        "platform": f"{platform.system().lower()}/{arch}",
    }


def _encode(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def serve_discovery(req: Request, server_address: str) -> Response | None:
    """The response to a GET of a discovery path (``/api``, ``/apis``, ``/api/v1``,
    ``/apis/{group}``, ``/apis/{group}/{version}``), or None when ``req.path`` is not one
    (or names a group or version not served), for the caller's 404.

    ``/api`` and ``/apis`` are negotiated with :func:`accept.negotiate_discovery`; the
    aggregated answer carries its ETag, ``Vary: Accept`` and ``Cache-Control: public``, and a
    matching ``If-None-Match`` gets 304, as upstream's ``ServeHTTPWithETag``.
    """
    parts = [p for p in req.path.split("/") if p]
    doc: dict[str, Any] | None = None
    if parts in (["api"], ["apis"]):
        fmt = accept.negotiate_discovery(req.headers.get("accept", ""))
        core = parts == ["api"]
        if fmt is accept.DiscoveryFormat.LEGACY:
            doc = api_versions(server_address) if core else api_group_list()
            return _json_response(doc)
        doc = aggregated_discovery(core=core, version=fmt.value)
        tag = '"' + etag(doc) + '"'
        headers = (
            ("content-type", fmt.content_type),
            ("etag", tag),
            ("vary", "Accept"),
            ("cache-control", "public"),
        )
        if req.headers.get("if-none-match") == tag:
            return Response(304, headers, b"")
        return Response(200, headers, _encode(doc))
    if len(parts) == 2 and parts[0] == "api":
        doc = api_resource_list("", parts[1])
    elif len(parts) == 2 and parts[0] == "apis":
        doc = api_group(parts[1])
    elif len(parts) == 3 and parts[0] == "apis":
        doc = api_resource_list(parts[1], parts[2])
    return None if doc is None else _json_response(doc)


def serve_version(git_commit: str = "", build_date: str = "") -> Response:
    """The response to ``GET /version``."""
    return _json_response(version_info(git_commit=git_commit, build_date=build_date))


def _json_response(doc: Mapping[str, Any]) -> Response:
    return Response(200, (("content-type", accept.JSON),), _encode(doc))
