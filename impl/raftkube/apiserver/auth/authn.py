"""Who is asking: upstream's request authenticator chain.

The methods are tried in upstream's order and the first that recognises the request wins:

1. **x509 client certificate**: the certificate the TLS handshake already verified against the
   cluster CA; its last Common Name is the user name and each Organization a group. A
   certificate whose extended key usage excludes client authentication, or with no Common Name,
   identifies nobody (and the token methods are still tried, as upstream's union does).
2. **Bearer token**, ``Authorization: Bearer <token>``: first the static tokens of a token file
   (upstream's ``--token-auth-file``), then service-account tokens (:mod:`.tokens`) whose issuer
   is the cluster's. A bearer token that none accepts is a 401, even when anonymous requests
   are enabled: a bad credential is never taken for no credential.
3. **Anonymous**, only when enabled (off by default) and only for a request that presented
   neither a certificate nor a bearer token: ``system:anonymous`` in ``system:unauthenticated``.
   Otherwise a request without usable credentials is a 401.

Every authenticated user also gets ``system:authenticated``, unless it already carries it or
``system:unauthenticated`` (upstream's ``AuthenticatedGroupAdder``).

Tokens are secrets: they are compared in constant time (each static token is kept only as its
SHA-256 digest and every digest is compared, so neither the token nor which entry matched leaks
through timing), and no token is ever written to a log line or an error message; the client
gets upstream's bare ``Unauthorized``.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import hmac
import logging
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from raftkube.apiserver.errors import unauthorized
from raftkube.apiserver.request import Request

from .tokens import TokenError, TokenVerifier
from .user import ANONYMOUS, AUTHENTICATED, UNAUTHENTICATED, UserInfo

log = logging.getLogger(__name__)


class TokenFileError(Exception):
    """A token file that cannot be used; the message names the file and record, never a
    token."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@attrs.frozen
class StaticTokens:
    """The users of a token file, keyed by the SHA-256 of their token."""

    entries: tuple[tuple[bytes, UserInfo], ...] = ()

    @classmethod
    def from_rows(cls, rows: list[tuple[str, UserInfo]]) -> StaticTokens:
        """From ``(token, user)`` pairs; a later duplicate token replaces an earlier one, as a
        later line of upstream's file does."""
        by_digest: dict[bytes, UserInfo] = {}
        for token, user in rows:
            by_digest[_digest(token)] = user
        return cls(tuple(by_digest.items()))

    def lookup(self, token: str) -> UserInfo | None:
        """The user whose token this is; every entry is compared whatever matches, in
        constant time per entry."""
        wanted = _digest(token)
        found: UserInfo | None = None
        for digest, user in self.entries:
            if hmac.compare_digest(digest, wanted):
                found = user
        return found


def load_token_file(path: Path | str) -> StaticTokens:
    """Read upstream's token file: CSV lines ``token,user,uid[,"group1,group2"]``. Lines with
    an empty token are skipped; fewer than three columns is an error, as upstream's
    ``NewCSV`` reports it."""
    rows: list[tuple[str, UserInfo]] = []
    with open(path, newline="") as f:
        for number, record in enumerate(csv.reader(f), start=1):
            if not record:
                continue
            if len(record) < 3:
                raise TokenFileError(
                    f"token file '{path}' must have at least 3 columns "
                    f"(token, user name, user uid), found {len(record)}"
                )
            token, name, uid = record[0], record[1], record[2]
            if not token:
                log.warning("empty token in token file '%s', record number %d", path, number)
                continue
            groups = tuple(record[3].split(",")) if len(record) >= 4 else ()
            rows.append((token, UserInfo(name=name, uid=uid, groups=groups)))
    return StaticTokens.from_rows(rows)


@functools.lru_cache(maxsize=1024)
def user_from_certificate(der: bytes) -> UserInfo | None:
    """The user a verified client certificate names (upstream's
    ``CommonNameUserConversion``), or None if it names nobody or is not for clients.

    Remembered per certificate: a client sends the same one on every request of every
    connection, and parsing it was a tenth of a create's cost. The answer depends on the
    certificate's bytes alone (TLS has already checked the chain and the dates)."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not (
        ExtendedKeyUsageOID.CLIENT_AUTH in usage
        or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usage
    ):
        return None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(names[-1].value) if names else ""
    if not common_name:
        return None
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return UserInfo(name=common_name, groups=tuple(str(o.value) for o in orgs))


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, parsed as upstream's
    ``bearertoken`` authenticator does (scheme case-insensitive, one space, nothing after a
    second one); None when there is none."""
    header = request.headers.get("authorization", "").strip()
    if not header:
        return None
    parts = header.split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
        return None
    return parts[1]


def _with_authenticated(user: UserInfo) -> UserInfo:
    if AUTHENTICATED in user.groups or UNAUTHENTICATED in user.groups:
        return user
    return attrs.evolve(user, groups=(*user.groups, AUTHENTICATED))


ANONYMOUS_USER = UserInfo(name=ANONYMOUS, groups=(UNAUTHENTICATED,))


@attrs.frozen
class Authenticator:
    """The chain; see the module docstring. Every part is optional: a cluster without a token
    file passes no ``static_tokens``."""

    static_tokens: StaticTokens | None = None
    service_accounts: TokenVerifier | None = None
    anonymous: bool = False

    async def authenticate(self, request: Request) -> UserInfo:
        """The user ``request`` authenticates as, or the 401 ``APIError``."""
        if request.peer_certificate is not None:
            user = user_from_certificate(request.peer_certificate)
            if user is not None:
                return _with_authenticated(user)
        token = bearer_token(request)
        if token is not None:
            return await self.authenticate_token(token)
        if request.peer_certificate is None and self.anonymous:
            return ANONYMOUS_USER
        raise unauthorized()

    async def authenticate_token(self, token: str) -> UserInfo:
        """The user a bearer token alone authenticates as (TokenReview's question), or the
        401 ``APIError``."""
        user = await self._from_token(token)
        if user is None:
            raise unauthorized()
        return _with_authenticated(user)

    async def _from_token(self, token: str) -> UserInfo | None:
        if self.static_tokens is not None:
            user = self.static_tokens.lookup(token)
            if user is not None:
                return user
        if self.service_accounts is not None and self.service_accounts.is_ours(token):
            try:
                return await self.service_accounts.verify(token)
            except TokenError as exc:
                log.info("service account token refused: %s", exc)
        return None
