"""Service-account tokens: what is issued, and every way a token is refused."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import jwt
import pytest
import trio
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from raftkube.apiserver.auth.tokens import (
    CREDENTIAL_ID_KEY,
    POD_NAME_KEY,
    POD_UID_KEY,
    PodRef,
    SigningKey,
    TokenError,
    TokenIssuer,
    TokenVerifier,
    key_id,
    split_service_account_username,
)
from raftkube.apiserver.errors import APIError

ISSUER = "https://kubernetes.default.svc.cluster.local"
T0 = 1_700_000_000.0
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.t = now

    def __call__(self) -> float:
        return self.t


class Store:
    """ServiceAccounts and pods by (namespace, name), looked up asynchronously."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.lookups = 0

    def put(self, kind: str, ns: str, name: str, uid: str, **meta: Any) -> None:
        self.objects[(kind, ns, name)] = {"metadata": {"name": name, "uid": uid, **meta}}

    def lookup(self, kind: str) -> Any:
        async def get(ns: str, name: str) -> Mapping[str, Any] | None:
            self.lookups += 1
            await trio.lowlevel.checkpoint()
            return self.objects.get((kind, ns, name))

        return get


def setup(key: SigningKey = EC_KEY) -> tuple[TokenIssuer, TokenVerifier, Clock, Store]:
    clock = Clock()
    store = Store()
    store.put("sa", "ns", "robot", "uid-1")
    store.put("pod", "ns", "web-0", "pod-uid")
    issuer = TokenIssuer(key, ISSUER, clock, default_audiences=(ISSUER,))
    verifier = TokenVerifier(
        keys=[key.public_key()],
        issuer=ISSUER,
        audiences=[ISSUER],
        now=clock,
        lookup_service_account=store.lookup("sa"),
        lookup_pod=store.lookup("pod"),
    )
    return issuer, verifier, clock, store


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


async def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenError) as info:
        await verifier.verify(token)
    message = str(info.value)
    assert token not in message
    return message


@pytest.mark.parametrize("key", [EC_KEY, RSA_KEY], ids=["ES256", "RS256"])
@pytest.mark.trio
async def test_issue_and_verify(key: SigningKey) -> None:
    with trio.fail_after(10):
        issuer, verifier, _, _ = setup(key)
        issued = issuer.issue("ns", "robot", "uid-1")
        header = jwt.get_unverified_header(issued.token)
        assert header["alg"] == ("ES256" if key is EC_KEY else "RS256")
        assert header["kid"] == key_id(key.public_key())
        body = claims(issued.token)
        assert body["iss"] == ISSUER
        assert body["sub"] == "system:serviceaccount:ns:robot"
        assert body["aud"] == [ISSUER]
        assert body["iat"] == body["nbf"] == int(T0)
        assert body["exp"] == int(T0) + 3600
        assert body["kubernetes.io"] == {
            "namespace": "ns",
            "serviceaccount": {"name": "robot", "uid": "uid-1"},
        }
        assert issued.expiration == T0 + 3600
        assert issued.audiences == (ISSUER,)
        assert issued.status() == {
            "token": issued.token,
            "expirationTimestamp": "2023-11-14T23:13:20Z",
        }
        user = await verifier.verify(issued.token)
        assert user.name == "system:serviceaccount:ns:robot"
        assert user.uid == "uid-1"
        assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:ns")
        assert dict(user.extra) == {CREDENTIAL_ID_KEY: (f"JTI={body['jti']}",)}


def test_expiration_bounds_and_audiences() -> None:
    issuer, _, _, _ = setup()
    with pytest.raises(APIError) as info:
        issuer.issue("ns", "robot", "uid-1", expiration_seconds=599)
    assert info.value.code == 422
    assert info.value.message == (
        'TokenRequest.authentication.k8s.io "robot" is invalid: spec.expirationSeconds: '
        "Invalid value: 599: may not specify a duration less than 10 minutes"
    )
    with pytest.raises(APIError):
        issuer.issue("ns", "robot", "uid-1", expiration_seconds=(1 << 32) + 1)
    issued = issuer.issue("ns", "robot", "uid-1", ["vault"], expiration_seconds=600)
    assert claims(issued.token)["exp"] == int(T0) + 600
    assert claims(issued.token)["aud"] == ["vault"]
    assert issued.audiences == ("vault",)


@pytest.mark.trio
async def test_forged_tokens_are_refused() -> None:
    with trio.fail_after(10):
        issuer, verifier, _, _ = setup()
        token = issuer.issue("ns", "robot", "uid-1").token
        # signed by another key (same kid claimed or not)
        forger = TokenIssuer(ec.generate_private_key(ec.SECP256R1()), ISSUER, Clock())
        forged = forger.issue("ns", "robot", "uid-1").token
        assert verifier.is_ours(forged)
        assert await refused(verifier, forged) == "token signature is invalid"
        # the payload changed after signing
        head, _, sig = token.split(".")
        body = claims(token)
        body["kubernetes.io"]["serviceaccount"]["name"] = "admin"
        payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
        assert await refused(verifier, f"{head}.{payload}.{sig}") == "token signature is invalid"
        # only the algorithm of the key is accepted: "alg": "none" and HMAC never
        unsigned = jwt.encode(body, "", algorithm="none")
        expected = "token could not be validated: InvalidAlgorithmError"
        assert await refused(verifier, unsigned) == expected
        hmac_signed = jwt.encode(body, "s" * 32, algorithm="HS256", headers={"kid": head})
        assert await refused(verifier, hmac_signed) == expected
        assert await refused(verifier, "not.a.jwt") == "malformed token"


@pytest.mark.trio
async def test_expiry_and_not_before_on_the_given_clock() -> None:
    with trio.fail_after(10):
        issuer, verifier, clock, _ = setup()
        token = issuer.issue("ns", "robot", "uid-1", expiration_seconds=600).token
        clock.t = T0 + 600 + 60  # within go-jose's one-minute leeway
        await verifier.verify(token)
        clock.t = T0 + 600 + 61
        assert await refused(verifier, token) == "service account token has expired"
        clock.t = T0 - 61
        assert await refused(verifier, token) == "service account token is not valid yet"


@pytest.mark.trio
async def test_wrong_audience_and_issuer() -> None:
    with trio.fail_after(10):
        issuer, verifier, _, _ = setup()
        token = issuer.issue("ns", "robot", "uid-1", ["vault"]).token
        assert await refused(verifier, token) == "token audiences is invalid"
        other = TokenIssuer(EC_KEY, "https://elsewhere", Clock()).issue("ns", "robot", "uid-1")
        assert not verifier.is_ours(other.token)
        assert await refused(verifier, other.token) == "token issuer is invalid"
        assert not verifier.is_ours("static-token-not-a-jwt")


@pytest.mark.trio
async def test_deleted_or_recreated_account_authenticates_nobody() -> None:
    with trio.fail_after(10):
        issuer, verifier, clock, store = setup()
        token = issuer.issue("ns", "robot", "uid-1").token
        del store.objects[("sa", "ns", "robot")]
        assert await refused(verifier, token) == 'serviceaccounts "robot" not found'
        store.put("sa", "ns", "robot", "uid-2")  # same name, new account
        assert await refused(verifier, token) == (
            "service account UID (uid-2) does not match claim (uid-1)"
        )
        store.put("sa", "ns", "robot", "uid-1", deletionTimestamp="2023-11-14T22:00:00Z")
        assert await refused(verifier, token) == "serviceaccount ns/robot has been deleted"
        # a deletion within the leeway still authenticates, as upstream's
        clock.t = T0
        store.put("sa", "ns", "robot", "uid-1", deletionTimestamp="2023-11-14T22:12:50Z")
        await verifier.verify(token)


@pytest.mark.trio
async def test_pod_bound_tokens() -> None:
    with trio.fail_after(10):
        issuer, verifier, _, store = setup()
        token = issuer.issue("ns", "robot", "uid-1", bound_pod=PodRef("web-0", "pod-uid")).token
        assert claims(token)["kubernetes.io"]["pod"] == {"name": "web-0", "uid": "pod-uid"}
        user = await verifier.verify(token)
        extra = dict(user.extra)
        assert extra[POD_NAME_KEY] == ("web-0",)
        assert extra[POD_UID_KEY] == ("pod-uid",)
        store.put("pod", "ns", "web-0", "other-uid")
        assert (
            await refused(verifier, token) == "pod UID (other-uid) does not match claim (pod-uid)"
        )
        del store.objects[("pod", "ns", "web-0")]
        assert await refused(verifier, token) == 'pods "web-0" not found'
        blind = TokenVerifier([EC_KEY.public_key()], ISSUER, [ISSUER], Clock(), store.lookup("sa"))
        assert await refused(blind, token) == "pod-bound tokens cannot be checked here"


@pytest.mark.trio
async def test_key_rotation_picks_the_key_by_kid() -> None:
    with trio.fail_after(10):
        issuer, verifier, _, _ = setup(RSA_KEY)
        rotated = TokenVerifier(
            [EC_KEY.public_key(), RSA_KEY.public_key()],
            ISSUER,
            [ISSUER],
            Clock(),
            verifier.lookup_service_account,
        )
        assert (await rotated.verify(issuer.issue("ns", "robot", "uid-1").token)).uid == "uid-1"


def test_service_account_usernames() -> None:
    assert split_service_account_username("system:serviceaccount:ns:robot") == ("ns", "robot")
    assert split_service_account_username("system:serviceaccount:ns") is None
    assert split_service_account_username("system:serviceaccount::robot") is None
    assert split_service_account_username("system:serviceaccount:ns:a:b") is None
    assert split_service_account_username("alice") is None
