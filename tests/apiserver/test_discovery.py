"""Discovery documents against upstream's shapes and against what clients parse.

The expected entries are copied from a real kube-apiserver's ``/api/v1`` (1.31): names, kinds,
verbs, short names, categories and storage version hashes must come out the same from our
resource table. The documents are also read back through the official Python client's models,
and the aggregated document is split the way client-go splits it, which must give back the
legacy per-group-version lists.
"""

from __future__ import annotations

import json
from email.message import Message
from typing import Any

import kubernetes.client
import pytest

from raftkube.apiserver import discovery, resources
from raftkube.apiserver.accept import DiscoveryFormat, negotiate_discovery
from raftkube.apiserver.request import Request

KUBECTL_132_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)


def _client_model(doc: Any, model: str) -> Any:
    """``doc`` read as the official Python client reads a response body of type ``model``."""
    client = kubernetes.client.ApiClient()
    return client.deserialize(json.dumps(doc), model, "application/json")


def _by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in doc["resources"]}


# Entries of a real 1.31 /api/v1, for the resources this server also serves.
UPSTREAM_CORE_V1 = [
    {"name": "bindings", "singularName": "binding", "namespaced": True, "kind": "Binding",
     "verbs": ["create"]},
    {"name": "configmaps", "singularName": "configmap", "namespaced": True, "kind": "ConfigMap",
     "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
     "shortNames": ["cm"], "storageVersionHash": "qFsyl6wFWjQ="},
    {"name": "endpoints", "singularName": "endpoints", "namespaced": True, "kind": "Endpoints",
     "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
     "shortNames": ["ep"], "storageVersionHash": "fWeeMqaN/OA="},
    {"name": "events", "singularName": "event", "namespaced": True, "kind": "Event",
     "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
     "shortNames": ["ev"], "storageVersionHash": "r2yiGXH7wu8="},
    {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace",
     "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
     "shortNames": ["ns"], "storageVersionHash": "Q3oi5N2YM8M="},
    {"name": "namespaces/finalize", "singularName": "", "namespaced": False, "kind": "Namespace",
     "verbs": ["update"]},
    {"name": "namespaces/status", "singularName": "", "namespaced": False, "kind": "Namespace",
     "verbs": ["get", "patch", "update"]},
    {"name": "nodes", "singularName": "node", "namespaced": False, "kind": "Node",
     "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
     "shortNames": ["no"], "storageVersionHash": "XwShjMxG9Fs="},
    {"name": "nodes/status", "singularName": "", "namespaced": False, "kind": "Node",
     "verbs": ["get", "patch", "update"]},
    {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
     "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
     "shortNames": ["po"], "categories": ["all"], "storageVersionHash": "xPOwRZ+Yhw8="},
    {"name": "pods/binding", "singularName": "", "namespaced": True, "kind": "Binding",
     "verbs": ["create"]},
    {"name": "pods/eviction", "singularName": "", "namespaced": True, "group": "policy",
     "version": "v1", "kind": "Eviction", "verbs": ["create"]},
    {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
    {"name": "pods/status", "singularName": "", "namespaced": True, "kind": "Pod",
     "verbs": ["get", "patch", "update"]},
    {"name": "replicationcontrollers", "singularName": "replicationcontroller", "namespaced": True,
     "kind": "ReplicationController",
     "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
     "shortNames": ["rc"], "categories": ["all"], "storageVersionHash": "Jond2If31h0="},
    {"name": "replicationcontrollers/scale", "singularName": "", "namespaced": True,
     "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]},
    {"name": "replicationcontrollers/status", "singularName": "", "namespaced": True,
     "kind": "ReplicationController", "verbs": ["get", "patch", "update"]},
    {"name": "secrets", "singularName": "secret", "namespaced": True, "kind": "Secret",
     "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
     "storageVersionHash": "S6u1pOWzb84="},
    {"name": "serviceaccounts", "singularName": "serviceaccount", "namespaced": True,
     "kind": "ServiceAccount",
     "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
     "shortNames": ["sa"], "storageVersionHash": "pbx9ZvyFpBE="},
    {"name": "serviceaccounts/token", "singularName": "", "namespaced": True,
     "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest",
     "verbs": ["create"]},
    {"name": "services", "singularName": "service", "namespaced": True, "kind": "Service",
     "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
     "shortNames": ["svc"], "categories": ["all"], "storageVersionHash": "0/CO1lhkEBI="},
    {"name": "services/status", "singularName": "", "namespaced": True, "kind": "Service",
     "verbs": ["get", "patch", "update"]},
]  # fmt: skip


def test_core_v1_resource_list_matches_upstream_entry_for_entry() -> None:
    doc = discovery.api_resource_list("", "v1")
    assert doc is not None
    assert doc["kind"] == "APIResourceList"
    assert "apiVersion" not in doc  # the core group's documents predate apiVersion
    assert doc["groupVersion"] == "v1"
    assert doc["resources"] == UPSTREAM_CORE_V1
    # upstream serialises the keys in this order; kubectl does not care, people reading it do
    assert list(doc["resources"][11]) == [
        "name", "singularName", "namespaced", "group", "version", "kind", "verbs",
    ]  # fmt: skip


def test_named_group_resource_lists() -> None:
    apps = discovery.api_resource_list("apps", "v1")
    assert apps is not None
    assert apps["apiVersion"] == "v1" and apps["groupVersion"] == "apps/v1"
    names = [r["name"] for r in apps["resources"]]
    assert names == [
        "deployments", "deployments/scale", "deployments/status",
        "replicasets", "replicasets/scale", "replicasets/status",
    ]  # fmt: skip
    deploy = _by_name(apps)["deployments"]
    assert deploy["shortNames"] == ["deploy"] and deploy["categories"] == ["all"]
    assert deploy["storageVersionHash"] == discovery.storage_version_hash(
        "apps", "v1", "Deployment"
    )
    reviews = discovery.api_resource_list("authorization.k8s.io", "v1")
    assert reviews is not None
    ssar = _by_name(reviews)["selfsubjectaccessreviews"]
    assert ssar["verbs"] == ["create"] and "storageVersionHash" not in ssar
    assert ssar["namespaced"] is False
    assert discovery.api_resource_list("apps", "v2") is None
    assert discovery.api_resource_list("nosuch.example.com", "v1") is None


def test_every_served_resource_is_in_discovery_once_with_its_subresources() -> None:
    for info in resources.RESOURCES:
        doc = discovery.api_resource_list(info.group, info.version)
        assert doc is not None
        entries = _by_name(doc)
        assert entries[info.resource]["kind"] == info.kind
        for sub in info.subresources:
            assert f"{info.resource}/{sub}" in entries


def test_legacy_root_documents_parse_with_the_python_client() -> None:
    versions = discovery.api_versions("10.0.0.1:6443")
    assert versions == {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}
        ],
    }
    parsed = _client_model(versions, "V1APIVersions")
    assert parsed.versions == ["v1"]
    assert parsed.server_address_by_client_cidrs[0].server_address == "10.0.0.1:6443"

    groups = discovery.api_group_list()
    assert groups["kind"] == "APIGroupList" and groups["apiVersion"] == "v1"
    names = [g["name"] for g in groups["groups"]]
    assert "" not in names
    assert names[:2] == ["apps", "coordination.k8s.io"]
    parsed_groups = _client_model(groups, "V1APIGroupList")
    rbac = next(g for g in parsed_groups.groups if g.name == "rbac.authorization.k8s.io")
    assert rbac.preferred_version.group_version == "rbac.authorization.k8s.io/v1"
    assert groups["groups"][0] == {
        "name": "apps",
        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
    }


def test_single_group_document() -> None:
    doc = discovery.api_group("apps")
    assert doc == {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": "apps",
        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
    }
    assert _client_model(doc, "V1APIGroup").name == "apps"
    assert discovery.api_group("") is None
    assert discovery.api_group("batch") is None


def test_resource_lists_parse_with_the_python_client() -> None:
    doc = discovery.api_resource_list("", "v1")
    parsed = _client_model(doc, "V1APIResourceList")
    eviction = next(r for r in parsed.resources if r.name == "pods/eviction")
    assert (eviction.group, eviction.version, eviction.kind) == ("policy", "v1", "Eviction")
    pods = next(r for r in parsed.resources if r.name == "pods")
    assert pods.short_names == ["po"] and pods.singular_name == "pod"


def _split_like_client_go(doc: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
    """client-go's ``SplitGroupsAndResources``: an ``APIResourceList`` per group version,
    each resource and subresource given the kind (and, where it differs, the group and
    version) of its ``responseKind``."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for group in doc["items"]:
        name = group["metadata"]["name"]
        for version in group["versions"]:
            gv = f"{name}/{version['version']}" if name else version["version"]
            rows = out.setdefault(gv, [])
            for r in version["resources"]:
                namespaced = r["scope"] == "Namespaced"
                kind = r["responseKind"]
                rows.append(
                    (
                        r["resource"],
                        r["singularResource"],
                        namespaced,
                        kind["group"],
                        kind["version"],
                        kind["kind"],
                        tuple(r["verbs"]),
                    )
                )
                for s in r.get("subresources", []):
                    sk = s["responseKind"]
                    rows.append(
                        (
                            f"{r['resource']}/{s['subresource']}",
                            "",
                            namespaced,
                            sk["group"],
                            sk["version"],
                            sk["kind"],
                            tuple(s["verbs"]),
                        )
                    )
            rows.sort()
    return out


@pytest.mark.parametrize("core", [True, False])
def test_aggregated_discovery_splits_back_into_the_legacy_lists(core: bool) -> None:
    doc = discovery.aggregated_discovery(core=core)
    assert doc["apiVersion"] == "apidiscovery.k8s.io/v2" and doc["kind"] == "APIGroupDiscoveryList"
    split = _split_like_client_go(doc)
    expected_groups = [""] if core else [g for g in resources.groups() if g]
    assert [item["metadata"]["name"] for item in doc["items"]] == expected_groups
    for gv, rows in split.items():
        group, _, version = gv.rpartition("/")
        legacy = discovery.api_resource_list(group, version)
        assert legacy is not None
        want = sorted(
            (r["name"], r["singularName"], r["namespaced"], r.get("group", ""),
             r.get("version", ""), r["kind"], tuple(r["verbs"]))
            for r in legacy["resources"]
        )  # fmt: skip
        assert rows == want
    parsed = _client_model(doc, "V2APIGroupDiscoveryList")
    assert parsed.items[0].versions[0].freshness == "Current"


def test_aggregated_pods_entry_has_upstreams_shape() -> None:
    doc = discovery.aggregated_discovery(core=True)
    pods = next(r for r in doc["items"][0]["versions"][0]["resources"] if r["resource"] == "pods")
    assert pods["responseKind"] == {"group": "", "version": "", "kind": "Pod"}
    assert pods["scope"] == "Namespaced" and pods["singularResource"] == "pod"
    assert pods["shortNames"] == ["po"] and pods["categories"] == ["all"]
    subs = {s["subresource"]: s for s in pods["subresources"]}
    assert subs["eviction"]["responseKind"] == {
        "group": "policy",
        "version": "v1",
        "kind": "Eviction",
    }
    assert subs["status"]["verbs"] == ["get", "patch", "update"]
    v2beta1 = discovery.aggregated_discovery(core=True, version="v2beta1")
    assert v2beta1["apiVersion"] == "apidiscovery.k8s.io/v2beta1"
    assert v2beta1["items"] == doc["items"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (KUBECTL_132_ACCEPT, DiscoveryFormat.AGGREGATED_V2),
        ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
         "application/json", DiscoveryFormat.AGGREGATED_V2BETA1),
        ("application/json", DiscoveryFormat.LEGACY),
        ("application/json, */*", DiscoveryFormat.LEGACY),
        ("", DiscoveryFormat.LEGACY),
        # a plain clause first does not stop a later aggregated one, as upstream's wrapper
        ("application/json, application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
         DiscoveryFormat.AGGREGATED_V2),
        # q orders the clauses
        ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList;q=0.5,"
         "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
         DiscoveryFormat.AGGREGATED_V2),
        # protobuf is not served, so its aggregated clause cannot be honoured
        ("application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
         "application/json", DiscoveryFormat.LEGACY),
        ("application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList",
         DiscoveryFormat.LEGACY),
    ],
)  # fmt: skip
def test_negotiate_discovery(header: str, expected: DiscoveryFormat) -> None:
    assert negotiate_discovery(header) is expected


def _get(path: str, **headers: str) -> Request:
    return Request("GET", path, {}, {k.replace("_", "-"): v for k, v in headers.items()})


def _content_type_params(value: str) -> tuple[str, dict[str, str]]:
    """Parse a Content-Type as Go's ``mime.ParseMediaType`` does (client-go's check)."""
    msg = Message()
    msg["content-type"] = value
    return msg.get_content_type(), dict(msg.get_params()[1:])


def test_served_aggregated_discovery_is_recognised_by_client_gos_content_type_check() -> None:
    resp = discovery.serve_discovery(_get("/apis", accept=KUBECTL_132_ACCEPT), "h:6443")
    assert resp is not None and resp.status == 200
    headers = dict(resp.headers)
    base, params = _content_type_params(headers["content-type"])
    assert base == "application/json"
    assert params == {"g": "apidiscovery.k8s.io", "v": "v2", "as": "APIGroupDiscoveryList"}
    assert json.loads(resp.body) == discovery.aggregated_discovery(core=False)
    assert headers["etag"] == '"' + discovery.etag(json.loads(resp.body)) + '"'
    assert headers["vary"] == "Accept"

    again = discovery.serve_discovery(
        _get("/apis", accept=KUBECTL_132_ACCEPT, if_none_match=headers["etag"]), "h:6443"
    )
    assert again is not None and again.status == 304 and again.body == b""


def test_served_legacy_documents() -> None:
    resp = discovery.serve_discovery(_get("/api", accept="application/json, */*"), "h:6443")
    assert resp is not None
    assert dict(resp.headers)["content-type"] == "application/json"
    assert json.loads(resp.body)["kind"] == "APIVersions"
    for path, kind in [
        ("/apis", "APIGroupList"),
        ("/api/v1", "APIResourceList"),
        ("/apis/apps", "APIGroup"),
        ("/apis/apps/v1", "APIResourceList"),
        ("/apis/coordination.k8s.io/v1/", "APIResourceList"),
    ]:
        served = discovery.serve_discovery(_get(path), "h:6443")
        assert served is not None and json.loads(served.body)["kind"] == kind, path
    for path in ["/api/v2", "/apis/batch", "/apis/apps/v2", "/apis/apps/v1/deployments", "/x"]:
        assert discovery.serve_discovery(_get(path), "h:6443") is None, path


def test_version_info_parses_and_names_the_release() -> None:
    info = discovery.version_info(git_commit="abc123", build_date="2026-01-01T00:00:00Z")
    assert (info["major"], info["minor"], info["gitVersion"]) == ("1", "32", "v1.32.0-raftkube")
    assert info["gitTreeState"] == "clean"
    assert info["platform"].count("/") == 1
    parsed = _client_model(info, "VersionInfo")
    assert parsed.git_version == "v1.32.0-raftkube" and parsed.git_commit == "abc123"
    resp = discovery.serve_version()
    assert json.loads(resp.body)["minor"] == "32"
