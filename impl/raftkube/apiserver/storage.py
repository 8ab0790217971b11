"""Objects on the raftkube store, as Kubernetes keeps them on etcd (``storage/etcd3/store.go``).

Every object is one key: ``/registry/{resource}/{namespace}/{name}`` for a namespaced one,
``/registry/{resource}/{name}`` for a cluster-scoped one. (Upstream renames a few prefixes for
history's sake, ``minions`` for nodes and ``services/specs``; here the resource name is always
the prefix.) The value is the object's compact UTF-8 JSON *without* ``metadata.resourceVersion``:
that field is the key's mod revision, set on every read, so an object's resourceVersion is the
store revision that last wrote it and a list's resourceVersion is the revision it was read at.

Writes are single store transactions, which is what makes them safe against each other:

- create: ``create_revision(key) == 0`` then put, else ``AlreadyExists``;
- update: ``mod_revision(key) == expected`` then put, else ``Conflict`` (or ``NotFound``);
- delete: ``mod_revision(key) == current`` then delete, re-reading and retrying if another
  write came between, so preconditions are judged on the state actually deleted.

Lists follow upstream's resourceVersion semantics
(https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions): unset reads the
latest revision linearizably, ``"0"`` reads any (a serializable read here; the watch cache may
answer it instead), ``resourceVersionMatch=Exact`` (or a legacy resourceVersion with a limit)
reads at that revision, ``NotOlderThan`` (or a legacy one without a limit) reads the latest and
refuses with upstream's 504 "Too large resource version" if that is older. Pages carry upstream's
continue token (base64url JSON ``{"v": "meta.k8s.io/v1", "rv": R, "start": key}``), so every page
is read at the first page's revision; a compacted revision is upstream's 410 Expired. Selectors
filter after reading, and a filtered page keeps reading until it is full, as upstream does.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Final

import attrs

from raftkube.apiserver.errors import (
    OPTIMISTIC_LOCK,
    APIError,
    already_exists,
    bad_request,
    conflict,
    gone,
    internal,
    not_found,
)
from raftkube.apiserver.listing import (
    EXACT,
    EXPIRED,
    ExpiredContinueError,
    FieldFn,
    Filter,
    ListResult,
    Obj,
    decode_continue,
    encode_continue,
    make_filter,
    parse_resource_version,
    too_large_resource_version,
    validate_list_options,
)
from raftkube.apiserver.resources import ResourceInfo
from raftkube.apiserver.selectors import FieldSelector, LabelSelector, object_meta_fields
from raftkube.client import Client
from raftkube.client.client import ClientError, KVRequestError
from raftkube.client.keys import prefix_end
from raftkube_spec.kv.errors import ErrorCode
from raftkube_spec.kv.requests import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    TxnRequest,
)
from raftkube_spec.kv.responses import DeleteRangeResponse, RangeResponse
from raftkube_spec.kv.types import KeyValue

UpdateFn = Callable[[Obj], Obj | Awaitable[Obj | None] | None]

REGISTRY: Final = "/registry/"
MAX_CHUNK: Final = 1000
"""The most keys one store read returns; bigger lists are read in chunks at one revision."""


# --- keys and values -------------------------------------------------------------------------


def resource_prefix(info: ResourceInfo) -> str:
    """``/registry/pods/``: every object of the resource, in every namespace."""
    return f"{REGISTRY}{info.resource}/"


def key_prefix(info: ResourceInfo, namespace: str) -> str:
    """The keys a list in ``namespace`` covers ("" = all namespaces or cluster scope)."""
    if info.namespaced and namespace:
        return f"{resource_prefix(info)}{namespace}/"
    return resource_prefix(info)


def object_key(info: ResourceInfo, namespace: str, name: str) -> str:
    if info.namespaced:
        if not namespace:
            raise bad_request(f"a namespace is required for {info.qualified}")
        return f"{resource_prefix(info)}{namespace}/{name}"
    return f"{resource_prefix(info)}{name}"


def key_of(info: ResourceInfo, obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return object_key(info, str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def encode_object(obj: Mapping[str, Any]) -> bytes:
    """The stored form: compact JSON without ``metadata.resourceVersion``."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    stored = {**obj, "metadata": meta}
    return json.dumps(stored, separators=(",", ":"), ensure_ascii=False).encode()


def decode_object(value: bytes, revision: int) -> Obj:
    """A stored value as an object whose resourceVersion is ``revision``."""
    obj: Obj = json.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return obj


def with_resource_version(obj: Mapping[str, Any], revision: int) -> Obj:
    """A shallow copy of ``obj`` (and of its metadata) carrying ``revision``."""
    return {**obj, "metadata": {**obj.get("metadata", {}), "resourceVersion": str(revision)}}


def object_revision(obj: Mapping[str, Any]) -> int:
    return int(obj.get("metadata", {}).get("resourceVersion") or 0)


class _StoreErrors:
    """``with _STORE_ERRORS:`` a store failure the caller cannot act on is a 500, as upstream
    reports etcd's. A plain class, not a generator context manager: it wraps every store call,
    and entering a generator-based one costs several times as much."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, ClientError):
            raise internal(exc.message) from exc


_STORE_ERRORS: Final = _StoreErrors()


# --- the store -------------------------------------------------------------------------------


class ObjectStore:
    """Kubernetes objects on a raftkube :class:`~raftkube.client.Client`.

    Every returned object is freshly decoded, so callers may change it. Failures are
    :class:`APIError`: 404 NotFound, 409 AlreadyExists/Conflict, 410 Expired, 504 for a
    resourceVersion from the future, 500 when the store cannot be reached.
    """

    def __init__(self, client: Client, *, chunk: int = 500) -> None:
        self.client = client
        self.chunk = min(chunk, MAX_CHUNK)

    async def current_revision(self) -> int:
        """The store's latest revision, read linearizably."""
        with _STORE_ERRORS:
            resp = await self.client.get(REGISTRY.encode())
        return resp.header.revision

    async def create(self, info: ResourceInfo, obj: Obj) -> Obj:
        if obj.get("metadata", {}).get("resourceVersion"):
            # Upstream's store refuses it the same way; handlers clear it before.
            raise internal("resourceVersion should not be set on objects to be created")
        key = key_of(info, obj).encode()
        value = encode_object(obj)
        absent = Compare(key, CompareTarget.CREATE, CompareResult.EQUAL, 0)
        with _STORE_ERRORS:
            resp = await self.client.txn(TxnRequest((absent,), (PutRequest(key, value),)))
        if not resp.succeeded:
            raise already_exists(info.resource, _name(obj), info.group)
        return decode_object(value, resp.header.revision)

    async def get(
        self, info: ResourceInfo, namespace: str, name: str, *, resource_version: str = ""
    ) -> Obj:
        """Linearizable unless ``resource_version`` is "0" (any: a serializable read); a
        specific one is a minimum (upstream's 504 if the store has not reached it)."""
        minimum = parse_resource_version(resource_version)
        key = object_key(info, namespace, name).encode()
        with _STORE_ERRORS:
            resp = await self.client.get(key, serializable=resource_version == "0")
        if minimum > resp.header.revision:
            raise too_large_resource_version(minimum, resp.header.revision)
        if not resp.kvs:
            raise not_found(info.resource, name, info.group)
        kv = resp.kvs[0]
        return decode_object(kv.value, kv.mod_revision)

    async def update(self, info: ResourceInfo, obj: Obj, *, expected_rv: int | None) -> Obj:
        """Write ``obj`` if its key was last written at ``expected_rv`` (None: if it exists)."""
        key = key_of(info, obj).encode()
        value = encode_object(obj)
        if expected_rv is None:
            guard = Compare(key, CompareTarget.CREATE, CompareResult.GREATER, 0)
        else:
            guard = Compare(key, CompareTarget.MOD, CompareResult.EQUAL, expected_rv)
        txn = TxnRequest((guard,), (PutRequest(key, value),), (RangeRequest(key),))
        with _STORE_ERRORS:
            resp = await self.client.txn(txn)
        if resp.succeeded:
            return decode_object(value, resp.header.revision)
        current = resp.responses[0]
        assert isinstance(current, RangeResponse)
        if current.kvs:
            raise conflict(info.resource, _name(obj), OPTIMISTIC_LOCK, info.group)
        raise not_found(info.resource, _name(obj), info.group)

    async def guaranteed_update(
        self, info: ResourceInfo, namespace: str, name: str, fn: UpdateFn, *, attempts: int = 16
    ) -> Obj:
        """Upstream's GuaranteedUpdate: read, ``fn(current)`` (sync or async; it may raise
        an APIError to refuse), write with the read's revision as precondition, and start over
        if another write came between. ``fn`` returning None, or the object unchanged, writes
        nothing and returns the current object. Gives up with the conflict after ``attempts``
        (upstream retries without bound)."""
        last: APIError | None = None
        for _ in range(attempts):
            current = await self.get(info, namespace, name)
            revision = object_revision(current)
            result = fn(_copy(current))
            new = await result if inspect.isawaitable(result) else result
            if new is None or encode_object(new) == encode_object(current):
                return current
            try:
                return await self.update(info, new, expected_rv=revision)
            except APIError as exc:
                if exc.code != 409:
                    raise
                last = exc
        assert last is not None
        raise last

    async def delete(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        *,
        expected_rv: int | None = None,
        precondition: Callable[[Obj], None] | None = None,
    ) -> Obj:
        """Delete the object and return its last state, whose resourceVersion is the delete's
        revision (as upstream). ``expected_rv`` is a resourceVersion precondition; a
        ``precondition`` callable may raise an APIError (a uid check, say) against the state
        being deleted."""
        key = object_key(info, namespace, name).encode()
        while True:
            current = await self.get(info, namespace, name)
            revision = object_revision(current)
            if expected_rv is not None and expected_rv != revision:
                raise conflict(
                    info.resource,
                    name,
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{expected_rv}, ResourceVersion in object meta: {revision}",
                    info.group,
                )
            if precondition is not None:
                precondition(current)
            same = Compare(key, CompareTarget.MOD, CompareResult.EQUAL, revision)
            txn = TxnRequest((same,), (DeleteRangeRequest(key, prev_kv=True),))
            with _STORE_ERRORS:
                resp = await self.client.txn(txn)
            if resp.succeeded:
                deleted = resp.responses[0]
                assert isinstance(deleted, DeleteRangeResponse) and deleted.prev_kvs
                return decode_object(deleted.prev_kvs[0].value, resp.header.revision)
            # Written (or deleted) since the read: judge the preconditions again.

    async def list(
        self,
        info: ResourceInfo,
        namespace: str,
        *,
        resource_version: str = "",
        match: str = "",
        limit: int = 0,
        continue_token: str = "",
        label_selector: LabelSelector | str | None = None,
        field_selector: FieldSelector | str | None = None,
        field_fn: FieldFn = object_meta_fields,
    ) -> ListResult:
        """One page of ``namespace`` ("" = all) with upstream's semantics (module docstring)."""
        validate_list_options(resource_version, match, continue_token)
        selection = make_filter(info, namespace, label_selector, field_selector, field_fn)
        prefix = key_prefix(info, namespace).encode()
        start, revision, minimum, serializable = prefix, 0, 0, False
        if continue_token:
            start, revision = decode_continue(continue_token, prefix)
            revision = max(revision, 0)  # -1: continue at the latest revision
        else:
            requested = parse_resource_version(resource_version)
            if match == EXACT or (not match and limit > 0 and requested > 0):
                revision = requested
            elif resource_version == "0":
                serializable = True
            else:
                minimum = requested
        page = _Page(limit, selection)
        chunk = min(limit, MAX_CHUNK) if limit > 0 else self.chunk
        while True:
            resp = await self._read(start, prefix, revision, chunk, serializable, continue_token)
            if revision == 0:
                revision = resp.header.revision
                if minimum > revision:
                    raise too_large_resource_version(minimum, revision)
            if page.take(resp) or not resp.more:
                break
            start = page.last_key + b"\x00"
            chunk = min(chunk * 2, MAX_CHUNK) if limit > 0 else self.chunk
        token = ""
        if page.has_more:
            token = encode_continue(page.last_key + b"\x00", prefix, revision)
        return ListResult(page.items, revision, token, page.remaining)

    async def _read(
        self,
        start: bytes,
        prefix: bytes,
        revision: int,
        chunk: int,
        serializable: bool,
        continue_token: str,
    ) -> RangeResponse:
        try:
            return await self.client.get(
                start,
                prefix_end(prefix),
                revision=revision,
                limit=chunk,
                serializable=serializable,
            )
        except KVRequestError as exc:
            if exc.error.code is ErrorCode.COMPACTED:
                if continue_token:
                    raise ExpiredContinueError(encode_continue(start, prefix, -1)) from None
                raise gone(EXPIRED) from None
            if exc.error.code is ErrorCode.FUTURE_REVISION:
                raise too_large_resource_version(revision, exc.error.header.revision) from None
            raise internal(exc.message) from exc
        except ClientError as exc:
            raise internal(exc.message) from exc


@attrs.define
class _Page:
    """Fills one page from successive store reads (upstream's loop in ``GetList``)."""

    limit: int
    selection: Filter
    items: list[Obj] = attrs.Factory(list)
    last_key: bytes = b""
    has_more: bool = False
    remaining: int | None = None

    def take(self, resp: RangeResponse) -> bool:
        """Add what ``resp`` holds; True once the page is full (``has_more`` says whether
        anything follows it)."""
        consumed = 0
        kv: KeyValue
        for kv in resp.kvs:
            if self.limit and len(self.items) >= self.limit:
                break
            consumed += 1
            self.last_key = kv.key
            obj = decode_object(kv.value, kv.mod_revision)
            if self.selection.matches(obj):
                self.items.append(obj)
        if not self.limit or len(self.items) < self.limit:
            return False
        self.has_more = consumed < len(resp.kvs) or resp.more
        if self.has_more and self.selection.empty:
            # ``count`` is every key from this read's start: what follows the page is the rest.
            self.remaining = resp.count - consumed
        return True


def _name(obj: Mapping[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def _copy(obj: Obj) -> Obj:
    copied: Obj = json.loads(json.dumps(obj))
    return copied
