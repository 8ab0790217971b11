"""Kubernetes protobuf request bodies: the decoder against bodies kubectl 1.32 really sent, a
small encoder's bodies for what kubectl's create commands never send, and kubectl itself
against the API server.

The captured bodies were recorded from kubectl 1.32 pointed at a plain-HTTP recording stub;
each expected object is what ``kubectl ... --dry-run=client -o json`` prints for the same
command, without its ``null``s (an unset Go time prints ``null``, the decoder leaves it out).
The review and token commands have no dry run: their expected objects follow Go's JSON
encoding of the same types (``allowed``, ``incomplete`` and ``token`` have no omitempty).
"""

from __future__ import annotations

import json
import shutil
import struct
from typing import Any

import attrs
import pytest
import trio

from raftkube.apiserver import encoding, errors
from raftkube.apiserver.protobuf import MEDIA_TYPE, decode_protobuf
from raftkube.apiserver.protobuf.decode import KINDS, MESSAGES
from raftkube.apiserver.protobuf.schema import parse_table
from raftkube.apiserver.protobuf.wire import WireError, fields, read_varint, signed
from raftkube.apiserver.request import Request
from tests.helpers.api_server import APIHarness


@attrs.frozen
class Captured:
    command: str
    path: str
    hex_body: str
    expected: dict[str, Any]

    @property
    def body(self) -> bytes:
        return bytes.fromhex(self.hex_body)


CAPTURED = [
    Captured(
        "create namespace demo",
        "/api/v1/namespaces",
        "6b3873000a0f0a02763112094e616d657370616365121c0a140a0464656d6f12001a0022002a00320038"
        "00420012001a020a001a002200",
        {
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {"name": "demo"},
            "spec": {},
            "status": {},
        },
    ),
    Captured(
        "create configmap cfg --from-literal=a=b",
        "/api/v1/namespaces/default/configmaps",
        "6b3873000a0f0a0276311209436f6e6669674d6170121d0a130a0363666712001a0022002a0032003800"
        "420012060a01611201621a002200",
        {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "cfg"}, "data": {"a": "b"}},
    ),
    Captured(
        "create deployment web --image=nginx --replicas=2 --port=80",
        "/apis/apps/v1/namespaces/default/deployments",
        "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412b8010a1f0a0377656212001a0022"
        "002a003200380042005a0a0a0361707012037765621286010802120c0a0a0a0361707012037765621a6c"
        "0a1c0a0012001a0022002a003200380042005a0a0a036170701203776562124c122e0a056e67696e7812"
        "056e67696e782a00320a0a001000185022002a0042006a007200800100880100900100a201001a003200"
        "42004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000"
        "280038001a002200",
        {
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "nginx",
                                "image": "nginx",
                                "ports": [{"containerPort": 80}],
                                "resources": {},
                            }
                        ]
                    },
                },
                "strategy": {},
            },
            "status": {},
        },
    ),
    Captured(
        "create service clusterip web --tcp=80:8080",
        "/api/v1/namespaces/default/services",
        "6b3873000a0d0a02763112075365727669636512690a1f0a0377656212001a0022002a00320038004200"
        "5a0a0a03617070120377656212420a1b0a0738302d38303830120354435018502207080010903f1a0028"
        "00120a0a0361707012037765621a002209436c757374657249503a00420052005a00600068001a020a00"
        "1a002200",
        {
            "kind": "Service",
            "apiVersion": "v1",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                "selector": {"app": "web"},
                "type": "ClusterIP",
            },
            "status": {"loadBalancer": {}},
        },
    ),
    Captured(
        "create service nodeport np --tcp=80:8080 --node-port=30080",
        "/api/v1/namespaces/default/services",
        "6b3873000a0d0a02763112075365727669636512670a1d0a026e7012001a0022002a003200380042005a"
        "090a0361707012026e7012420a1d0a0738302d38303830120354435018502207080010903f1a002880eb"
        "0112090a0361707012026e701a0022084e6f6465506f72743a00420052005a00600068001a020a001a00"
        "2200",
        {
            "kind": "Service",
            "apiVersion": "v1",
            "metadata": {"name": "np", "labels": {"app": "np"}},
            "spec": {
                "ports": [
                    {
                        "name": "80-8080",
                        "protocol": "TCP",
                        "port": 80,
                        "targetPort": 8080,
                        "nodePort": 30080,
                    }
                ],
                "selector": {"app": "np"},
                "type": "NodePort",
            },
            "status": {"loadBalancer": {}},
        },
    ),
    Captured(
        "auth can-i create pods",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a65"
        "6374416363657373526576696577123f0a100a0012001a0022002a0032003800420012210a1f0a076465"
        "6661756c7412066372656174651a0022002a04706f647332003a001a08080012001a0020001a002200",
        {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {},
            "spec": {
                "resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}
            },
            "status": {"allowed": False},
        },
    ),
    Captured(
        "auth can-i --list",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        "6b3873000a310a17617574686f72697a6174696f6e2e6b38732e696f2f7631121653656c665375626a65"
        "637452756c657352657669657712230a100a0012001a0022002a0032003800420012090a076465666175"
        "6c741a04180022001a002200",
        {
            "kind": "SelfSubjectRulesReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {},
            "spec": {"namespace": "default"},
            "status": {"incomplete": False},
        },
    ),
    Captured(
        "auth whoami",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        "6b3873000a2d0a1861757468656e7469636174696f6e2e6b38732e696f2f7631121153656c665375626a"
        "656374526576696577121a0a100a0012001a0022002a0032003800420012060a040a0012001a002200",
        {
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {},
            "status": {"userInfo": {}},
        },
    ),
    Captured(
        "create role reader --verb=get,list --resource=pods",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
        "6b3873000a240a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f76311204526f6c65"
        "122d0a160a0672656164657212001a0022002a0032003800420012130a036765740a046c69737412001a"
        "04706f64731a002200",
        {
            "kind": "Role",
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": "reader"},
            "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}],
        },
    ),
    Captured(
        "create rolebinding rb --role=reader --user=alice",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
        "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b526f6c65"
        "42696e64696e67126b0a120a02726212001a0022002a00320038004200122a0a04557365721219726261"
        "632e617574686f72697a6174696f6e2e6b38732e696f1a05616c69636522001a290a19726261632e6175"
        "74686f72697a6174696f6e2e6b38732e696f1204526f6c651a067265616465721a002200",
        {
            "kind": "RoleBinding",
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": "rb"},
            "subjects": [
                {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}
            ],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        },
    ),
    Captured(
        "create clusterrole cr --verb=get --resource=nodes --verb=list",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b436c7573"
        "746572526f6c65122a0a120a02637212001a0022002a0032003800420012140a036765740a046c697374"
        "12001a056e6f6465731a002200",
        {
            "kind": "ClusterRole",
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": "cr"},
            "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["nodes"]}],
        },
    ),
    Captured(
        "create clusterrolebinding crb --clusterrole=cr --group=devs --serviceaccount=default:bot",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "6b3873000a320a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f76311212436c7573"
        "746572526f6c6542696e64696e671291010a130a0363726212001a0022002a00320038004200122a0a05"
        "47726f75701219726261632e617574686f72697a6174696f6e2e6b38732e696f1a046465767322001220"
        "0a0e536572766963654163636f756e7412001a03626f74220764656661756c741a2c0a19726261632e61"
        "7574686f72697a6174696f6e2e6b38732e696f120b436c7573746572526f6c651a0263721a002200",
        {
            "kind": "ClusterRoleBinding",
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": "crb"},
            "subjects": [
                {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs"},
                {"kind": "ServiceAccount", "name": "bot", "namespace": "default"},
            ],
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cr",
            },
        },
    ),
    Captured(
        "create secret generic s1 --from-literal=password=hunter2",
        "/api/v1/namespaces/default/secrets",
        "6b3873000a0c0a0276311206536563726574122b0a120a02733112001a0022002a003200380042001213"
        "0a0870617373776f7264120768756e746572321a001a002200",
        {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {"name": "s1"},
            "data": {"password": "aHVudGVyMg=="},
        },
    ),
    Captured(
        "create serviceaccount bot",
        "/api/v1/namespaces/default/serviceaccounts",
        "6b3873000a140a027631120e536572766963654163636f756e7412150a130a03626f7412001a0022002a"
        "003200380042001a002200",
        {"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": "bot"}},
    ),
    Captured(
        "create token default",
        "/api/v1/namespaces/default/serviceaccounts/default/token",
        "6b3873000a280a1861757468656e7469636174696f6e2e6b38732e696f2f7631120c546f6b656e526571"
        "75657374121a0a100a0012001a0022002a0032003800420012001a040a0012001a002200",
        {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {},
            "spec": {},
            "status": {"token": ""},
        },
    ),
    Captured(
        "create token default --duration=10m --audience=aud",
        "/api/v1/namespaces/default/serviceaccounts/default/token",
        "6b3873000a280a1861757468656e7469636174696f6e2e6b38732e696f2f7631120c546f6b656e526571"
        "7565737412220a100a0012001a0022002a0032003800420012080a0361756420d8041a040a0012001a00"
        "2200",
        {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {},
            "spec": {"audiences": ["aud"], "expirationSeconds": 600},
            "status": {"token": ""},
        },
    ),
]


# --- a small encoder, for bodies kubectl's create commands never send -----------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers go out as ten-byte two's complement
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | 0x80 if value else low)
        if not value:
            return bytes(out)


def num(number: int, value: int | bool) -> bytes:
    """A varint field (ints, bools)."""
    return varint(number << 3) + varint(int(value))


def ld(number: int, data: bytes | str) -> bytes:
    """A length-delimited field (strings, bytes, messages)."""
    raw = data.encode() if isinstance(data, str) else data
    return varint(number << 3 | 2) + varint(len(raw)) + raw


def entry(number: int, key: str, value: bytes | str) -> bytes:
    """One entry of a ``map<string, T>`` field."""
    return ld(number, ld(1, key) + ld(2, value))


def body(api_version: str, kind: str, raw: bytes, *, encoding: str = "") -> bytes:
    type_meta = ld(1, api_version) + ld(2, kind) if api_version or kind else b""
    return b"k8s\x00" + ld(1, type_meta) + ld(2, raw) + ld(3, encoding) + ld(4, "")


def meta(name: str, **labels: str) -> bytes:
    return ld(1, ld(1, name) + b"".join(entry(11, k, v) for k, v in labels.items()))


def api_error(data: bytes, kind_hint: str = "") -> errors.APIError:
    with pytest.raises(errors.APIError) as caught:
        decode_protobuf(data, kind_hint)
    return caught.value


# --- captured bodies ------------------------------------------------------------------------


@pytest.mark.parametrize("captured", CAPTURED, ids=lambda c: c.command)
def test_captured_kubectl_body_decodes_to_kubectls_json(captured: Captured) -> None:
    assert decode_protobuf(captured.body) == captured.expected


def test_keys_come_in_gos_field_order() -> None:
    deployment = decode_protobuf(CAPTURED[2].body)
    assert list(deployment) == ["kind", "apiVersion", "metadata", "spec", "status"]
    assert list(deployment["spec"]) == ["replicas", "selector", "template", "strategy"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert list(container) == ["name", "image", "ports", "resources"]


def test_decode_object_reads_protobuf_and_still_refuses_other_media_types() -> None:
    captured = CAPTURED[1]
    req = Request("POST", captured.path, {}, {"content-type": MEDIA_TYPE}, captured.body)
    assert encoding.decode_object(req, "ConfigMap") == captured.expected
    other = Request("POST", captured.path, {}, {"content-type": "application/cbor"}, b"\xa0")
    with pytest.raises(errors.APIError) as caught:
        encoding.decode_object(other, "ConfigMap")
    assert caught.value.code == 415


# --- the pod template's tree ------------------------------------------------------------------


def test_a_pod_with_volumes_probes_security_and_scheduling_fields() -> None:
    container = b"".join(
        [
            ld(1, "app"),
            ld(2, "nginx:1.27"),
            ld(3, "sh"),
            ld(3, "-c"),
            ld(6, ld(1, "http") + num(3, 8080) + ld(4, "TCP")),
            ld(19, ld(2, ld(1, ld(1, "settings")) + num(2, False))),  # envFrom configMapRef
            ld(7, ld(1, "A") + ld(2, "1")),
            ld(7, ld(1, "PASSWORD") + ld(3, ld(4, ld(1, ld(1, "creds")) + ld(2, "password")))),
            ld(7, ld(1, "NODE") + ld(3, ld(1, ld(1, "v1") + ld(2, "spec.nodeName")))),
            ld(8, entry(1, "cpu", ld(1, "500m")) + entry(2, "memory", ld(1, "64Mi"))),
            ld(9, ld(1, "config") + num(2, True) + ld(3, "/etc/app")),
            ld(10, ld(1, ld(2, ld(1, "/healthz") + ld(2, num(1, 1) + ld(3, "http")))) + num(2, 5)),
            ld(11, ld(1, ld(3, ld(1, num(2, 8080)))) + num(4, 10)),
            ld(14, "IfNotPresent"),
            ld(15, ld(1, ld(2, "ALL")) + num(4, 0) + num(5, False) + num(7, False)),
        ]
    )
    volumes = [
        ld(1, ld(1, "config") + ld(2, ld(19, ld(1, ld(1, "settings")) + num(3, 0o644)))),
        ld(1, ld(1, "creds") + ld(2, ld(6, ld(1, "creds") + num(4, True)))),
        ld(1, ld(1, "scratch") + ld(2, ld(2, ld(1, "Memory") + ld(2, ld(1, "1Gi"))))),
        ld(1, ld(1, "host") + ld(2, ld(1, ld(1, "/var/log") + ld(2, "Directory")))),
        ld(1, ld(1, "data") + ld(2, ld(10, ld(1, "data-claim")))),
        ld(
            1,
            ld(1, "info") + ld(2, ld(16, ld(1, ld(1, "labels") + ld(2, ld(2, "metadata.labels"))))),
        ),
        ld(
            1,
            ld(1, "token")
            + ld(2, ld(26, ld(1, ld(4, ld(1, "vault") + num(2, 3600) + ld(3, "token"))))),
        ),
    ]
    pod_security = ld(14, num(2, 1000) + num(4, 1) + num(4, 2) + ld(4, varint(3) + varint(4)))
    toleration = ld(22, ld(1, "node.kubernetes.io/not-ready") + ld(2, "Exists") + num(5, 300))
    term = ld(1, ld(1, "zone") + ld(2, "In") + ld(3, "a") + ld(3, "b"))
    affinity = ld(18, ld(1, ld(1, ld(1, term))))
    spec = b"".join(
        [
            *volumes,
            ld(20, ld(1, "init") + ld(2, "busybox")),
            ld(2, container),
            ld(3, "Always"),
            num(4, 0),
            entry(7, "disk", "ssd"),
            ld(8, "runner"),
            num(11, False),
            pod_security,
            toleration,
            affinity,
        ]
    )
    pod = decode_protobuf(body("v1", "Pod", meta("web", app="web") + ld(2, spec) + ld(3, b"")))
    assert pod == {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "volumes": [
                {"name": "config", "configMap": {"name": "settings", "defaultMode": 420}},
                {"name": "creds", "secret": {"secretName": "creds", "optional": True}},
                {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
                {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "data-claim"}},
                {
                    "name": "info",
                    "downwardAPI": {
                        "items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
                    },
                },
                {
                    "name": "token",
                    "projected": {
                        "sources": [
                            {
                                "serviceAccountToken": {
                                    "audience": "vault",
                                    "expirationSeconds": 3600,
                                    "path": "token",
                                }
                            }
                        ]
                    },
                },
            ],
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [
                {
                    "name": "app",
                    "image": "nginx:1.27",
                    "command": ["sh", "-c"],
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "envFrom": [{"configMapRef": {"name": "settings", "optional": False}}],
                    "env": [
                        {"name": "A", "value": "1"},
                        {
                            "name": "PASSWORD",
                            "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}},
                        },
                        {
                            "name": "NODE",
                            "valueFrom": {
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}
                            },
                        },
                    ],
                    "resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "64Mi"}},
                    "volumeMounts": [{"name": "config", "readOnly": True, "mountPath": "/etc/app"}],
                    "livenessProbe": {
                        "httpGet": {"path": "/healthz", "port": "http"},
                        "initialDelaySeconds": 5,
                    },
                    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 10},
                    "imagePullPolicy": "IfNotPresent",
                    "securityContext": {
                        "capabilities": {"drop": ["ALL"]},
                        "runAsUser": 0,
                        "runAsNonRoot": False,
                        "allowPrivilegeEscalation": False,
                    },
                }
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 0,
            "nodeSelector": {"disk": "ssd"},
            "serviceAccountName": "runner",
            "securityContext": {"runAsUser": 1000, "supplementalGroups": [1, 2, 3, 4]},
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "zone", "operator": "In", "values": ["a", "b"]}
                                ]
                            }
                        ]
                    }
                }
            },
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "tolerationSeconds": 300,
                }
            ],
        },
        "status": {},
    }


# --- Go's JSON rules ----------------------------------------------------------------------------


def test_a_pointer_zero_is_kept_and_an_omitempty_zero_is_dropped() -> None:
    # DeploymentSpec.replicas is *int32: a zero on the wire was set, and JSON says 0;
    # ScaleSpec.replicas is an omitempty int32, so Go's JSON of a zero scale has no replicas.
    deployment = decode_protobuf(body("apps/v1", "Deployment", meta("d") + ld(2, num(1, 0))))
    assert deployment["spec"] == {"replicas": 0}
    scale = decode_protobuf(body("autoscaling/v1", "Scale", meta("d") + ld(2, num(1, 0))))
    assert scale["spec"] == {}
    # a non-omitempty string keeps its empty value; an omitempty one does not
    port = ld(1, ld(1, "") + ld(2, "") + num(3, 80))
    service = decode_protobuf(body("v1", "Service", meta("s") + ld(2, port)))
    assert service["spec"] == {"ports": [{"port": 80}]}
    container = ld(2, ld(1, "") + ld(2, "img") + ld(5, ""))
    pod = decode_protobuf(body("v1", "Pod", meta("p") + ld(2, container)))
    assert pod["spec"]["containers"] == [{"name": "", "image": "img"}]


def test_negative_numbers_and_int_or_string_ports() -> None:
    ports = ld(1, num(3, 80) + ld(4, num(1, 0) + num(2, -1)) + num(5, -30000))
    named = ld(1, num(3, 81) + ld(4, num(1, 1) + ld(3, "web")))
    service = decode_protobuf(body("v1", "Service", meta("s") + ld(2, ports + named)))
    assert service["spec"]["ports"] == [
        {"port": 80, "targetPort": -1, "nodePort": -30000},
        {"port": 81, "targetPort": "web"},
    ]
    assert varint(-1) == b"\xff" * 9 + b"\x01"


def test_times_are_rfc3339_seconds_and_micro_times_keep_microseconds() -> None:
    renew = ld(4, num(1, 1_700_000_000) + num(2, 123_456_789))
    lease = decode_protobuf(
        body("coordination.k8s.io/v1", "Lease", meta("l") + ld(2, ld(1, "me") + renew))
    )
    assert lease["spec"] == {"holderIdentity": "me", "renewTime": "2023-11-14T22:13:20.123456Z"}
    # a Time drops its nanos (as Go's Unmarshal does); an empty Time is unset (JSON null)
    first = ld(6, num(1, 1_700_000_000) + num(2, 999))
    epoch = ld(7, num(1, 0))
    unset = ld(10, b"")
    event = decode_protobuf(body("v1", "Event", meta("e") + first + epoch + unset))
    assert event == {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {"name": "e"},
        "firstTimestamp": "2023-11-14T22:13:20Z",
        "lastTimestamp": "1970-01-01T00:00:00Z",
    }
    created = decode_protobuf(body("v1", "Namespace", ld(1, ld(1, "n") + ld(8, b""))))
    assert created["metadata"] == {"name": "n"}


def test_bytes_are_base64_and_extra_values_are_lists() -> None:
    config = meta("c") + entry(3, "blob", b"\x00\xffhi") + entry(2, "text", "plain")
    decoded = decode_protobuf(body("v1", "ConfigMap", config))
    assert decoded["binaryData"] == {"blob": "AP9oaQ=="}
    assert decoded["data"] == {"text": "plain"}
    extra = ld(5, ld(1, "scopes") + ld(2, ld(1, "a") + ld(1, "b")))
    spec = ld(2, ld(3, "alice") + ld(4, "devs") + extra + ld(2, ld(1, "/healthz") + ld(2, "get")))
    review = decode_protobuf(body("authorization.k8s.io/v1", "SubjectAccessReview", spec))
    assert review["spec"] == {
        "nonResourceAttributes": {"path": "/healthz", "verb": "get"},
        "user": "alice",
        "groups": ["devs"],
        "extra": {"scopes": ["a", "b"]},
    }


def test_delete_options_under_any_group_version_and_in_an_eviction() -> None:
    options = num(1, 0) + ld(2, ld(1, "uid-1")) + ld(4, "Foreground") + ld(5, "All")
    decoded = decode_protobuf(body("apps/v1", "DeleteOptions", options))
    assert decoded == {
        "kind": "DeleteOptions",
        "apiVersion": "apps/v1",
        "gracePeriodSeconds": 0,
        "preconditions": {"uid": "uid-1"},
        "propagationPolicy": "Foreground",
        "dryRun": ["All"],
    }
    eviction = decode_protobuf(body("policy/v1", "Eviction", meta("p") + ld(2, num(1, 30))))
    assert eviction["deleteOptions"] == {"gracePeriodSeconds": 30}


def test_an_empty_type_meta_takes_the_endpoints_kind() -> None:
    data = body("", "", meta("c") + entry(2, "a", "b"))
    decoded = decode_protobuf(data, "ConfigMap")
    assert decoded == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "c"},
        "data": {"a": "b"},
    }
    assert api_error(data).code == 400


# --- what is refused ------------------------------------------------------------------------------


def test_a_field_the_table_lacks_is_415_naming_message_and_number() -> None:
    pod = body("v1", "Pod", meta("p") + ld(2, ld(2, ld(1, "c") + ld(99, "x"))))
    err = api_error(pod)
    assert (err.code, err.reason) == (415, "UnsupportedMediaType")
    assert "field 99 of the protobuf message Container" in err.message
    # a volume source left out of the table is refused too, never dropped (9: glusterfs)
    volume = ld(1, ld(1, "v") + ld(2, ld(9, ld(1, "ep") + ld(2, "path"))))
    err = api_error(body("v1", "Pod", meta("p") + ld(2, volume)))
    assert "field 9 of the protobuf message VolumeSource" in err.message


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [("apps/v1", "DaemonSet"), ("v1", "Deployment"), ("batch/v1", "Job"), ("v1", "ResourceQuota")],
)
def test_a_kind_the_table_lacks_is_415(api_version: str, kind: str) -> None:
    err = api_error(body(api_version, kind, meta("x")))
    assert err.code == 415
    assert kind in err.message


def test_a_content_encoding_is_415() -> None:
    err = api_error(body("v1", "ConfigMap", meta("c"), encoding="gzip"))
    assert err.code == 415


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty data"),
        (b"k8s\x00", "empty body"),
        (b'{"kind": "ConfigMap"}', "does not appear to be a protobuf message"),
        (b"k8s\x00\x0a\x05\x0a\x02v1", "runs past the end"),
        (body("v1", "ConfigMap", ld(1, b"\x0a\x80")), "truncated varint"),
        (body("v1", "ConfigMap", ld(1, num(1, 5))), "wire type 0, expected 2"),
        (body("v1", "ConfigMap", meta("c") + ld(2, ld(1, "k") + num(2, 7))), "expected 2"),
        (body("v1", "ConfigMap", meta("c") + varint(4 << 3 | 3)), "unsupported wire type 3"),
        (body("apps/v1", "Deployment", ld(2, ld(1, "x"))), "wire type 2, expected 0"),
    ],
)
def test_a_malformed_body_is_400(data: bytes, message: str) -> None:
    err = api_error(data, "ConfigMap")
    assert (err.code, err.reason) == (400, "BadRequest")
    assert message in err.message


# --- the wire reader and the table's form ------------------------------------------------------


def test_wire_reader_limits_and_signed_reading() -> None:
    value, end = read_varint(varint(-5), 0)
    assert (signed(value, 64), signed(value, 32), end) == (-5, -5, 10)
    with pytest.raises(WireError, match="longer than 10 bytes"):
        read_varint(b"\xff" * 11, 0)
    fixed = varint(1 << 3 | 1) + struct.pack("<d", 1.5) + varint(2 << 3 | 5) + b"\x01\x00\x00\x00"
    assert [(f.number, f.wire_type) for f in fields(fixed)] == [(1, 1), (2, 5)]
    with pytest.raises(WireError, match="field number 0"):
        list(fields(b"\x00\x01"))


def test_table_text_errors_are_caught_at_import() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        parse_table("M:\n  1 a string; 1 b string\n")
    with pytest.raises(ValueError, match="bad field spec"):
        parse_table("M:\n  one a string\n")
    parsed = parse_table("M:\n  1 - Inner; 2 tags {bytes}; 3 ids int64*; 4 on bool!\n")["M"]
    assert [(f.json_name, f.type, f.repeated, f.is_map, f.keep_zero) for f in parsed.fields] == [
        ("", "Inner", False, False, False),
        ("tags", "bytes", False, True, False),
        ("ids", "int64", True, False, False),
        ("on", "bool", False, False, True),
    ]


def test_every_kind_has_a_message_with_metadata() -> None:
    for kind in KINDS:
        assert MESSAGES[kind].by_number[1].type == "ObjectMeta", kind


# --- through the API server -------------------------------------------------------------------


@pytest.mark.trio
async def test_the_server_serves_each_captured_body(api: APIHarness) -> None:
    with trio.fail_after(60):
        await api.admin.create(
            "/api/v1/namespaces/default/serviceaccounts", {"metadata": {"name": "default"}}
        )
        for captured in CAPTURED:
            if captured.path.endswith("selfsubjectrulesreviews"):
                continue  # the server does not serve SelfSubjectRulesReview
            status, headers, data = await api.admin.request(
                "POST", captured.path, body=captured.body, content_type=MEDIA_TYPE
            )
            assert status in (200, 201), (captured.command, data)
            assert headers["content-type"] == "application/json"
            answer = json.loads(data)
            assert answer["kind"] == captured.expected["kind"], captured.command
            name = captured.expected["metadata"].get("name")
            if name:
                assert answer["metadata"]["name"] == name
            if answer["kind"] == "SelfSubjectAccessReview":
                assert answer["status"]["allowed"] is True
            if answer["kind"] == "SelfSubjectReview":
                assert answer["status"]["userInfo"]["username"] == "kubernetes-admin"
            if answer["kind"] == "TokenRequest":
                assert answer["status"]["token"].count(".") == 2
        stored = await api.admin.get("/apis/apps/v1/namespaces/default/deployments/web")
        assert stored["spec"]["replicas"] == 2
        assert stored["spec"]["template"]["spec"]["containers"][0]["ports"] == [
            {"containerPort": 80, "protocol": "TCP"}
        ]
        secret = await api.admin.get("/api/v1/namespaces/default/secrets/s1")
        assert secret["data"] == {"password": "aHVudGVyMg=="}
        gap = body("v1", "ConfigMap", meta("c") + ld(42, "x"))
        status, _, data = await api.admin.request(
            "POST", "/api/v1/namespaces/default/configmaps", body=gap, content_type=MEDIA_TYPE
        )
        assert status == 415
        assert json.loads(data)["message"].startswith("the server cannot read field 42")


@pytest.mark.trio
async def test_kubectls_typed_commands_work(api: APIHarness) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on PATH")

    async def run(*args: str) -> str:
        result = await trio.run_process(
            [kubectl, "--kubeconfig", str(api.kubeconfig), *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        assert result.returncode == 0, (args, result.stderr.decode())
        return result.stdout.decode()

    with trio.fail_after(120):
        assert await run("create", "namespace", "demo") == "namespace/demo created\n"
        assert "created" in await run("create", "configmap", "cfg", "--from-literal=a=b")
        assert "created" in await run(
            "create", "deployment", "web", "--image=nginx", "--replicas=2", "--port=80"
        )
        assert "created" in await run("create", "service", "clusterip", "web", "--tcp=80:8080")
        assert "created" in await run("create", "role", "reader", "--verb=get", "--resource=pods")
        assert "created" in await run("create", "rolebinding", "rb", "--role=reader", "--user=bob")
        assert "created" in await run("create", "secret", "generic", "s", "--from-literal=k=v")
        assert "created" in await run("create", "serviceaccount", "bot")
        assert (await run("create", "token", "bot")).count(".") == 2
        assert await run("auth", "can-i", "create", "pods") == "yes\n"
        assert "kubernetes-admin" in await run("auth", "whoami")
        assert json.loads(await run("get", "configmap", "cfg", "-o", "json"))["data"] == {"a": "b"}
