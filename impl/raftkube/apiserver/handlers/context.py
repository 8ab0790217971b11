"""What every handler is given: the request, what it means, who sent it, and the server's parts.

A handler is a plain async function of a :class:`Call`; the parts it may use are the ones on
:class:`Services`, each behind the narrow interface the handlers need, so the handlers can be
read without the storage, the caches or the authorizers open beside them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from raftkube.apiserver import errors
from raftkube.apiserver.auth.user import UserInfo
from raftkube.apiserver.request import Request
from raftkube.apiserver.request_info import RequestInfo
from raftkube.apiserver.resources import ResourceInfo
from raftkube.clock import Clock

if TYPE_CHECKING:
    from raftkube.apiserver.admission import AdmissionChain
    from raftkube.apiserver.auth.authorize import Authorizer
    from raftkube.apiserver.auth.tokens import TokenIssuer
    from raftkube.apiserver.storage import ObjectStore
    from raftkube.apiserver.watchcache import WatchCache
    from raftkube.kubeclient import KubeClient


@attrs.define(eq=False)
class Services:
    """The server's parts, shared by every request."""

    store: ObjectStore
    caches: dict[str, WatchCache]
    """One watch cache per stored resource, keyed by ``ResourceInfo.qualified``."""
    admission: AdmissionChain
    authorizer: Authorizer
    tokens: TokenIssuer
    clock: Clock
    """Monotonic time for timeouts (watch ``timeoutSeconds``, bookmarks)."""
    wall: Callable[[], float]
    """Epoch seconds for timestamps (creationTimestamp, deletionTimestamp)."""
    rng: random.Random
    """uids and generated names."""
    authenticate_token: Callable[[str], Any] | None = None
    """For TokenReview: the authenticator's bearer-token path (async; returns UserInfo)."""
    kubelet_client: Callable[[str, int], KubeClient] | None = None
    """A client of the kubelet at ``(address, port)`` with this server's kubelet client
    certificate (``pods/log``); None when none was configured."""
    watch_timeout: float = 1800.0
    """A watch without ``timeoutSeconds`` ends after a random time in [T, 2T), as upstream's
    ``--min-request-timeout``: clients re-watch, and load spreads over API servers."""

    def cache(self, info: ResourceInfo) -> WatchCache:
        return self.caches[info.qualified]


@attrs.frozen
class Call:
    """One resource request on its way through the handlers."""

    request: Request
    info: RequestInfo
    resource: ResourceInfo
    user: UserInfo
    services: Services

    @property
    def namespace(self) -> str:
        return self.info.namespace if self.resource.namespaced else ""

    @property
    def name(self) -> str:
        return self.info.name

    def param(self, name: str, default: str = "") -> str:
        return self.request.param(name, default)

    @property
    def dry_run(self) -> bool:
        """``dryRun=All``: every step but the write; any other value is refused as upstream."""
        values = self.request.query.get("dryRun", ())
        for value in values:
            if value != "All":
                raise errors.bad_request(f'unsupported dry run value "{value}"; supported: "All"')
        return bool(values)

    def not_found(self, name: str | None = None) -> errors.APIError:
        r = self.resource
        return errors.not_found(r.resource, self.name if name is None else name, r.group)
