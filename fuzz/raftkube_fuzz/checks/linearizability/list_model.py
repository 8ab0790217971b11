"""A LIST answer judged against the store's history: the items at its revision, and the revision
against real time.

A list's answer carries ``metadata.resourceVersion`` R, the store revision it was read at, so
unlike a single-object answer it reveals the store's revision: no search is needed, each page
is judged alone against every key's history (:class:`RegistryHistory`) and two bounds.

**The items.** They must be exactly the objects of the listed resource (in its namespace, through
its label and field selectors) that the store held at R, each at the version it had then
(``resourceVersion`` is that version's mod revision) with that version's content (a digest of
the object without ``resourceVersion``, the API server's stored form). A page covers the keys
from where it starts (the collection's first key, or its ``continue`` token's) up to where the
next page starts (its own token's key), or to the collection's end when it has none.

**The revision**, as upstream promises it ("Semantics for get and list" in the Kubernetes API
concepts), and no more:

* ``resourceVersion`` unset (the quorum list, "most recent"): R is at least every revision an
  answer to any client revealed before the list was sent (a write's or read's object, another
  list's R): those were committed before it started;
* ``resourceVersion=0`` ("any"): any revision, even one older than the client saw before
  (upstream: "It is possible for a '0' resource version request to return data at a much older
  resource version than the client has previously observed");
* ``NotOlderThan`` (or a legacy ``resourceVersion=N`` without ``limit``): R >= N;
* ``Exact`` (or a legacy one with ``limit``): R = N; a ``continue`` page: R = its token's;
* always: R is at most the store's revision when the answer came (it was read from the store).

What it cannot see: lists whose selectors it does not understand (a set-based label selector, a
field it has no value for) are judged on their revision only; a ``continue`` token the server
minted to continue at the latest revision (after a 410) names no revision, so its page is not
judged.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from raftkube_fuzz.checks.linearizability.object_model import digest_of
from raftkube_spec.kube.reads import decode_continue, selects
from raftkube_spec.kv.types import KeyValue

Obj = dict[str, Any]


def content_digest(obj: Mapping[str, Any]) -> str:
    """The digest of an object as stored: everything but ``metadata.resourceVersion``."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    return digest_of({**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}})


@attrs.define(eq=False)
class RegistryHistory:
    """Every version of every key under ``/registry/``, by revision, read from the run's record
    of what the store applied (``Run.written``: revision -> records, the first member to apply a
    revision reports it before any API server can answer at it)."""

    keys: list[bytes] = attrs.field(factory=list)
    """Every key ever written, sorted (a list's range is a slice of it)."""
    versions: dict[bytes, tuple[list[int], list[KeyValue | None]]] = attrs.field(factory=dict)
    """key -> (revisions it was written at, the record then, None for a delete)."""
    revision: int = 0
    """The last revision taken in."""
    _digests: dict[tuple[bytes, int], str] = attrs.field(factory=dict)
    """The content digests computed so far, by key and revision (a version is listed often)."""

    def follow(self, written: Mapping[int, Sequence[KeyValue]], through: int) -> None:
        """Take in the revisions after :attr:`revision` up to ``through`` from ``written``
        (every one of them is there once a member applied ``through``: members apply in
        order)."""
        for revision in range(self.revision + 1, through + 1):
            for kv in written.get(revision, ()):
                if kv.key.startswith(b"/registry/"):
                    self._add(revision, kv)
        self.revision = max(self.revision, through)

    def _add(self, revision: int, kv: KeyValue) -> None:
        found = self.versions.get(kv.key)
        if found is None:
            found = self.versions[kv.key] = ([], [])
            bisect.insort(self.keys, kv.key)
        found[0].append(revision)
        found[1].append(kv if kv.version != 0 else None)

    def state(self, start: bytes, end: bytes, revision: int) -> dict[bytes, int]:
        """key -> mod revision of every key in ``[start, end)`` that existed at ``revision``."""
        out: dict[bytes, int] = {}
        first, last = bisect.bisect_left(self.keys, start), bisect.bisect_left(self.keys, end)
        for key in self.keys[first:last]:
            revisions, records = self.versions[key]
            i = bisect.bisect_right(revisions, revision) - 1
            if i >= 0 and records[i] is not None:
                out[key] = revisions[i]
        return out

    def object_at(self, key: bytes, revision: int) -> Obj:
        """``key``'s version written at ``revision``, decoded."""
        revisions, records = self.versions[key]
        record = records[bisect.bisect_left(revisions, revision)]
        assert record is not None, "a deletion has no content"
        obj: Obj = json.loads(record.value)
        return obj

    def digest(self, key: bytes, revision: int) -> str:
        """The content digest of ``key``'s version written at ``revision``."""
        found = self._digests.get((key, revision))
        if found is None:
            found = self._digests[(key, revision)] = content_digest(self.object_at(key, revision))
        return found


# --- selectors ----------------------------------------------------------------------------------

Term = tuple[str, str, bool]
"""A selector requirement: (key, value, equal): ``key=value`` or ``key!=value``."""

POD_FIELDS = frozenset({
    "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
    "status.phase", "status.podIP", "status.nominatedNodeName",
})  # fmt: skip
"""The pod field labels upstream serves whose value is the field at that path ("" if unset)."""


def parse_terms(selector: str) -> list[Term] | None:
    """An equality-based selector's requirements; None for one this check does not read (a
    set-based label requirement, an escaped character)."""
    terms: list[Term] = []
    for part in selector.split(","):
        part = part.strip()
        if not part:
            continue
        if "\\" in part or "(" in part:
            return None
        for op, equal in (("!=", False), ("==", True), ("=", True)):
            key, found, value = part.partition(op)
            if found:
                terms.append((key.strip(), value.strip(), equal))
                break
        else:
            return None
    return terms


def field_value(resource: str, obj: Mapping[str, Any], field: str) -> str | None:
    """The value of field label ``field`` of ``obj``, None for a field this check cannot read."""
    meta = obj.get("metadata") or {}
    if field in ("metadata.name", "metadata.namespace"):
        return str(meta.get(field.split(".")[1]) or "")
    if resource != "pods" or field not in POD_FIELDS:
        return None
    section, name = field.split(".")
    return str((obj.get(section) or {}).get(name) or "")


def selected(resource: str, obj: Mapping[str, Any], labels: list[Term], fields: list[Term]
             ) -> bool | None:  # fmt: skip
    """Whether the selectors select ``obj``; None if a field cannot be read."""
    own = (obj.get("metadata") or {}).get("labels") or {}
    wanted = tuple(sorted((k, v) for k, v, equal in labels if equal))
    if not selects(own, wanted) or any(own.get(k) == v for k, v, eq in labels if not eq):
        return False
    for key, value, equal in fields:
        got = field_value(resource, obj, key)
        if got is None:
            return None
        if (got == value) != equal:
            return False
    return True


# --- a recorded page ------------------------------------------------------------------------------

ANY, CONSISTENT, NOT_OLDER, EXACT, CONTINUED = (
    "any",
    "consistent",
    "not-older-than",
    "exact",
    "continue",
)


@attrs.frozen
class Item:
    """A list item as the check keeps it: its key, uid, resourceVersion and content digest."""

    key: bytes
    uid: str
    rv: int
    digest: str


@attrs.frozen
class ListPage:
    """One LIST request and its 200 answer."""

    client: str
    target: str
    """What was listed, as the request's path and query (for the report)."""
    resource: str
    prefix: bytes
    """The keys of the listed collection (``/registry/{resource}/`` and the namespace)."""
    rule: str
    """Which revision rule applies: :data:`ANY`, :data:`CONSISTENT`, :data:`NOT_OLDER`,
    :data:`EXACT` or :data:`CONTINUED`."""
    asked: int
    """The revision asked for (``resourceVersion``), 0 if none."""
    floor: int
    """The newest revision any answer revealed before the request was sent."""
    ceiling: int
    """The store's revision when the answer came."""
    revision: int
    """The answer's ``metadata.resourceVersion``."""
    continue_token: str
    """The request's ``continue`` token."""
    next_token: str
    """The answer's ``metadata.continue``."""
    label_selector: str = ""
    field_selector: str = ""
    items: tuple[Item, ...] = ()


def _end_of(prefix: bytes) -> bytes:
    """The first key after every key starting with ``prefix`` (a ``/``-ended prefix)."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


def _start_of(token: str, prefix: bytes) -> tuple[int, bytes] | None:
    decoded = decode_continue(token)
    if not isinstance(decoded, tuple):
        return None
    revision, start = decoded
    return revision, prefix + (start[1:] if start.startswith("/") else start).encode()


def revision_mismatch(page: ListPage) -> str | None:
    """Why ``page``'s resourceVersion breaks its rule (module docstring), None if it keeps it."""
    r = page.revision
    if r > page.ceiling:
        return f"resourceVersion {r} is newer than the store's revision {page.ceiling} then"
    if page.rule == CONSISTENT and r < page.floor:
        return (f"a consistent list answered resourceVersion {r}, older than revision "
                f"{page.floor} an answer revealed before the list was sent")  # fmt: skip
    if page.rule == NOT_OLDER and r < page.asked:
        return f"resourceVersion {r} is older than the {page.asked} asked for (NotOlderThan)"
    if page.rule == EXACT and r != page.asked:
        return f"resourceVersion {r} is not the {page.asked} asked for (Exact)"
    if page.rule == CONTINUED:
        token = _start_of(page.continue_token, page.prefix)
        if token is not None and r != token[0]:
            return f"a continued page answered resourceVersion {r}, its token's is {token[0]}"
    return None


def items_mismatch(history: RegistryHistory, page: ListPage) -> str | None:
    """Why ``page``'s items are not the store's objects in its range at its revision; None if
    they are or cannot be judged (module docstring)."""
    labels = parse_terms(page.label_selector)
    fields = parse_terms(page.field_selector)
    if labels is None or fields is None:
        return None
    start = page.prefix
    if page.continue_token:
        token = _start_of(page.continue_token, page.prefix)
        if token is None:
            return None
        start = token[1]
    end = _end_of(page.prefix)
    if page.next_token:
        token = _start_of(page.next_token, page.prefix)
        if token is None:
            return "the answer's continue token cannot be read"
        end = token[1]
    expected: dict[bytes, tuple[int, str]] = {}
    for key, version in history.state(start, end, page.revision).items():
        if labels or fields:
            chosen = selected(page.resource, history.object_at(key, version), labels, fields)
            if chosen is None:
                return None
            if not chosen:
                continue
        expected[key] = (version, history.digest(key, version))
    got = {item.key: (item.rv, item.digest) for item in page.items}
    if len(got) != len(page.items):
        return "an object is listed twice"
    if got == expected:
        return None
    missing = sorted(k.decode() for k in expected if k not in got)
    extra = sorted(k.decode() for k in got if k not in expected)
    other = sorted(
        f"{k.decode()}@{got[k][0]} (store: {expected[k][0]})" if got[k][0] != expected[k][0]
        else f"{k.decode()}@{got[k][0]} with other content than the store's"
        for k in got if k in expected and got[k] != expected[k]
    )  # fmt: skip
    found = (("missing", missing), ("not in the store then", extra), ("other versions", other))
    parts = [f"{label} {', '.join(keys[:5])}" for label, keys in found if keys]
    return f"the items are not the store's objects at revision {page.revision}: " + "; ".join(parts)


def page_mismatch(history: RegistryHistory, page: ListPage) -> str | None:
    """Why ``page`` is not an answer the store's history allows (revision, then items)."""
    return revision_mismatch(page) or items_mismatch(history, page)
