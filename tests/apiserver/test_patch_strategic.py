"""Strategic merge patch: every directive kubectl sends, merge keys from the per-kind table, list
order, and the codes upstream answers malformed patches with."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftkube.apiserver import patch, resources
from raftkube.apiserver.errors import APIError

SMP = patch.STRATEGIC_MERGE_PATCH


def _smp(original: dict[str, Any], body: Any, hint: patch.SchemaHint = None) -> dict[str, Any]:
    before = copy.deepcopy(original)
    out = patch.apply_patch(SMP, original, json.dumps(body).encode(), hint)
    assert original == before  # the current object is never modified
    return out


def _error(original: dict[str, Any], body: Any) -> APIError:
    with pytest.raises(APIError) as info:
        _smp(original, body)
    return info.value


def _pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": list(containers), **spec},
    }


def _names(items: list[dict[str, Any]], key: str = "name") -> list[Any]:
    return [i[key] for i in items]


def test_containers_merge_by_name_and_env_by_name() -> None:
    pod = _pod(
        {"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]},
        {"name": "log", "image": "busybox"},
    )
    out = _smp(
        pod,
        {
            "spec": {
                "containers": [
                    {"name": "web", "image": "nginx:2", "env": [{"name": "B", "value": "2"}]}
                ]
            }
        },
    )
    web, log = out["spec"]["containers"]
    assert web == {
        "name": "web",
        "image": "nginx:2",
        # upstream's order: items the patch names first when the live list cannot place them
        "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}],
    }
    assert log == {"name": "log", "image": "busybox"}


def test_a_new_item_without_set_element_order_goes_before_the_live_ones() -> None:
    # As upstream's mergeSortedSlice: a patch item the live order does not know is taken
    # before a live-only item (kubectl patch -p adding an env var puts it first).
    out = _smp(_pod({"name": "a"}), {"spec": {"containers": [{"name": "b", "image": "x"}]}})
    assert _names(out["spec"]["containers"]) == ["b", "a"]


def test_lists_without_a_merge_strategy_are_replaced() -> None:
    pod = _pod({"name": "a"}, tolerations=[{"key": "k1", "operator": "Exists"}])
    out = _smp(pod, {"spec": {"tolerations": [{"key": "k2", "operator": "Exists"}]}})
    assert out["spec"]["tolerations"] == [{"key": "k2", "operator": "Exists"}]
    # ...and so are scalars and values of another type; null deletes.
    out = _smp(pod, {"spec": {"tolerations": None, "nodeName": "n1"}})
    assert "tolerations" not in out["spec"] and out["spec"]["nodeName"] == "n1"


def test_ports_merge_by_container_port_volume_mounts_by_mount_path() -> None:
    pod = _pod(
        {
            "name": "a",
            "ports": [{"containerPort": 80, "name": "http"}],
            "volumeMounts": [{"name": "v", "mountPath": "/data"}],
        }
    )
    out = _smp(
        pod,
        {
            "spec": {
                "containers": [
                    {
                        "name": "a",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}],
                        "volumeMounts": [{"mountPath": "/data", "readOnly": True}],
                    }
                ]
            }
        },
    )
    c = out["spec"]["containers"][0]
    assert c["ports"] == [
        {"containerPort": 80, "name": "http", "protocol": "TCP"},
        {"containerPort": 443},
    ]
    assert c["volumeMounts"] == [{"name": "v", "mountPath": "/data", "readOnly": True}]


def test_patch_delete_in_a_merging_list_removes_every_element_with_that_key() -> None:
    pod = _pod({"name": "a"}, {"name": "b"}, {"name": "a", "image": "dup"})
    out = _smp(pod, {"spec": {"containers": [{"$patch": "delete", "name": "a"}]}})
    assert out["spec"]["containers"] == [{"name": "b"}]


def test_patch_replace_in_a_list_takes_the_patch_list_literally() -> None:
    pod = _pod({"name": "a", "image": "1"}, {"name": "b"})
    out = _smp(pod, {"spec": {"containers": [{"name": "c", "image": "3"}, {"$patch": "replace"}]}})
    assert out["spec"]["containers"] == [{"name": "c", "image": "3"}]


def test_patch_replace_and_delete_on_maps() -> None:
    pod = _pod({"name": "a"})
    pod["metadata"]["labels"] = {"a": "1", "b": "2"}
    out = _smp(pod, {"metadata": {"labels": {"$patch": "replace", "c": "3"}}})
    assert out["metadata"]["labels"] == {"c": "3"}
    out = _smp(pod, {"metadata": {"labels": {"$patch": "delete"}}})
    assert out["metadata"]["labels"] == {}
    # A directive for a field the live object lacks is applied, not stored.
    out = _smp(pod, {"spec": {"securityContext": {"$patch": "replace", "runAsUser": 1}}})
    assert out["spec"]["securityContext"] == {"runAsUser": 1}


def test_retain_keys_clears_the_other_members_of_a_union() -> None:
    deploy = {
        "kind": "Deployment",
        "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}},
    }
    body = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert _smp(deploy, body)["spec"]["strategy"] == {"type": "Recreate"}
    # On a live object without the field, the directive is consumed, not stored.
    assert _smp({"kind": "Deployment", "spec": {}}, body)["spec"]["strategy"] == {
        "type": "Recreate"
    }
    # A patch key missing from the list is a malformed patch: 400 as upstream.
    err = _error(deploy, {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}})
    assert (err.code, err.reason, err.message) == (
        400,
        "BadRequest",
        "invalid patch format of retainKeys",
    )


def test_retain_keys_inside_a_merged_volume_switches_its_source() -> None:
    pod = _pod(
        {"name": "a"}, volumes=[{"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}}]
    )
    body = {
        "spec": {
            "$setElementOrder/volumes": [{"name": "v"}, {"name": "w"}],
            "volumes": [
                {"$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}, "name": "v"}
            ],
        }
    }
    out = _smp(pod, body)
    assert out["spec"]["volumes"] == [
        {"name": "v", "configMap": {"name": "cm"}},
        {"name": "w", "emptyDir": {}},
    ]


def test_set_element_order_orders_the_merged_list() -> None:
    pod = _pod({"name": "a"}, {"name": "b"}, {"name": "c"})
    body = {
        "spec": {
            "$setElementOrder/containers": [
                {"name": "c"},
                {"name": "a"},
                {"name": "d"},
                {"name": "b"},
            ],
            "containers": [{"name": "d", "image": "new"}],
        }
    }
    assert _names(_smp(pod, body)["spec"]["containers"]) == ["c", "a", "d", "b"]


def test_without_set_element_order_patch_items_take_the_patch_order_interleaved_by_live_order() -> (
    None
):
    # upstream's normalizeElementOrder: patch items [d, b'] in patch order, live-only [a, c]
    # inserted where the live order puts them before the next patch item.
    pod = _pod({"name": "a"}, {"name": "b"}, {"name": "c"})
    body = {"spec": {"containers": [{"name": "d"}, {"name": "b", "image": "x"}]}}
    assert _names(_smp(pod, body)["spec"]["containers"]) == ["d", "a", "b", "c"]


def test_finalizers_merge_as_a_set_and_delete_from_primitive_list() -> None:
    pod = _pod({"name": "a"})
    pod["metadata"]["finalizers"] = ["x/a", "x/b"]
    out = _smp(pod, {"metadata": {"finalizers": ["x/c", "x/a"]}})
    assert out["metadata"]["finalizers"] == ["x/c", "x/a", "x/b"]
    body = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x/a", "x/zzz"]}}
    assert _smp(pod, body)["metadata"]["finalizers"] == ["x/b"]
    # kubectl's form: the order, the additions and the deletions together.
    body = {
        "metadata": {
            "$setElementOrder/finalizers": ["x/b", "x/d"],
            "$deleteFromPrimitiveList/finalizers": ["x/a"],
            "finalizers": ["x/d"],
        }
    }
    assert _smp(pod, body)["metadata"]["finalizers"] == ["x/b", "x/d"]
    # Deleting from a list the object does not have removes nothing and adds nothing.
    bare = _pod({"name": "a"})
    body = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x/a"]}}
    assert "finalizers" not in _smp(bare, body)["metadata"]


def test_owner_references_merge_by_uid_conditions_by_type() -> None:
    pod = _pod({"name": "a"})
    pod["metadata"]["ownerReferences"] = [{"uid": "1", "name": "rs-1", "kind": "ReplicaSet"}]
    pod["status"] = {
        "conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "Initialized", "status": "True"},
        ]
    }
    body = {
        "metadata": {"ownerReferences": [{"uid": "1", "controller": True}]},
        "status": {
            "$setElementOrder/conditions": [{"type": "Initialized"}, {"type": "Ready"}],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    out = _smp(pod, body)
    assert out["metadata"]["ownerReferences"] == [
        {"uid": "1", "name": "rs-1", "kind": "ReplicaSet", "controller": True}
    ]
    assert out["status"]["conditions"] == [
        {"type": "Initialized", "status": "True"},
        {"type": "Ready", "status": "True"},
    ]


def test_service_ports_merge_by_port_and_node_addresses_by_type() -> None:
    svc = {"kind": "Service", "spec": {"ports": [{"port": 80, "targetPort": 8080}]}}
    out = _smp(svc, {"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443}]}})
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 8080, "name": "http"}, {"port": 443}]
    node = {"kind": "Node", "status": {"addresses": [{"type": "InternalIP", "address": "1"}]}}
    out = _smp(node, {"status": {"addresses": [{"type": "Hostname", "address": "n"}]}})
    assert _names(out["status"]["addresses"], "type") == ["Hostname", "InternalIP"]


def test_kubectl_apply_patch_for_a_deployment_image_change() -> None:
    """The patch kubectl apply sends when a manifest changes the image and adds a label (the
    three-way diff against last-applied-configuration, as CreateThreeWayMergePatch builds)."""
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"k": "v"}},
        "spec": {
            "replicas": 3,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]},
                        {"name": "sidecar", "image": "envoy"},
                    ]
                },
            },
        },
    }
    body = {
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}\n"},
            "labels": {"tier": "front"},
        },
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                    "containers": [{"image": "nginx:1.26", "name": "web"}],
                }
            }
        },
    }
    out = _smp(deploy, body, resources.lookup("apps", "v1", "deployments"))
    assert out["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert out["spec"]["strategy"] == deploy["spec"]["strategy"]
    containers = out["spec"]["template"]["spec"]["containers"]
    assert containers == [
        {"name": "web", "image": "nginx:1.26", "ports": [{"containerPort": 80}]},
        {"name": "sidecar", "image": "envoy"},
    ]


def test_the_lookup_can_come_from_the_caller() -> None:
    doc = {"kind": "Widget", "items": [{"id": 1, "v": "a"}]}

    def lookup(path: tuple[str, ...]) -> tuple[str | None, str]:
        return ("id", "merge") if path == ("items",) else (None, "")

    out = _smp(doc, {"items": [{"id": 1, "w": "b"}, {"id": 2}]}, lookup)
    assert out["items"] == [{"id": 1, "v": "a", "w": "b"}, {"id": 2}]
    # Without it, an unknown kind's lists are atomic.
    assert _smp(doc, {"items": [{"id": 2}]})["items"] == [{"id": 2}]


def test_a_merging_list_element_without_its_merge_key_is_upstreams_500() -> None:
    err = _error(_pod({"name": "a"}), {"spec": {"containers": [{"image": "nginx"}]}})
    assert (err.code, err.reason) == (500, "")
    assert err.message == "map: map[image:nginx] does not contain declared merge key: name"
    # A list the live object lacks is taken as sent, for the kind's validation to judge.
    bare = {"kind": "Pod", "spec": {}}
    body = {"spec": {"containers": [{"image": "nginx"}], "hostAliases": [{"ip": "1"}, 2]}}
    assert _smp(bare, body)["spec"] == body["spec"]


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"spec": {"containers": [{"$patch": "merge", "name": "a"}]}}, 500,
         "merging lists cannot yet be specified in the patch"),
        ({"spec": {"$patch": "frob"}}, 500, "unknown patch type: frob in map: map[$patch:frob]"),
        ({"spec": {"$setElementOrder/containers": "a"}}, 400,
         "invalid patch format of setElementOrder list"),
        ({"spec": {"$setElementOrder": []}}, 400, "invalid patch format of setElementOrder list"),
        ({"metadata": {"$deleteFromPrimitiveList": []}}, 400,
         "invalid patch format of primitive list"),
        ({"spec": {"$retainKeys": "a"}}, 400, "invalid patch format of retainKeys"),
        ({"metadata": {"finalizers": [["a"]]}}, 500,
         "list element types are not identical: [[x] [[a]]]"),
        ({"metadata": {"ownerReferences": [["a"]]}}, 422, "lists of lists are not supported"),
        ({"spec": {"containers": [{"name": "a"}, "b"]}}, 500, None),
    ],
)  # fmt: skip
def test_malformed_patches(body: Any, code: int, message: str | None) -> None:
    pod = _pod({"name": "a"})
    pod["metadata"]["finalizers"] = ["x"]
    pod["metadata"]["ownerReferences"] = []
    err = _error(pod, body)
    assert err.code == code
    if message is not None:
        assert err.message == message


def test_the_body_must_be_a_json_object() -> None:
    pod = _pod({"name": "a"})
    assert patch.apply_patch(SMP, pod, b"null", None) == pod
    for body, kind in ((b"[]", "array"), (b'"s"', "string"), (b"1", "number")):
        with pytest.raises(APIError) as info:
            patch.apply_patch(SMP, pod, body, None)
        assert info.value.code == 400
        assert info.value.message == (
            f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
        )
    with pytest.raises(APIError) as info:
        patch.apply_patch(SMP, pod, b"{", None)
    assert info.value.code == 400


def test_top_level_replace() -> None:
    pod = _pod({"name": "a"})
    assert _smp(pod, {"$patch": "replace", "kind": "Pod"}) == {"kind": "Pod"}


def test_the_lookup_can_come_from_an_openapi_schema() -> None:
    item = {"type": "object", "properties": {"id": {"type": "integer"}, "tags": {"type": "array"}}}
    schema = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": item,
                "x-kubernetes-patch-merge-key": "id",
                "x-kubernetes-patch-strategy": "merge",
            },
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    lookup = patch.lookup_from_schema(schema, fallback=lambda path: ("x", "merge"))
    assert lookup(("items",)) == ("id", "merge")
    assert lookup(("items", "tags")) == (None, "")  # described, no extension: atomic
    assert lookup(("labels", "a")) == (None, "")
    assert lookup(("free", "deep")) == ("x", "merge")  # not described: the fallback's
    doc = {"kind": "Widget", "items": [{"id": 1, "tags": ["a"]}]}
    out = _smp(doc, {"items": [{"id": 1, "tags": ["b"]}]}, patch.lookup_from_schema(schema))
    assert out["items"] == [{"id": 1, "tags": ["b"]}]


# Applying a strategic merge patch twice is applying it once: merges by key, set unions and
# replacements are all idempotent, and the order rules put a list in the same order again.
_names_st = st.sampled_from(["a", "b", "c", "d"])
_env = st.lists(
    st.fixed_dictionaries({"name": _names_st, "value": st.sampled_from(["1", "2"])}),
    max_size=3,
    unique_by=lambda e: e["name"],
)
_container = st.fixed_dictionaries(
    {"name": _names_st},
    optional={"image": st.sampled_from(["x", "y"]), "env": _env},
)
_containers = st.lists(_container, max_size=3, unique_by=lambda c: c["name"])
_finalizers = st.lists(_names_st, max_size=3, unique=True)


@st.composite
def _pods_and_patches(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = {
        "kind": "Pod",
        "metadata": {"name": "p", "finalizers": draw(_finalizers)},
        "spec": {"containers": draw(_containers)},
    }
    spec: dict[str, Any] = {"containers": draw(_containers)}
    if draw(st.booleans()):
        spec["$setElementOrder/containers"] = [{"name": c["name"]} for c in spec["containers"]]
    body = {"metadata": {"finalizers": draw(_finalizers)}, "spec": spec}
    return pod, body


@given(_pods_and_patches())
def test_a_strategic_merge_patch_is_idempotent(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    pod, body = case
    once = _smp(pod, body)
    assert _smp(once, body) == once
    for container in body["spec"]["containers"]:
        merged = next(c for c in once["spec"]["containers"] if c["name"] == container["name"])
        assert {k: v for k, v in merged.items() if k != "env"} | {
            k: v for k, v in container.items() if k != "env"
        } == {k: v for k, v in merged.items() if k != "env"}
    assert set(once["metadata"]["finalizers"]) == set(
        pod["metadata"]["finalizers"] + body["metadata"]["finalizers"]
    )
