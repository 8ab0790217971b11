"""An async Kubernetes REST client: client-go's ``rest`` client, not a typed clientset.

Objects go in and come out as plain JSON dicts. Resources are named by a
:class:`~raftkube.apiserver.resources.ResourceInfo` (the path is built as client-go builds it:
``/api/v1`` or ``/apis/{group}/{version}``, then ``namespaces/{ns}`` for a namespaced resource
in one namespace, the resource, the name, the subresource) or by a ready path such as
``/api/v1/namespaces/default/pods``.

Failures are of two kinds, kept apart because callers react differently: the server answered
something other than 2xx (:class:`KubeAPIError`, carrying its ``Status``), or there was no
usable answer (:class:`KubeConnectionError`). A request whose reused keep-alive connection
breaks before any byte of the answer is retried once on a new connection if it is safe to
replay (``GET``, ``HEAD``, ``OPTIONS``), as Go's transport does; other requests are not
replayed, since the server may already have acted on them.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit

import attrs
import h11
import trio

from raftkube.apiserver.resources import ResourceInfo
from raftkube.clock import Clock, TrioClock
from raftkube.kubeclient.errors import KubeAPIError, KubeConnectionError
from raftkube.kubeclient.kubeconfig import load_kubeconfig
from raftkube.kubeclient.pool import Connection, ConnectionPool, Dial
from raftkube.kubeclient.watch import Watch

PatchType = Literal["json", "merge", "strategic"]

PATCH_CONTENT_TYPES: dict[str, str] = {
    "json": "application/json-patch+json",
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}

QueryValue = str | int | bool | Sequence[str]
Query = Mapping[str, QueryValue]

USER_AGENT = "raftkube-kubeclient/0.1"

RequestObserver = Callable[[str, str, Any, "int | BaseException"], None]
"""Told of every request :meth:`KubeClient.request` makes (every call but a watch's stream),
once its outcome is known: ``(method, path, body as given, outcome)``, the outcome being the
answer's status code or the exception the request ended with. It runs synchronously in the
requesting task before the caller sees the outcome, so it must be quick and must not raise.
Production leaves it unset; a checker uses it to learn which writes have an unknown outcome
(an answer lost or a 5xx: the server may have acted on them)."""

RequestDone = Callable[["int | BaseException", bytes], None]


def ignore_outcome(outcome: int | BaseException, data: bytes) -> None:
    """The :data:`RequestDone` of a tracer that wants nothing from a request's answer."""


RequestTracer = Callable[[str, str, "Query | None", Any], RequestDone]
"""Told when :meth:`KubeClient.request` sends a request (every call but a watch's stream):
``(method, path, query, body as given)``; it returns what to tell once the outcome is known:
the answer's status code and body, or the exception the request ended with (and ``b""``).
Like :data:`RequestObserver` it runs synchronously in the requesting task and must be quick
and must not raise; unlike it, it sees the moment a request starts and the answer's body, so a
checker can place each request in time and read what the server answered (Go's
``httptrace.ClientTrace`` and client-go's ``WrapTransport`` serve the same purpose). Production
leaves it unset."""

_REPLAYABLE = frozenset({"GET", "HEAD", "OPTIONS"})
_PATH_SAFE = "/%:@!$&'()*+,;=~"


def resource_path(
    resource: ResourceInfo | str, *, namespace: str = "", name: str = "", subresource: str = ""
) -> str:
    """The URL path of a collection, an object or an object's subresource."""
    if isinstance(resource, str):
        if namespace:
            raise ValueError("a namespace cannot be added to a ready path; put it in the path")
        path = resource.rstrip("/")
    else:
        path = f"/apis/{resource.group}/{resource.version}" if resource.group else "/api/v1"
        if namespace:
            if not resource.namespaced:
                raise ValueError(f"{resource.qualified} are not namespaced")
            path += f"/namespaces/{quote(namespace, safe='')}"
        path += f"/{resource.resource}"
    if name:
        path += f"/{quote(name, safe='')}"
    elif subresource:
        raise ValueError("a subresource needs an object name")
    if subresource:
        path += f"/{subresource}"
    return path


def _query_text(query: Query | None) -> str:
    if not query:
        return ""
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        if isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif isinstance(value, int | str):
            pairs.append((key, str(value)))
        else:
            pairs.extend((key, v) for v in value)
    return urlencode(pairs)


def _join_headers(fields: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in fields:
        name, value = raw_name.decode("ascii").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _decode(body: bytes) -> dict[str, Any]:
    try:
        decoded = json.loads(body)
    except ValueError as exc:
        raise KubeConnectionError(f"the server's answer is not JSON: {exc}") from None
    if not isinstance(decoded, dict):
        raise KubeConnectionError("the server's answer is not a JSON object")
    return decoded


@attrs.define
class KubeClient:
    """A client of one API server at ``server`` (``https://host:port``, optionally with a path
    prefix). ``ssl_context`` verifies the server and may present a client certificate; without
    one, an ``https`` server is verified against the system's roots. ``token`` is sent as
    ``Authorization: Bearer``. ``timeout`` bounds each request (connect, send, whole answer)
    except a watch's stream, which lasts as long as the server keeps it open. ``observer``
    (optional) is told each request's outcome (:data:`RequestObserver`); ``tracer`` (optional)
    each request's start and answer (:data:`RequestTracer`).

    Use it in ``async with`` (or call :meth:`aclose`) so idle connections are closed.
    """

    server: str
    ssl_context: ssl.SSLContext | None = attrs.field(default=None, kw_only=True)
    token: str | None = attrs.field(default=None, kw_only=True)
    dial: Dial = attrs.field(default=trio.open_tcp_stream, kw_only=True)
    clock: Clock = attrs.field(factory=TrioClock, kw_only=True)
    max_connections: int = attrs.field(default=100, kw_only=True)
    timeout: float = attrs.field(default=60.0, kw_only=True)
    tls_server_name: str | None = attrs.field(default=None, kw_only=True)
    user_agent: str = attrs.field(default=USER_AGENT, kw_only=True)
    observer: RequestObserver | None = attrs.field(default=None, kw_only=True)
    tracer: RequestTracer | None = attrs.field(default=None, kw_only=True)
    pool: ConnectionPool = attrs.field(init=False)
    _prefix: str = attrs.field(init=False)
    _authority: str = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        url = urlsplit(self.server)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"server must be an http:// or https:// URL, not {self.server!r}")
        if url.scheme == "http" and self.ssl_context is not None:
            raise ValueError(f"an ssl_context was given for the plain-HTTP server {self.server}")
        context = self.ssl_context
        if url.scheme == "https" and context is None:
            context = ssl.create_default_context()
        self._prefix = url.path.rstrip("/")
        self._authority = url.netloc
        self.pool = ConnectionPool(
            host=url.hostname,
            port=url.port or (443 if url.scheme == "https" else 80),
            dial=self.dial,
            clock=self.clock,
            ssl_context=context,
            server_hostname=self.tls_server_name,
            max_connections=self.max_connections,
        )

    @classmethod
    def from_kubeconfig(
        cls, path: Path | str, *, context: str | None = None, **options: Any
    ) -> KubeClient:
        """A client for the server, credentials and CA of ``path``'s current context (or of
        ``context``); ``options`` are passed on (``dial``, ``clock``, ``timeout``...)."""
        config = load_kubeconfig(path, context=context)
        return cls(
            config.server,
            ssl_context=config.ssl_context(),
            token=config.token,
            tls_server_name=config.tls_server_name,
            **options,
        )

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.pool.aclose()

    # --- raw requests ----------------------------------------------------------------------

    def _target(self, path: str, query: Query | None) -> str:
        target = quote(self._prefix + path, safe=_PATH_SAFE)
        text = _query_text(query)
        return f"{target}?{text}" if text else target

    def _headers(
        self, content_type: str | None, extra: Mapping[str, str] | None
    ) -> list[tuple[str, str]]:
        headers = [
            ("Host", self._authority),
            ("User-Agent", self.user_agent),
            ("Accept", "application/json"),
        ]
        if self.token:
            headers.append(("Authorization", f"Bearer {self.token}"))
        if content_type:
            headers.append(("Content-Type", content_type))
        if extra:
            headers.extend(extra.items())
        return headers

    async def open(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> tuple[Connection, int, dict[str, str]]:
        """Send a request and read the head of its answer by ``deadline`` on the client's clock
        (default: ``timeout`` from now); the caller reads the body from the returned connection
        and must hand it back with ``self.pool.release``."""
        if deadline is None:
            deadline = self.clock.now() + self.timeout
        fields = self._headers(content_type, headers)
        conn, head, _ = await self._exchange(
            method, path, self._target(path, query), fields, body, deadline, whole=False
        )
        return conn, head.status_code, _join_headers(head.headers)

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: bytes | Mapping[str, Any] | Sequence[Any] | None = None,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request; the answer's status, headers (lower-case names) and whole body,
        whatever the status. A body that is not bytes is sent as JSON."""
        payload = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        fields = self._headers(content_type if payload is not None else None, headers)
        deadline = self.clock.now() + self.timeout
        done = self.tracer(method, path, query, body) if self.tracer is not None else None
        try:
            _, head, data = await self._exchange(
                method, path, self._target(path, query), fields, payload, deadline, whole=True
            )
        except BaseException as exc:
            if self.observer is not None:
                self.observer(method, path, body, exc)
            if done is not None:
                done(exc, b"")
            raise
        if self.observer is not None:
            self.observer(method, path, body, head.status_code)
        if done is not None:
            done(head.status_code, data)
        return head.status_code, _join_headers(head.headers), data

    async def _exchange(
        self,
        method: str,
        path: str,
        target: str,
        fields: list[tuple[str, str]],
        body: bytes | None,
        deadline: float,
        *,
        whole: bool,
    ) -> tuple[Connection, h11.Response, bytes]:
        """Send the request and read the answer's head, and with ``whole`` its body too (the
        connection then goes back to the pool before this returns), all by ``deadline``: one
        cancel scope bounds the exchange, a replay included."""
        for attempt in range(2):
            conn = await self.pool.acquire()
            head: h11.Response | None = None
            data = b""
            scope = self.clock.cancel_scope_at(deadline)
            try:
                with scope:
                    await conn.send_request(method, target, fields, body)
                    head = await conn.receive_response()
                    if whole:
                        data = await conn.receive_body()
            except KubeConnectionError:
                await self.pool.release(conn, reusable=False)
                stale = conn.reused and not conn.answered
                if attempt == 0 and stale and method in _REPLAYABLE:
                    continue
                raise
            except BaseException:
                await self.pool.release(conn, reusable=False)
                raise
            if scope.cancelled_caught:
                await self.pool.release(conn, reusable=False)
                if head is None:
                    raise KubeConnectionError(f"{method} {path}: no answer within {self.timeout} s")
                raise KubeConnectionError(f"{method} {path}: answer not complete in time")
            assert head is not None
            if whole:
                await self.pool.release(conn, reusable=True)
            return conn, head, data
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: bytes | Mapping[str, Any] | Sequence[Any] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """:meth:`request`, with a 2xx JSON object answer decoded and anything else raised."""
        status, headers, data = await self.request(
            method, path, query=query, body=body, content_type=content_type
        )
        if not 200 <= status < 300:
            raise KubeAPIError.from_response(status, data, headers.get("content-type", ""))
        return _decode(data)

    # --- resources -------------------------------------------------------------------------

    async def get(
        self,
        resource: ResourceInfo | str,
        name: str = "",
        *,
        namespace: str = "",
        subresource: str = "",
        query: Query | None = None,
    ) -> dict[str, Any]:
        path = resource_path(resource, namespace=namespace, name=name, subresource=subresource)
        return await self.call("GET", path, query=query)

    async def create(
        self,
        resource: ResourceInfo | str,
        obj: Mapping[str, Any],
        *,
        namespace: str | None = None,
        name: str = "",
        subresource: str = "",
        query: Query | None = None,
    ) -> dict[str, Any]:
        """POST ``obj`` to its collection (the namespace defaults to the object's own), or to
        ``name``'s ``subresource`` (a binding, an eviction)."""
        ns = self._namespace_of(resource, obj, namespace)
        path = resource_path(resource, namespace=ns, name=name, subresource=subresource)
        return await self.call("POST", path, query=query, body=obj)

    async def update(
        self,
        resource: ResourceInfo | str,
        obj: Mapping[str, Any],
        *,
        namespace: str | None = None,
        subresource: str = "",
        query: Query | None = None,
    ) -> dict[str, Any]:
        """PUT ``obj`` at its own name (a stale ``resourceVersion`` gets a 409 Conflict)."""
        name = str(obj.get("metadata", {}).get("name") or "")
        if not name:
            raise ValueError("update needs metadata.name in the object")
        ns = self._namespace_of(resource, obj, namespace)
        path = resource_path(resource, namespace=ns, name=name, subresource=subresource)
        return await self.call("PUT", path, query=query, body=obj)

    async def patch(
        self,
        resource: ResourceInfo | str,
        name: str,
        patch: Mapping[str, Any] | Sequence[Any],
        *,
        patch_type: PatchType | None = None,
        namespace: str = "",
        subresource: str = "",
        query: Query | None = None,
    ) -> dict[str, Any]:
        """PATCH ``name``. Without ``patch_type``, a list is sent as a JSON patch and a dict as
        a strategic merge patch, as the official Python client does."""
        kind = patch_type or ("json" if isinstance(patch, Sequence) else "strategic")
        path = resource_path(resource, namespace=namespace, name=name, subresource=subresource)
        return await self.call(
            "PATCH", path, query=query, body=patch, content_type=PATCH_CONTENT_TYPES[kind]
        )

    async def delete(
        self,
        resource: ResourceInfo | str,
        name: str = "",
        *,
        namespace: str = "",
        options: Mapping[str, Any] | None = None,
        query: Query | None = None,
    ) -> dict[str, Any]:
        """DELETE ``name`` (or, without a name, the collection: deletecollection), with
        ``DeleteOptions`` as the body when given. Returns what the server answers: the object
        (still present while finalizers or a grace period hold it) or a ``Status``."""
        path = resource_path(resource, namespace=namespace, name=name)
        return await self.call("DELETE", path, query=query, body=options)

    def watch(
        self,
        resource: ResourceInfo | str,
        *,
        namespace: str = "",
        resource_version: str = "",
        label_selector: str = "",
        field_selector: str = "",
        allow_watch_bookmarks: bool = False,
        timeout_seconds: int | None = None,
        query: Query | None = None,
    ) -> Watch:
        """Watch a collection: ``async with client.watch(...) as events: async for type, obj in
        events``. The request is sent on entry (an error answer raises there)."""
        params: dict[str, QueryValue] = dict(query or {})
        params["watch"] = "true"
        if resource_version:
            params["resourceVersion"] = resource_version
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        if allow_watch_bookmarks:
            params["allowWatchBookmarks"] = "true"
        if timeout_seconds is not None:
            params["timeoutSeconds"] = timeout_seconds
        return Watch(self, resource_path(resource, namespace=namespace), params)

    @staticmethod
    def _namespace_of(
        resource: ResourceInfo | str, obj: Mapping[str, Any], namespace: str | None
    ) -> str:
        if namespace is not None or isinstance(resource, str):
            return namespace or ""
        if not resource.namespaced:
            return ""
        return str(obj.get("metadata", {}).get("namespace") or "")

    # Last, so that ``list`` means the builtin in every annotation above.
    async def list(
        self,
        resource: ResourceInfo | str,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        limit: int | None = None,
        continue_token: str = "",
        resource_version: str = "",
        query: Query | None = None,
    ) -> dict[str, Any]:
        """One page of a collection (all namespaces when ``namespace`` is empty)."""
        params: dict[str, QueryValue] = dict(query or {})
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        if limit is not None:
            params["limit"] = limit
        if continue_token:
            params["continue"] = continue_token
        if resource_version:
            params["resourceVersion"] = resource_version
        path = resource_path(resource, namespace=namespace)
        return await self.call("GET", path, query=params)
