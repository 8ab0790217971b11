"""The service account token controller: legacy token Secrets are filled in for their
account, and deleted with it.

Upstream's ``pkg/controller/serviceaccount`` ``TokensController``. The tokens this cluster
issues are bound JWTs (the TokenRequest API) that the API server checks against the account's
uid on every request, so a deleted account's bound tokens authenticate nobody whatever this
controller does. What remains are Secrets of type ``kubernetes.io/service-account-token``
that name an account in their ``kubernetes.io/service-account.name`` (and ``.uid``)
annotations:

- such a Secret whose account does not exist (or has another uid) is deleted, with a uid
  precondition; the account is looked up in the API when the cache misses it (or shows it
  with another uid), so a cache that has not caught up with a new account deletes nothing;
- an account deleted takes every such Secret naming it (and its uid) along;
- a Secret lacking ``token``, ``ca.crt`` or ``namespace`` gets them: a legacy JWT
  (issuer ``kubernetes/serviceaccount``, upstream's ``LegacyClaims``) signed with
  ``--service-account-private-key-file``, the root CA, the namespace; and both annotations.

Upstream no longer creates such Secrets by itself (LegacyServiceAccountTokenNoAutoGeneration);
neither does this. The decisions are :func:`secret_action` and :func:`tokens_to_delete`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import logging
from collections.abc import Sequence
from typing import Any, Literal

import attrs
import jwt
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from raftkube.clock import Clock
from raftkube.controllers.controller import Worker, new_queue
from raftkube.controllers.informer import ResourceEventHandlerFuncs, SharedInformerFactory
from raftkube.controllers.resources import SERVICE_ACCOUNTS, resource
from raftkube.controllers.store import DeletedFinalStateUnknown, object_of
from raftkube.kubeclient import KubeAPIError, KubeClient

logger = logging.getLogger("raftkube.controllers.tokens")

Obj = dict[str, Any]

SECRETS = resource("", "v1", "secrets")
SERVICE_ACCOUNT_TOKEN_TYPE = "kubernetes.io/service-account-token"
NAME_KEY = "kubernetes.io/service-account.name"
UID_KEY = "kubernetes.io/service-account.uid"
LEGACY_ISSUER = "kubernetes/serviceaccount"


def key_id(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    """``keyIDFromPublicKey``: unpadded base64url SHA-256 of the public key's DER."""
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


@attrs.frozen
class LegacyTokenGenerator:
    """upstream's ``JWTTokenGenerator`` with the legacy issuer."""

    private_key_pem: bytes

    def generate(self, account: Obj, secret_name: str) -> str:
        key = serialization.load_pem_private_key(self.private_key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError("the service account key must be RSA or ECDSA")
        meta = account["metadata"]
        claims = {
            "iss": LEGACY_ISSUER,
            "sub": f"system:serviceaccount:{meta['namespace']}:{meta['name']}",
            "kubernetes.io/serviceaccount/namespace": meta["namespace"],
            "kubernetes.io/serviceaccount/secret.name": secret_name,
            "kubernetes.io/serviceaccount/service-account.name": meta["name"],
            "kubernetes.io/serviceaccount/service-account.uid": meta.get("uid", ""),
        }
        algorithm = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": key_id(key)})


def is_token_secret(secret: Obj) -> bool:
    return secret.get("type") == SERVICE_ACCOUNT_TOKEN_TYPE


def references(secret: Obj, account: Obj) -> bool:
    """``IsServiceAccountToken``: a token Secret of ``account`` (same namespace and name, and
    the same uid when the Secret names one)."""
    if not is_token_secret(secret):
        return False
    meta, account_meta = secret.get("metadata") or {}, account.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    if meta.get("namespace") != account_meta.get("namespace"):
        return False
    if annotations.get(NAME_KEY) != account_meta.get("name"):
        return False
    uid = annotations.get(UID_KEY)
    return not uid or uid == account_meta.get("uid")


def tokens_to_delete(account: Obj, secrets: Sequence[Obj]) -> list[Obj]:
    """The Secrets that go with a deleted ``account``."""
    return [s for s in secrets if references(s, account)]


@attrs.frozen
class SecretAction:
    verb: Literal["delete", "populate"]
    obj: Obj


def secret_action(
    secret: Obj, account: Obj | None, root_ca: bytes, generator: LegacyTokenGenerator | None
) -> SecretAction | None:
    """What ``syncSecret`` does with a token ``secret`` given its ``account`` (None: it does
    not exist with the Secret's uid): delete it, fill it in (the new Secret to PUT), or
    nothing. Without a generator, Secrets are only deleted."""
    if not is_token_secret(secret):
        return None
    if account is None or not references(secret, account):
        return SecretAction("delete", secret)
    data = secret.get("data") or {}
    namespace = secret["metadata"]["namespace"]
    ca = base64.b64encode(root_ca).decode() if root_ca else None
    needs = (
        not data.get("token")
        or (ca is not None and data.get("ca.crt") != ca)
        or data.get("namespace") != base64.b64encode(namespace.encode()).decode()
    )
    if not needs or generator is None:
        return None
    filled = copy.deepcopy(secret)
    filled_data = filled.setdefault("data", {})
    if ca is not None:
        filled_data["ca.crt"] = ca
    filled_data["namespace"] = base64.b64encode(namespace.encode()).decode()
    if not data.get("token"):
        token = generator.generate(account, secret["metadata"]["name"])
        filled_data["token"] = base64.b64encode(token.encode()).decode()
    annotations = filled["metadata"].setdefault("annotations", {})
    annotations[NAME_KEY] = account["metadata"]["name"]
    annotations[UID_KEY] = account["metadata"].get("uid", "")
    return SecretAction("populate", filled)


class TokensController:
    """See the module docstring; :meth:`run` until cancelled."""

    def __init__(
        self,
        client: KubeClient,
        factory: SharedInformerFactory,
        clock: Clock,
        *,
        root_ca: bytes = b"",
        private_key_pem: bytes | None = None,
    ) -> None:
        self.client = client
        self.root_ca = root_ca
        self.generator = LegacyTokenGenerator(private_key_pem) if private_key_pem else None
        self.accounts = factory.lister(SERVICE_ACCOUNTS)
        self.secrets = factory.lister(SECRETS)
        self.account_queue = new_queue(clock, "serviceaccount-tokens-service")
        self.secret_queue = new_queue(clock, "serviceaccount-tokens-secret")
        self._deleted_accounts: dict[str, Obj] = {}
        sa_informer = factory.informer_for(SERVICE_ACCOUNTS)
        secret_informer = factory.informer_for(SECRETS)
        sa_informer.add_event_handler(ResourceEventHandlerFuncs(delete_func=self._account_deleted))
        secret_informer.add_event_handler(
            ResourceEventHandlerFuncs(
                add_func=self._secret_changed,
                update_func=lambda old, new: self._secret_changed(new),
            )
        )
        informers = (sa_informer, secret_informer)
        self.account_worker = Worker(
            "serviceaccount-tokens-service", self.account_queue, self.sync_account, informers
        )
        self.secret_worker = Worker(
            "serviceaccount-tokens-secret", self.secret_queue, self.sync_secret, informers
        )

    def _account_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        account = object_of(obj)
        meta = account["metadata"]
        key = f"{meta['namespace']}/{meta['name']}/{meta.get('uid', '')}"
        self._deleted_accounts[key] = account
        self.account_queue.add(key)

    def _secret_changed(self, secret: Obj) -> None:
        if is_token_secret(secret):
            self.secret_queue.add(f"{secret['metadata']['namespace']}/{secret['metadata']['name']}")

    async def sync_account(self, key: str) -> None:
        """``syncServiceAccount`` for a deleted account: its token Secrets go."""
        account = self._deleted_accounts.get(key)
        if account is None:
            return
        namespace = account["metadata"]["namespace"]
        for secret in tokens_to_delete(account, self.secrets.list(namespace)):
            await self._delete(secret)
        del self._deleted_accounts[key]

    async def _account_for(self, secret: Obj) -> Obj | None:
        """``getServiceAccount(..., fetchOnCacheMiss=true)``: the cache first, then the API.
        A cached account with another uid than the Secret records is a miss too (the cache
        may not have caught up with the account re-created), as upstream has it."""
        meta = secret["metadata"]
        annotations = meta.get("annotations") or {}
        name, uid = annotations.get(NAME_KEY, ""), annotations.get(UID_KEY, "")
        if not name:
            return None
        account = self.accounts.get(name, meta["namespace"])
        if account is not None and (not uid or account["metadata"].get("uid") == uid):
            return account
        try:
            account = await self.client.get(SERVICE_ACCOUNTS, name, namespace=meta["namespace"])
        except KubeAPIError as exc:
            if exc.code == 404:
                return None
            raise
        if uid and account["metadata"].get("uid") != uid:
            return None
        return account

    async def sync_secret(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        secret = self.secrets.get(name, namespace)
        if secret is None:
            return
        account = await self._account_for(secret)
        action = secret_action(secret, account, self.root_ca, self.generator)
        if action is None:
            return
        if action.verb == "delete":
            await self._delete(secret)
            return
        # generateTokenIfNeeded works on the live Secret: the cache's may be stale.
        live = await self.client.get(SECRETS, name, namespace=namespace)
        action = secret_action(live, account, self.root_ca, self.generator)
        if action is not None and action.verb == "populate":
            await self.client.update(SECRETS, action.obj)

    async def _delete(self, secret: Obj) -> None:
        meta = secret["metadata"]
        options = {"preconditions": {"uid": meta.get("uid")}} if meta.get("uid") else None
        try:
            await self.client.delete(
                SECRETS, meta["name"], namespace=meta["namespace"], options=options
            )
        except KubeAPIError as exc:
            if exc.code not in (404, 409):
                raise

    async def run(self, workers: int = 1) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.account_worker.run, workers)
            nursery.start_soon(self.secret_worker.run, workers)
