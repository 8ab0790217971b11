"""Service-account tokens: upstream's bound tokens, as signed JWTs.

:class:`TokenIssuer` answers the TokenRequest API (``serviceaccounts/{name}/token``): a JWT
signed with the cluster's service-account key (RS256 for an RSA key, ES256 for a P-256 key)
carrying upstream's claims::

    {"iss": ..., "sub": "system:serviceaccount:{ns}:{name}", "aud": [...],
     "exp": ..., "iat": ..., "nbf": ..., "jti": ...,
     "kubernetes.io": {"namespace": ns, "serviceaccount": {"name", "uid"},
                       "pod": {"name", "uid"}}}            # pod only when bound to one

:class:`TokenVerifier` is the authenticator's side: the signature against the cluster's public
keys (the header's ``kid`` picks one, as upstream's ``keyIDFromPublicKey`` names them), the
issuer, an audience the API server accepts, the times with go-jose's one-minute leeway, all on
the given clock, and then, as upstream's bound-token validator does, that the ServiceAccount
(and the pod the token is bound to) still exists with the uid the token names: a token of a
deleted or re-created account authenticates nobody, however long it has to live.

Simplified: upstream may stretch the lifetime of kubelet-projected tokens to a year
(``--service-account-extend-token-expiration``) and binds tokens to Secrets and Nodes too; here
a token lives as long as asked and binds to a pod only. Legacy Secret-based tokens are not
issued or accepted.

No token ever appears in an exception message: the reasons say what was wrong, never with what.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import math
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from raftkube.apiserver.errors import Cause, invalid

from .user import SERVICE_ACCOUNTS, UserInfo

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
PRIVATE_CLAIM = "kubernetes.io"
DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600
"""Upstream's TokenRequest validation: "may not specify a duration less than 10 minutes"."""
MAX_EXPIRATION_SECONDS = 1 << 32
LEEWAY_SECONDS = 60.0
"""go-jose's ``DefaultLeeway``, which upstream's claim validation uses for exp, nbf and iat."""

POD_NAME_KEY = "authentication.kubernetes.io/pod-name"
POD_UID_KEY = "authentication.kubernetes.io/pod-uid"
CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id"

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
VerifyingKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
Lookup = Callable[[str, str], Awaitable[Mapping[str, Any] | None]]
"""``(namespace, name) -> object or None``: how the verifier reads ServiceAccounts and Pods."""


class TokenError(Exception):
    """A token that authenticates nobody; the message is safe to log (it never holds the
    token) but is not sent to the client, who gets a bare 401 as upstream sends."""


def service_account_username(namespace: str, name: str) -> str:
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def split_service_account_username(username: str) -> tuple[str, str] | None:
    """``(namespace, name)`` of a ``system:serviceaccount:{ns}:{name}`` user, else None."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, sep, name = username[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
    if not sep or not namespace or not name or ":" in name:
        return None
    return namespace, name


def service_account_user(
    namespace: str, name: str, uid: str, extra: Mapping[str, Sequence[str]] | None = None
) -> UserInfo:
    """The user a service account's token authenticates as (``system:authenticated`` is added
    by the authenticator, as upstream's group adder adds it)."""
    return UserInfo(
        name=service_account_username(namespace, name),
        uid=uid,
        groups=(SERVICE_ACCOUNTS, f"{SERVICE_ACCOUNTS}:{namespace}"),
        extra=tuple(sorted((k, tuple(v)) for k, v in (extra or {}).items())),
    )


def key_id(public_key: VerifyingKey) -> str:
    """Upstream's ``keyIDFromPublicKey``: unpadded base64url of the SHA-256 of the key's DER
    SubjectPublicKeyInfo, so every API server sharing the key names it alike."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def _algorithm(key: SigningKey | VerifyingKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    raise ValueError(f"unsupported service-account key curve {key.curve.name} (want P-256)")


@attrs.frozen
class PodRef:
    """The pod a token is bound to: it stops authenticating once that pod is gone."""

    name: str
    uid: str


@attrs.frozen
class IssuedToken:
    """A TokenRequest's answer: the token, when it expires (epoch seconds), and the audiences
    it was issued for (the request's, or the defaults when it named none)."""

    token: str
    expiration: float
    audiences: tuple[str, ...]

    def status(self) -> dict[str, str]:
        """The TokenRequest's ``status``."""
        when = datetime.datetime.fromtimestamp(self.expiration, datetime.UTC)
        return {"token": self.token, "expirationTimestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ")}


@attrs.frozen
class TokenIssuer:
    """Signs tokens for the TokenRequest API. ``now`` returns epoch seconds (the cluster's
    wall clock, or the simulation's); ``default_audiences`` are used when a request names none
    (upstream's ``--api-audiences``, which default to the issuer)."""

    signing_key: SigningKey
    issuer: str
    now: Callable[[], float]
    default_audiences: tuple[str, ...] = ()
    new_jti: Callable[[], str] = lambda: str(uuid.uuid4())
    """Each token's unique id; the simulation injects a seeded one (the default is the OS's
    entropy, as upstream's random UUID)."""

    def issue(
        self,
        namespace: str,
        name: str,
        uid: str,
        audiences: Sequence[str] = (),
        expiration_seconds: int = DEFAULT_EXPIRATION_SECONDS,
        bound_pod: PodRef | None = None,
    ) -> IssuedToken:
        """A token for ServiceAccount ``namespace/name`` (whose uid is ``uid``); an
        ``expiration_seconds`` out of range is refused with upstream's 422."""
        _validate_expiration(name, expiration_seconds)
        auds = list(audiences) or list(self.default_audiences) or [self.issuer]
        issued_at = math.floor(self.now())
        expires = issued_at + expiration_seconds
        private: dict[str, Any] = {
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": uid},
        }
        if bound_pod is not None:
            private["pod"] = {"name": bound_pod.name, "uid": bound_pod.uid}
        claims = {
            "aud": auds,
            "exp": expires,
            "iat": issued_at,
            "iss": self.issuer,
            "jti": self.new_jti(),
            PRIVATE_CLAIM: private,
            "nbf": issued_at,
            "sub": service_account_username(namespace, name),
        }
        token = jwt.encode(
            claims,
            self.signing_key,
            algorithm=_algorithm(self.signing_key),
            headers={"kid": key_id(self.signing_key.public_key())},
        )
        return IssuedToken(token, float(expires), tuple(auds))


def _validate_expiration(name: str, seconds: int) -> None:
    field = "spec.expirationSeconds"
    message = ""
    if seconds < MIN_EXPIRATION_SECONDS:
        message = f"Invalid value: {seconds}: may not specify a duration less than 10 minutes"
    elif seconds > MAX_EXPIRATION_SECONDS:
        message = f"Invalid value: {seconds}: may not specify a duration larger than 2^32 seconds"
    if message:
        cause = Cause(field, "FieldValueInvalid", message)
        raise invalid("TokenRequest", name, [cause], group="authentication.k8s.io")


def _epoch(timestamp: str) -> float:
    return datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


@attrs.frozen
class TokenVerifier:
    """Checks tokens the cluster's issuer signed; see the module docstring for the order.

    ``keys`` are every public key tokens may be signed with (more than one while a key is
    rotated); ``audiences`` are the API server's (a token must carry at least one);
    ``lookup_pod`` is needed for pod-bound tokens, which are refused without it.
    """

    keys: Sequence[VerifyingKey]
    issuer: str
    audiences: Sequence[str]
    now: Callable[[], float]
    lookup_service_account: Lookup
    lookup_pod: Lookup | None = None

    def is_ours(self, token: str) -> bool:
        """Whether ``token`` is a JWT naming our issuer (unverified): only those are this
        verifier's to accept or refuse; anything else is left to other authenticators."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return False
        return isinstance(claims, dict) and claims.get("iss") == self.issuer

    def _signed_claims(self, token: str) -> dict[str, Any]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise TokenError("malformed token") from None
        candidates = [k for k in self.keys if not kid or key_id(k) == kid] or list(self.keys)
        for key in candidates:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key,
                    algorithms=[_algorithm(key)],
                    audience=list(self.audiences),
                    issuer=self.issuer,
                    # Times are checked below on our clock, not PyJWT's time.time().
                    options={
                        "verify_exp": False,
                        "verify_nbf": False,
                        "verify_iat": False,
                        "require": ["exp", "iat", "nbf", "iss", "sub", "aud"],
                    },
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.InvalidAudienceError:
                raise TokenError("token audiences is invalid") from None
            except jwt.InvalidIssuerError:
                raise TokenError("token issuer is invalid") from None
            except jwt.PyJWTError as exc:
                raise TokenError(f"token could not be validated: {type(exc).__name__}") from None
            return claims
        raise TokenError("token signature is invalid")

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self.now()
        try:
            exp, nbf, iat = float(claims["exp"]), float(claims["nbf"]), float(claims["iat"])
        except (TypeError, ValueError):
            raise TokenError("token times are malformed") from None
        if now > exp + LEEWAY_SECONDS:
            raise TokenError("service account token has expired")
        if now + LEEWAY_SECONDS < nbf:
            raise TokenError("service account token is not valid yet")
        if now + LEEWAY_SECONDS < iat:
            raise TokenError("service account token is issued in the future")

    async def _check_live(self, kind: str, lookup: Lookup, ns: str, ref: Mapping[str, Any]) -> str:
        """The uid of ``ref``'s object if it still exists as the token names it."""
        name = str(ref.get("name", ""))
        claimed_uid = str(ref.get("uid", ""))
        obj = await lookup(ns, name)
        if obj is None:
            raise TokenError(f'{kind}s "{name}" not found')
        meta = obj.get("metadata") or {}
        deleted = meta.get("deletionTimestamp")
        if deleted and _epoch(deleted) < self.now() - LEEWAY_SECONDS:
            raise TokenError(f"{kind} {ns}/{name} has been deleted")
        uid = str(meta.get("uid", ""))
        if uid != claimed_uid:
            label = "service account" if kind == "serviceaccount" else kind
            raise TokenError(f"{label} UID ({uid}) does not match claim ({claimed_uid})")
        return uid

    async def verify(self, token: str) -> UserInfo:
        """The service account ``token`` authenticates, or :class:`TokenError`."""
        claims = self._signed_claims(token)
        self._check_times(claims)
        private = claims.get(PRIVATE_CLAIM)
        if not isinstance(private, dict):
            raise TokenError("token has no kubernetes.io claims")
        namespace = str(private.get("namespace", ""))
        account = private.get("serviceaccount")
        if not namespace or not isinstance(account, dict) or not account.get("name"):
            raise TokenError("token names no service account")
        name = str(account["name"])
        if claims.get("sub") != service_account_username(namespace, name):
            raise TokenError("token subject does not match its service account")
        uid = await self._check_live(
            "serviceaccount", self.lookup_service_account, namespace, account
        )
        extra: dict[str, list[str]] = {}
        pod = private.get("pod")
        if pod is not None:
            if self.lookup_pod is None or not isinstance(pod, dict):
                raise TokenError("pod-bound tokens cannot be checked here")
            await self._check_live("pod", self.lookup_pod, namespace, pod)
            extra[POD_NAME_KEY] = [str(pod.get("name", ""))]
            extra[POD_UID_KEY] = [str(pod.get("uid", ""))]
        if claims.get("jti"):
            extra[CREDENTIAL_ID_KEY] = [f"JTI={claims['jti']}"]
        return service_account_user(namespace, name, uid, extra)
