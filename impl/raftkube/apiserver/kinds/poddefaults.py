"""Upstream's defaults for a PodSpec (``pkg/apis/core/v1/defaults.go``), applied in place.

They are the ones kubectl and the controllers see on every pod and pod template:
``restartPolicy: Always``, ``dnsPolicy: ClusterFirst``, ``terminationGracePeriodSeconds:
30``, ``schedulerName: default-scheduler``, ``securityContext: {}``; per container
``imagePullPolicy`` (``Always`` for ``:latest`` or no tag, else ``IfNotPresent``),
``terminationMessagePath``/``Policy``, ``resources: {}``, requests defaulted from limits,
ports' ``protocol: TCP`` (and ``hostPort`` mirroring ``containerPort`` on the host
network), probes' timing; volumes' default modes. Resource quantities are rewritten in their
canonical form, as upstream's round trip through ``resource.Quantity`` does (``0.5`` is
stored as ``500m``).

``enableServiceLinks``, ``priority`` and ``preemptionPolicy`` are defaults of a Pod (the
Priority admission plugin and ``SetDefaults_Pod``), not of a template, so :mod:`.pods` sets
them.
"""

from __future__ import annotations

from typing import Any

from ..quantity import QuantityError, parse_quantity_json
from .podschema import VOLUME_SOURCES
from .strategy import Obj, dicts

DEFAULT_MODE = 0o644  # 420, the mode upstream gives secret, configMap and projected files
_PROBE_DEFAULTS = {
    "timeoutSeconds": 1,
    "periodSeconds": 10,
    "successThreshold": 1,
    "failureThreshold": 3,
}


def image_pull_policy(image: str) -> str:
    """``Always`` when the image names no tag or the tag ``latest``; a digest alone pins it."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.rpartition(":")[2] if ":" in last else ""
    if not tag and not digest:
        tag = "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def canonical_quantities(resources: Any) -> None:
    """Rewrite each parseable quantity of a resource list in canonical form; the invalid ones
    are left for validation to report."""
    if not isinstance(resources, dict):
        return
    for name, value in resources.items():
        try:
            resources[name] = parse_quantity_json(value).canonical()
        except QuantityError:
            continue


def _default_http_get(action: Any) -> None:
    if isinstance(action, dict):
        action.setdefault("path", "/")
        action.setdefault("scheme", "HTTP")


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for name, value in _PROBE_DEFAULTS.items():
        probe.setdefault(name, value)
    _default_http_get(probe.get("httpGet"))


def _default_container(container: Obj, host_network: bool) -> None:
    image = container.get("image")
    if isinstance(image, str) and image and "imagePullPolicy" not in container:
        container["imagePullPolicy"] = image_pull_policy(image)
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    resources = container.setdefault("resources", {})
    if isinstance(resources, dict):
        limits, requests = resources.get("limits"), resources.get("requests")
        if isinstance(limits, dict) and limits:
            requests = resources.setdefault("requests", {})
            if isinstance(requests, dict):
                for name, value in limits.items():
                    requests.setdefault(name, value)
        canonical_quantities(resources.get("limits"))
        canonical_quantities(resources.get("requests"))
    for port in dicts(container.get("ports")):
        port.setdefault("protocol", "TCP")
        if host_network and "hostPort" not in port and "containerPort" in port:
            port["hostPort"] = port["containerPort"]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(container.get(probe))
    lifecycle = container.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            if isinstance(lifecycle.get(hook), dict):
                _default_http_get(lifecycle[hook].get("httpGet"))
    for env in dicts(container.get("env")):
        field_ref = (env.get("valueFrom") or {}).get("fieldRef")
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")


def _default_volume(volume: Obj) -> None:
    if not any(name in volume for name in VOLUME_SOURCES):
        volume["emptyDir"] = {}
    for source in ("secret", "configMap", "downwardAPI", "projected"):
        if isinstance(volume.get(source), dict):
            volume[source].setdefault("defaultMode", DEFAULT_MODE)
    if isinstance(volume.get("hostPath"), dict):
        volume["hostPath"].setdefault("type", "")
    empty_dir = volume.get("emptyDir")
    if isinstance(empty_dir, dict) and "sizeLimit" in empty_dir:
        canonical_quantities(empty_dir)
    for projection in dicts((volume.get("projected") or {}).get("sources")):
        token = projection.get("serviceAccountToken")
        if isinstance(token, dict):
            token.setdefault("expirationSeconds", 3600)


def default_pod_spec(spec: Obj) -> None:
    """``SetDefaults_PodSpec`` and the defaults of everything a PodSpec holds."""
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("securityContext", {})
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    host_network = spec.get("hostNetwork") is True
    for name in ("containers", "initContainers", "ephemeralContainers"):
        for container in dicts(spec.get(name)):
            _default_container(container, host_network)
    for volume in dicts(spec.get("volumes")):
        _default_volume(volume)
    canonical_quantities(spec.get("overhead"))
