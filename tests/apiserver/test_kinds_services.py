"""Services and Endpoints: upstream's defaults, validation and cluster-IP update rules."""

from __future__ import annotations

import copy
from typing import Any

from raftkube.apiserver import kinds, resources
from tests.helpers.kinds import text

SERVICES = resources.lookup("", "v1", "services")
ENDPOINTS = resources.lookup("", "v1", "endpoints")
assert SERVICES is not None and ENDPOINTS is not None
STRATEGY = kinds.strategy_for(SERVICES)


def service(name: str = "web", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec},
    }


def errors_of(body: dict[str, Any]) -> list[str]:
    STRATEGY.default(body)
    return text(STRATEGY.validate_create(body))


def test_defaults_are_upstreams() -> None:
    body = service()
    STRATEGY.default(body)
    assert body["spec"] == {
        "selector": {"app": "web"},
        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
        "type": "ClusterIP",
        "sessionAffinity": "None",
        "internalTrafficPolicy": "Cluster",
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
    }
    node_port = service(type="NodePort")
    STRATEGY.default(node_port)
    assert node_port["spec"]["externalTrafficPolicy"] == "Cluster"
    external = service(type="ExternalName", externalName="example.com", ports=[])
    STRATEGY.default(external)
    assert "ipFamilies" not in external["spec"]
    assert "internalTrafficPolicy" not in external["spec"]


def test_a_valid_service_passes_and_its_name_is_a_dns1035_label() -> None:
    assert errors_of(service()) == []
    [message] = errors_of(service(name="1web"))
    assert message.startswith(
        'metadata.name: Invalid value: "1web": a DNS-1035 label must consist of lower case '
        "alphanumeric characters or '-', start with an alphabetic character"
    )


def test_ports_type_and_affinity() -> None:
    assert errors_of(service(ports=[])) == ["spec.ports: Required value"]
    assert errors_of(service(clusterIP="None", ports=[])) == []
    assert errors_of(service(type="Magic")) == [
        'spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", '
        '"LoadBalancer", "NodePort"'
    ]
    assert errors_of(service(ports=[{"port": 80}, {"port": 0, "name": "b"}])) == [
        "spec.ports[0].name: Required value",
        "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
        "spec.ports[1].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
    ]
    assert errors_of(service(ports=[{"port": 80, "name": "a"}, {"port": 80, "name": "b"}])) == [
        'spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", '
        "AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, "
        'StrVal:""}, NodePort:0}'
    ]
    assert errors_of(service(ports=[{"port": 80, "nodePort": 30000}])) == [
        "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
    ]
    assert errors_of(service(sessionAffinity="Sticky")) == [
        'spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"'
    ]
    assert errors_of(service(ports=[{"port": 80, "targetPort": "Web_Port"}])) == [
        'spec.ports[0].targetPort: Invalid value: "Web_Port": must contain only alpha-numeric '
        "characters (a-z, 0-9), and hyphens (-)"
    ]


def test_external_name_services() -> None:
    assert errors_of(service(type="ExternalName", ports=[])) == [
        "spec.externalName: Required value"
    ]
    assert errors_of(service(type="ExternalName", externalName="db.example.com.")) == []
    assert errors_of(service(clusterIP="10.0.0.1.5")) == [
        'spec.clusterIPs[0]: Invalid value: "10.0.0.1.5": must be a valid IP address, (e.g. '
        "10.9.8.7 or 2001:db8::ffff)"
    ]


def stored() -> dict[str, Any]:
    body = service(clusterIP="127.0.100.7")
    STRATEGY.default(body)
    kinds.prepare_create(SERVICES, body, "2026-01-01T00:00:00Z", "uid-1")
    return body


def test_create_resets_status() -> None:
    body = service()
    body["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    kinds.prepare_create(SERVICES, body, "2026-01-01T00:00:00Z", "uid-1")
    assert body["status"] == {"loadBalancer": {}}
    assert "generation" not in body["metadata"]


def test_cluster_ip_is_kept_when_left_out_and_may_not_change() -> None:
    old = stored()
    new = service()  # as `kubectl apply` sends it: no clusterIP
    STRATEGY.default(new)
    kinds.prepare_update(SERVICES, new, old)
    assert new["spec"]["clusterIP"] == "127.0.100.7"
    assert new["spec"]["clusterIPs"] == ["127.0.100.7"]
    assert text(STRATEGY.validate_update(new, old)) == []

    changed = copy.deepcopy(old)
    changed["spec"]["clusterIP"] = "127.0.100.8"
    changed["spec"]["clusterIPs"] = ["127.0.100.8"]
    kinds.prepare_update(SERVICES, changed, old)
    assert text(STRATEGY.validate_update(changed, old)) == [
        'spec.clusterIPs[0]: Invalid value: []string{"127.0.100.8"}: may not change once set'
    ]


def test_field_labels() -> None:
    assert STRATEGY.field_labels(stored()) == {
        "metadata.name": "web",
        "metadata.namespace": "default",
        "spec.clusterIP": "127.0.100.7",
        "spec.type": "ClusterIP",
    }


def test_endpoints() -> None:
    strategy = kinds.strategy_for(ENDPOINTS)
    body: dict[str, Any] = {
        "metadata": {"name": "web", "namespace": "default"},
        "subsets": [
            {"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]},
            {"ports": [{"port": 80, "name": "a"}, {"port": 81}]},
            {"notReadyAddresses": [{"ip": "nope"}], "ports": [{"port": 8080}]},
        ],
    }
    strategy.default(body)
    assert body["subsets"][0]["ports"] == [{"port": 80, "protocol": "TCP"}]
    assert text(strategy.validate_create(body)) == [
        "subsets[1]: Required value: must specify `addresses` or `notReadyAddresses`",
        "subsets[1].ports[1].name: Required value",
        'subsets[2].notReadyAddresses[0].ip: Invalid value: "nope": must be a valid IP '
        "address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
    ]
