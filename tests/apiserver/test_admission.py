"""The admission plugins with an in-memory context: NamespaceLifecycle, ServiceAccount,
DefaultTolerationSeconds, and the chain's order."""

from __future__ import annotations

import random
from typing import Any

import attrs
import pytest
import trio

from raftkube.apiserver import admission
from raftkube.apiserver.auth.user import UserInfo
from raftkube.apiserver.errors import APIError
from raftkube.apiserver.request_info import RequestInfo
from raftkube.apiserver.resources import ResourceInfo, lookup

NAMESPACES = lookup("", "v1", "namespaces")
PODS = lookup("", "v1", "pods")
SERVICE_ACCOUNTS = lookup("", "v1", "serviceaccounts")
CONFIGMAPS = lookup("", "v1", "configmaps")
NODES = lookup("", "v1", "nodes")


@attrs.frozen
class Call:
    info: RequestInfo
    resource: ResourceInfo
    user: UserInfo = attrs.field(
        factory=lambda: UserInfo("alice", groups=("system:authenticated",))
    )
    dry_run: bool = False


def _call(
    resource: ResourceInfo | None, namespace: str = "", name: str = "", sub: str = ""
) -> Call:
    assert resource is not None
    verb = "create"
    info = RequestInfo(
        path="/",
        verb=verb,
        is_resource_request=True,
        api_group=resource.group,
        api_version=resource.version,
        namespace=namespace,
        resource=resource.resource,
        subresource=sub,
        name=name,
    )
    return Call(info, resource)


def _ctx(*namespaces: tuple[str, str]) -> admission.InMemoryContext:
    ctx = admission.InMemoryContext()
    assert NAMESPACES is not None and SERVICE_ACCOUNTS is not None
    for name, phase in namespaces:
        ctx.put(NAMESPACES, {"metadata": {"name": name}, "status": {"phase": phase}})
        ctx.put(SERVICE_ACCOUNTS, {"metadata": {"name": "default", "namespace": name}})
    return ctx


def _pod(name: str = "p", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec},
    }


async def _refused(coro: Any) -> APIError:
    with trio.fail_after(5), pytest.raises(APIError) as info:
        await coro
    return info.value


# NamespaceLifecycle


@pytest.mark.trio
async def test_lifecycle_refuses_content_in_a_missing_namespace_with_404() -> None:
    chain = admission.default_chain(_ctx(("ns", "Active")))
    err = await _refused(chain.admit("CREATE", _call(CONFIGMAPS, "other", "cm"), {}, None))
    assert (err.code, err.reason, err.message) == (404, "NotFound", 'namespaces "other" not found')
    err = await _refused(chain.admit("UPDATE", _call(CONFIGMAPS, "other", "cm"), {}, {}))
    assert err.code == 404


@pytest.mark.trio
async def test_lifecycle_refuses_creates_in_a_terminating_namespace_but_not_deletes() -> None:
    chain = admission.default_chain(_ctx(("ns", "Terminating")))
    cm = {"metadata": {"name": "cm", "namespace": "ns"}}
    err = await _refused(chain.admit("CREATE", _call(CONFIGMAPS, "ns"), cm, None))
    assert (err.code, err.reason) == (403, "Forbidden")
    assert err.message == (
        'configmaps "cm" is forbidden: unable to create new content in namespace ns because it '
        "is being terminated"
    )
    assert err.details is not None
    assert err.details["causes"] == [
        {
            "reason": "NamespaceTerminating",
            "message": "namespace ns is being terminated",
            "field": "metadata.namespace",
        }
    ]
    with trio.fail_after(5):
        await chain.admit("UPDATE", _call(CONFIGMAPS, "ns", "cm"), cm, cm)
        await chain.admit_delete(_call(CONFIGMAPS, "ns", "cm"), cm)
        # Cluster-scoped objects and Namespaces themselves are never refused for it.
        await chain.admit("CREATE", _call(NODES, "", "n1"), {"metadata": {"name": "n1"}}, None)


@pytest.mark.trio
async def test_lifecycle_refuses_deleting_the_system_namespaces() -> None:
    chain = admission.default_chain(_ctx())
    for name in ("default", "kube-system", "kube-public"):
        call = _call(NAMESPACES, name, name)
        err = await _refused(chain.admit_delete(call, {"metadata": {"name": name}}))
        assert (err.code, err.reason) == (403, "Forbidden")
        assert err.message == f'namespaces "{name}" is forbidden: this namespace may not be deleted'
    with trio.fail_after(5):
        await chain.admit_delete(_call(NAMESPACES, "team", "team"), {"metadata": {"name": "team"}})


# ServiceAccount


@pytest.mark.trio
async def test_pods_get_the_default_account_and_its_token_volume() -> None:
    chain = admission.default_chain(
        _ctx(("ns", "Active")), service_account=admission.ServiceAccount(random.Random(1))
    )
    pod = _pod(initContainers=[{"name": "init", "image": "busybox"}])
    with trio.fail_after(5):
        await chain.admit("CREATE", _call(PODS, "ns"), pod, None)
        await chain.validate("CREATE", _call(PODS, "ns"), pod, None)
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "default"
    (volume,) = spec["volumes"]
    name = volume["name"]
    assert name.startswith("kube-api-access-") and len(name) == len("kube-api-access-") + 5
    assert volume == admission.token_volume(name)
    assert volume["projected"]["defaultMode"] == 420
    sources = volume["projected"]["sources"]
    assert sources[0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    assert sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == "metadata.namespace"
    mount = {
        "name": name,
        "readOnly": True,
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
    }
    assert spec["containers"][0]["volumeMounts"] == [mount]
    assert spec["initContainers"][0]["volumeMounts"] == [mount]


@pytest.mark.trio
async def test_a_missing_service_account_refuses_the_pod_as_upstream() -> None:
    chain = admission.default_chain(_ctx(("ns", "Active")))
    pod = _pod(serviceAccountName="builder")
    err = await _refused(chain.admit("CREATE", _call(PODS, "ns"), pod, None))
    assert (err.code, err.reason) == (403, "Forbidden")
    assert err.message == (
        'pods "p" is forbidden: error looking up service account ns/builder: '
        'serviceaccount "builder" not found'
    )


@pytest.mark.trio
async def test_automount_off_on_the_pod_or_the_account_mounts_nothing() -> None:
    ctx = _ctx(("ns", "Active"))
    assert SERVICE_ACCOUNTS is not None
    ctx.put(
        SERVICE_ACCOUNTS,
        {
            "metadata": {"name": "quiet", "namespace": "ns"},
            "automountServiceAccountToken": False,
            "imagePullSecrets": [{"name": "regcred"}],
        },
    )
    chain = admission.default_chain(ctx)
    with trio.fail_after(5):
        pod = _pod(automountServiceAccountToken=False)
        await chain.admit("CREATE", _call(PODS, "ns"), pod, None)
        assert "volumes" not in pod["spec"]
        pod = _pod(serviceAccountName="quiet")
        await chain.admit("CREATE", _call(PODS, "ns"), pod, None)
        assert "volumes" not in pod["spec"]
        assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
        # The pod's own word wins over the account's.
        pod = _pod(serviceAccountName="quiet", automountServiceAccountToken=True)
        await chain.admit("CREATE", _call(PODS, "ns"), pod, None)
        assert len(pod["spec"]["volumes"]) == 1


@pytest.mark.trio
async def test_existing_mounts_and_token_volumes_are_respected() -> None:
    chain = admission.default_chain(_ctx(("ns", "Active")))
    own = {"name": "mine", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
    pod = _pod(
        volumes=[{"name": "kube-api-access-abcde", "projected": {"sources": []}}],
        containers=[
            {"name": "a", "image": "x", "volumeMounts": [own]},
            {"name": "b", "image": "x"},
        ],
    )
    with trio.fail_after(5):
        await chain.admit("CREATE", _call(PODS, "ns"), pod, None)
    spec = pod["spec"]
    assert [v["name"] for v in spec["volumes"]] == ["kube-api-access-abcde"]
    assert spec["containers"][0]["volumeMounts"] == [own]
    assert spec["containers"][1]["volumeMounts"][0]["name"] == "kube-api-access-abcde"


@pytest.mark.trio
async def test_service_account_leaves_updates_subresources_and_mirror_pods_alone() -> None:
    chain = admission.default_chain(_ctx(("ns", "Active")))
    with trio.fail_after(5):
        pod = _pod()
        await chain.admit("UPDATE", _call(PODS, "ns", "p"), pod, _pod())
        assert "serviceAccountName" not in pod["spec"]
        binding = {"kind": "Binding", "metadata": {"name": "p"}, "target": {"name": "n"}}
        await chain.admit("CREATE", _call(PODS, "ns", "p", "binding"), binding, None)
        assert "spec" not in binding
        mirror = _pod()
        mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "hash"}
        await chain.admit("CREATE", _call(PODS, "ns"), mirror, None)
        assert "serviceAccountName" not in mirror["spec"]
    mirror["spec"]["serviceAccountName"] = "default"
    err = await _refused(chain.validate("CREATE", _call(PODS, "ns"), mirror, None))
    assert err.message == 'pods "p" is forbidden: a mirror pod may not reference service accounts'


# DefaultTolerationSeconds


@pytest.mark.trio
async def test_pods_tolerate_not_ready_and_unreachable_for_300_seconds() -> None:
    chain = admission.default_chain(_ctx(("ns", "Active")))
    pod = _pod(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu"}])
    with trio.fail_after(5):
        await chain.admit("CREATE", _call(PODS, "ns"), pod, None)
    assert pod["spec"]["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "gpu"},
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
    ]


@pytest.mark.trio
async def test_existing_tolerations_of_those_taints_are_kept() -> None:
    chain = admission.default_chain(_ctx(("ns", "Active")))
    own = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 5}
    everything = {"operator": "Exists"}
    with trio.fail_after(5):
        pod = _pod(tolerations=[own])
        await chain.admit("UPDATE", _call(PODS, "ns", "p"), pod, _pod())
        keys = [t["key"] for t in pod["spec"]["tolerations"]]
        assert keys == ["node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"]
        pod = _pod(tolerations=[everything])
        await chain.admit("CREATE", _call(PODS, "ns"), pod, None)
        assert pod["spec"]["tolerations"] == [everything]
        # Tolerations of another effect do not count.
        pod = _pod(tolerations=[{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}])
        await chain.admit("CREATE", _call(PODS, "ns"), pod, None)
        assert len(pod["spec"]["tolerations"]) == 3


# The chain


@attrs.define
class Recorder:
    seen: list[str]
    name: str = "Recorder"

    async def admit(self, a: admission.Attributes, ctx: admission.AdmissionContext) -> None:
        assert a.obj is not None
        self.seen.append(f"admit:{a.operation}:{a.obj['spec'].get('serviceAccountName')}")

    async def validate(self, a: admission.Attributes, ctx: admission.AdmissionContext) -> None:
        assert a.obj is not None
        self.seen.append(f"validate:{len(a.obj['spec']['tolerations'])}")


@pytest.mark.trio
async def test_node_restriction_runs_after_service_account_and_validation_after_all_mutation() -> (
    None
):
    seen: list[str] = []
    chain = admission.default_chain(_ctx(("ns", "Active")), node_restriction=Recorder(seen))
    assert [p.name for p in chain.plugins] == [
        "NamespaceLifecycle",
        "ServiceAccount",
        "Recorder",
        "DefaultTolerationSeconds",
    ]
    pod = _pod()
    with trio.fail_after(5):
        await chain.admit("CREATE", _call(PODS, "ns"), pod, None)
        await chain.validate("CREATE", _call(PODS, "ns"), pod, None)
    assert seen == ["admit:CREATE:default", "validate:2"]
