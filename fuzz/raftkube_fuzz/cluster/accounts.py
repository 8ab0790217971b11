"""The user's ServiceAccount actions, as ``kubectl`` sends them: ``create serviceaccount``,
``delete serviceaccount`` and ``create token`` (a TokenRequest), all as the admin.

Accounts are named from :data:`ACCOUNT_NAMES`, so that actions collide: a token asked for an
account just deleted, an account re-created (with a new uid) under the name of one whose token
the user still holds. Every token the API server issues is handed to the caller's ``keep``
as a :class:`KeptToken`, for the check that it authenticates exactly while its account lives
(:mod:`raftkube_fuzz.checks.account_tokens`).

A token's bytes differ from process to process (the cluster's signing key is made from the
OS's entropy, :mod:`.pki`), so a token is never written to the timeline: only its number,
its account and the account's uid, which the seed decides.

As in :mod:`.actions`, an action's outcome goes to the timeline and is never a failure of the
run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import jwt

from raftkube.kubeclient import KubeAPIError, KubeClient, KubeConnectionError
from raftkube.kubeclient.kubeconfig import load_kubeconfig
from raftkube_fuzz.cluster.actions import told
from raftkube_fuzz.world.host import HostEnv

Obj = dict[str, Any]

ACCOUNT_NAMES = ("sa-a", "sa-b")
"""Not ``default``: the service-account controller re-creates that one at once, and pods
need it to be admitted, which would tie the workloads' reconciliation to these steps."""
NAMESPACE = "default"
"""Where the accounts live unless a step names another namespace (``team-a``: deleting the
namespace deletes its accounts, whose tokens must then stop authenticating)."""
STEP_KINDS = ("create_account", "request_token", "delete_account")
SETUPS = ("none", "created", "tokens", "secrets")
"""The suite's ``accounts`` setting: ``created`` has the user create every account of
:data:`ACCOUNT_NAMES` before the first step, so a token can be asked for at once and a
deletion has something to delete; ``tokens`` also asks for a token for each, so the user
holds one from the start: a search about what outlives an account. ``secrets`` instead
creates a legacy token Secret for each (:func:`token_secret`), which the controller
manager's token controller fills in and deletes once its account is gone: a search about
that controller's requests (request conformance judges them). The suite's default is
``created``: with ``none`` nearly every token asked for was refused (404: no account yet),
so the check had almost nothing to judge."""

TOKEN_SECONDS = 86_400
"""What each TokenRequest asks for (``kubectl create token --duration 24h``): far longer than
any example, so that no kept token expires within one and a refusal is never its age."""


@attrs.frozen
class KeptToken:
    """A token the user holds: which account (and uid) it was issued for, and its times
    (epoch seconds on the API server's wall clock, from the token's own claims)."""

    number: int
    namespace: str
    name: str
    uid: str
    issued_at: float
    expires: float
    token: str = attrs.field(repr=False)

    def describe(self) -> str:
        account = self.name if self.namespace == NAMESPACE else f"{self.namespace}/{self.name}"
        return f"token {self.number} of {account} (uid {self.uid})"


def path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/serviceaccounts"


def service_account(name: str, namespace: str = NAMESPACE) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace},
    }


async def create(client: KubeClient, name: str, namespace: str = NAMESPACE) -> str:
    """``kubectl create serviceaccount NAME -n NAMESPACE``."""
    request = client.create(path(namespace), service_account(name, namespace))
    return await told("create", request, "created")


def token_secret(name: str, namespace: str = NAMESPACE) -> Obj:
    """A long-lived token Secret for account ``name``, as upstream's documentation has a user
    create one now that the token controller no longer does: type
    ``kubernetes.io/service-account-token``, naming the account in an annotation; the token
    controller fills in the token and the account's uid."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": f"{name}-token",
            "namespace": namespace,
            "annotations": {"kubernetes.io/service-account.name": name},
        },
        "type": "kubernetes.io/service-account-token",
    }


async def create_token_secret(client: KubeClient, name: str, namespace: str = NAMESPACE) -> str:
    """``kubectl create -f`` of :func:`token_secret`."""
    secrets = f"/api/v1/namespaces/{namespace}/secrets"
    request = client.create(secrets, token_secret(name, namespace))
    return await told("create", request, "created")


async def delete(client: KubeClient, name: str, namespace: str = NAMESPACE) -> str:
    """``kubectl delete serviceaccount NAME -n NAMESPACE``."""
    request = client.call("DELETE", f"{path(namespace)}/{name}")
    return await told("delete", request, "deleted")


async def request_token(
    client: KubeClient,
    name: str,
    number: int,
    keep: Callable[[KeptToken], None],
    namespace: str = NAMESPACE,
) -> str:
    """``kubectl create token NAME -n NAMESPACE --duration 24h``: a TokenRequest; an issued
    token is given to ``keep`` as token ``number``."""
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": TOKEN_SECONDS},
    }
    try:
        answer = await client.call("POST", f"{path(namespace)}/{name}/token", body=body)
    except KubeAPIError as exc:
        return f"token refused: {exc.code} {exc}"
    except KubeConnectionError as exc:
        return f"token failed: {exc}"
    token = str((answer.get("status") or {}).get("token") or "")
    kept = _kept(number, token)
    if kept is None:
        return "token unreadable"
    keep(kept)
    return f"issued {kept.describe()}"


def _kept(number: int, token: str) -> KeptToken | None:
    """What the token says about itself (its claims read without the signature: the user
    holds no key, and the check needs only which account it names)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        private = claims["kubernetes.io"]
        return KeptToken(
            number=number,
            namespace=str(private["namespace"]),
            name=str(private["serviceaccount"]["name"]),
            uid=str(private["serviceaccount"]["uid"]),
            issued_at=float(claims["iat"]),
            expires=float(claims["exp"]),
            token=token,
        )
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return None


def bearer_client(env: HostEnv, kubeconfig: str) -> KubeClient:
    """A client of the kubeconfig's API server that trusts its CA but presents no client
    certificate, on the host's network and clock: a request through it is authenticated by
    the bearer token it carries alone (a certificate would win over the token)."""
    config = attrs.evolve(load_kubeconfig(kubeconfig), client_certificate=None, client_key=None)
    return KubeClient(
        config.server,
        ssl_context=config.ssl_context(),
        tls_server_name=config.tls_server_name,
        dial=env.network.open_stream,
        clock=env.clock,
        user_agent="kubectl",
        timeout=10.0,
    )
