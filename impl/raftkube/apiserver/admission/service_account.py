"""ServiceAccount: every pod runs as a service account that exists, with its API token mounted.

As upstream's ``plugin/pkg/admission/serviceaccount``, on the create of a pod (not on updates,
not on subresources):

- ``spec.serviceAccountName`` defaults to ``default``; an account that does not exist refuses
  the pod (403 ``error looking up service account ns/name: serviceaccount "name" not found``);
- unless ``automountServiceAccountToken`` is false on the pod (or, the pod not saying, on the
  account), a projected volume ``kube-api-access-<5 random characters>`` (a bound token that
  expires after 3607 s, ``ca.crt`` from the ``kube-root-ca.crt`` ConfigMap, the namespace from
  the downward API) is added, and mounted read-only at
  ``/var/run/secrets/kubernetes.io/serviceaccount`` in every init container and container that
  has nothing mounted there already; a pod that already has a ``kube-api-access-`` volume keeps
  it;
- a pod without ``imagePullSecrets`` gets the account's;
- mirror pods (static pods a kubelet reports, annotated ``kubernetes.io/config.mirror``) are
  left alone, and refused if they name a service account or mount secrets.

Upstream's opt-in ``LimitSecretReferences`` (secrets must be listed on the account) is not
implemented; it is off by default upstream too.
"""

from __future__ import annotations

import random
from typing import Any

import attrs

from raftkube.apiserver.admission.interfaces import CREATE, AdmissionContext, Attributes
from raftkube.apiserver.objects import generate_name
from raftkube.apiserver.resources import lookup

DEFAULT_ACCOUNT = "default"
VOLUME_PREFIX = "kube-api-access-"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_EXPIRATION_SECONDS = 3607
"""Upstream's ``WarnOnlyBoundTokenExpirationSeconds``: an hour and seven seconds, the seven
seconds telling the token issuer this is the admission's default (it then issues a longer-lived
token and warns when it is used after an hour)."""
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
SERVICE_ACCOUNTS = lookup("", "v1", "serviceaccounts")


def token_volume(name: str) -> dict[str, Any]:
    """The projected volume upstream's ``TokenVolumeSource`` describes, named ``name``."""
    return {
        "name": name,
        "projected": {
            "defaultMode": 0o644,
            "sources": [
                {
                    "serviceAccountToken": {
                        "expirationSeconds": TOKEN_EXPIRATION_SECONDS,
                        "path": "token",
                    }
                },
                {
                    "configMap": {
                        "name": ROOT_CA_CONFIGMAP,
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                            }
                        ]
                    }
                },
            ],
        },
    }


def _is_mirror(pod: dict[str, Any]) -> bool:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return MIRROR_ANNOTATION in annotations


def _should_automount(account: dict[str, Any], spec: dict[str, Any]) -> bool:
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    if account.get("automountServiceAccountToken") is not None:
        return bool(account["automountServiceAccountToken"])
    return True


@attrs.define
class ServiceAccount:
    """The plugin; ``rng`` draws the token volume's name suffix."""

    rng: random.Random = attrs.field(factory=random.Random)
    mount_token: bool = True
    name: str = "ServiceAccount"

    async def admit(self, a: Attributes, ctx: AdmissionContext) -> None:
        if a.operation != CREATE or not a.is_main("", "pods") or a.obj is None:
            return
        pod = a.obj
        if _is_mirror(pod):
            await self.validate(a, ctx)
            return
        spec = pod.setdefault("spec", {})
        if not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = DEFAULT_ACCOUNT
        account_name = str(spec["serviceAccountName"])
        assert SERVICE_ACCOUNTS is not None
        account = await ctx.get(SERVICE_ACCOUNTS, a.namespace, account_name)
        if account is None:
            raise a.forbidden(
                f"error looking up service account {a.namespace}/{account_name}: "
                f'serviceaccount "{account_name}" not found'
            )
        if self.mount_token and _should_automount(account, spec):
            self._mount_token(spec)
        if not spec.get("imagePullSecrets") and account.get("imagePullSecrets"):
            spec["imagePullSecrets"] = [
                {"name": s.get("name", "")} for s in account["imagePullSecrets"]
            ]
        await self.validate(a, ctx)

    async def validate(self, a: Attributes, ctx: AdmissionContext) -> None:
        if a.operation != CREATE or not a.is_main("", "pods") or a.obj is None:
            return
        pod = a.obj
        spec = pod.get("spec") or {}
        if _is_mirror(pod):
            if spec.get("serviceAccountName"):
                raise a.forbidden("a mirror pod may not reference service accounts")
            if any("secret" in (v or {}) for v in spec.get("volumes") or []):
                raise a.forbidden("a mirror pod may not reference secrets")
            return
        if not spec.get("serviceAccountName"):
            raise a.forbidden(f"no service account specified for pod {a.namespace}/{a.name}")

    def _mount_token(self, spec: dict[str, Any]) -> None:
        volumes = list(spec.get("volumes") or [])
        existing = [v for v in volumes if str(v.get("name", "")).startswith(VOLUME_PREFIX)]
        volume_name = (
            str(existing[0]["name"]) if existing else generate_name(VOLUME_PREFIX, self.rng)
        )
        mount = {"name": volume_name, "readOnly": True, "mountPath": MOUNT_PATH}
        needs_volume = False
        for field in ("initContainers", "containers"):
            for container in spec.get(field) or []:
                mounts = list(container.get("volumeMounts") or [])
                if any(m.get("mountPath") == MOUNT_PATH for m in mounts):
                    continue
                container["volumeMounts"] = [*mounts, dict(mount)]
                needs_volume = True
        if needs_volume and not existing:
            spec["volumes"] = [*volumes, token_volume(volume_name)]
