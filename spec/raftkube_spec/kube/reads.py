"""Get, List and Watch: reads, which never change the state or the revision.

Resource version semantics follow "Semantics for get and list" and "for watch" in the
Kubernetes API concepts, resolved deterministically where upstream allows a choice:

* List, ``resourceVersion`` unset: the most recent state.
* List, ``"0"`` (any) and ``NotOlderThan``: upstream may serve any state at least that new
  (from the watch cache); :func:`list_objects` answers with the most recent one, and
  :class:`raftkube_spec.kube.model.Model` accepts any retained state in the allowed window.
* List, ``Exact`` (or a non-zero version with ``limit`` and no match rule, the legacy rule):
  exactly that revision; ``410 Expired`` below the compaction, ``504`` above the current one.
* Continue tokens are upstream's own encoding (base64url of ``{"v","rv","start"}``), so a page
  is read at the revision of the first; ``limit`` is honoured for ``"0"`` too (upstream's watch
  cache may ignore it there). A full page has a token whenever any key follows it, even one the
  label selector does not match, as the etcd3 store pages (the next page may then be empty).
* Watch, ``resourceVersion`` unset or ``"0"``: a synthetic ADDED for every matching object now,
  in store order, then the changes after now; from ``N``: every change after ``N``, and
  ``410 Expired`` once the changes after ``N`` are compacted away, as the store answers
  (upstream's watch cache may serve such a watch from its own window instead;
  :class:`raftkube_spec.kube.model.Model` accepts that too).

A label selector is equality-only. A watch with one reports an object that starts to match as
ADDED and one that stops matching as DELETED, carrying its last matching state stamped with the
revision that changed it (as a real deletion's event is).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json

from raftkube_spec.kube import errors
from raftkube_spec.kube.errors import FieldError, KubeError
from raftkube_spec.kube.objects import Object, ObjectKey
from raftkube_spec.kube.requests import Get, List, ResourceVersionMatch, Selector, Watch
from raftkube_spec.kube.responses import ListResponse, ObjectResponse, WatchResponse
from raftkube_spec.kube.state import Change, Entry, EventType, KubeState, WatchEvent

CONTINUE_VERSION = "meta.k8s.io/v1"


def parse_resource_version(text: str) -> int | KubeError:
    """``""`` is 0; anything but a decimal number is refused as upstream's versioner does."""
    if text == "":
        return 0
    if not (text.isascii() and text.isdigit()):
        return errors.bad_request(f"invalid resource version: {errors.go_quote(text)}")
    return int(text)


def get(state: KubeState, req: Get) -> ObjectResponse | KubeError:
    found = state.get(req.key)
    return errors.not_found(req.key) if found is None else ObjectResponse(found)


# -- state at a revision ------------------------------------------------------------------------


def _sort_key(entry: Entry) -> tuple[str, str]:
    return entry[0].sort_key


def objects_at(state: KubeState, revision: int) -> tuple[Entry, ...]:
    """The live objects as of ``revision`` (which the caller has checked is retained)."""
    if revision >= state.revision:
        return state.objects
    live = dict(state.objects)
    for change in reversed(state.changes):
        if change.revision <= revision:
            break
        if change.before is None:
            del live[change.key]
        else:
            live[change.key] = change.before
    return tuple(sorted(live.items(), key=_sort_key))


def selects(labels: dict[str, str], label_selector: Selector) -> bool:
    return all(labels.get(k) == v for k, v in label_selector)


def _in_scope(key: ObjectKey, resource: str, namespace: str) -> bool:
    return key.resource == resource and (namespace == "" or key.namespace == namespace)


# -- continue tokens ----------------------------------------------------------------------------


def encode_continue(revision: int, start: str) -> str:
    """Upstream's token: ``start`` is the next key to read, relative to the list's prefix."""
    doc = json.dumps(
        {"v": CONTINUE_VERSION, "rv": revision, "start": start},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return base64.urlsafe_b64encode(doc.encode()).rstrip(b"=").decode()


def decode_continue(token: str) -> tuple[int, str] | KubeError:
    def refuse(why: str) -> KubeError:
        return errors.bad_request(f"invalid continue token: continue key is not valid: {why}")

    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = json.loads(raw)
    except (binascii.Error, ValueError):
        return refuse("malformed token")
    if not isinstance(doc, dict) or doc.get("v") != CONTINUE_VERSION:
        version = doc.get("v") if isinstance(doc, dict) else None
        return refuse(f"server does not recognize this encoded version {json.dumps(version)}")
    revision, start = doc.get("rv"), doc.get("start")
    if not isinstance(revision, int) or isinstance(revision, bool) or revision <= 0:
        return refuse(f"incorrect encoded start resourceVersion (version {CONTINUE_VERSION})")
    if not isinstance(start, str) or not start:
        return refuse("encoded start key empty")
    return revision, start


# -- list ---------------------------------------------------------------------------------------


def _list_options_errors(req: List) -> list[FieldError]:
    found = []
    if req.resource_version_match is not None:
        field = "resourceVersionMatch"
        if req.resource_version == "":
            detail = "resourceVersionMatch is forbidden unless resourceVersion is provided"
            found.append(FieldError(field, "Forbidden", detail))
        if req.continue_token:
            detail = "resourceVersionMatch is forbidden when continue is provided"
            found.append(FieldError(field, "Forbidden", detail))
        if req.resource_version_match is ResourceVersionMatch.EXACT and req.resource_version == "0":
            detail = 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'
            found.append(FieldError(field, "Forbidden", detail))
    return found


def list_revision(state: KubeState, req: List) -> tuple[int, str] | KubeError:
    """The revision a list reads at (the most recent one where upstream allows a choice), and
    the key after which it starts (``""`` for the first page)."""
    problems = _list_options_errors(req)
    if problems:
        return errors.invalid("ListOptions", "meta.k8s.io", "", problems)
    if req.continue_token:
        if req.resource_version not in ("", "0"):
            return errors.bad_request(
                "specifying resource version is not allowed when using continue"
            )
        decoded = decode_continue(req.continue_token)
        if isinstance(decoded, KubeError):
            return decoded
        revision, start = decoded
        if revision < state.compact_revision:
            return errors.gone(errors.CONTINUE_TOO_OLD)
        if revision > state.revision:
            return errors.too_large_resource_version(revision, state.revision)
        return revision, start
    requested = parse_resource_version(req.resource_version)
    if isinstance(requested, KubeError):
        return requested
    if requested > state.revision:
        return errors.too_large_resource_version(requested, state.revision)
    if is_exact(req):
        if requested < state.compact_revision:
            return errors.gone(errors.LIST_TOO_OLD)
        return requested, ""
    return state.revision, ""


def is_exact(req: List) -> bool:
    """Exact by request, or by the legacy rule: a non-zero version with a limit and no rule."""
    if req.resource_version_match is ResourceVersionMatch.EXACT:
        return True
    legacy = req.resource_version_match is None and req.limit > 0 and not req.continue_token
    return legacy and req.resource_version not in ("", "0")


def list_at(state: KubeState, req: List, revision: int, start: str) -> ListResponse:
    """The page of ``req`` read at ``revision`` (retained), from store key ``start`` on.

    The page is cut as the etcd3 store's ``GetList`` cuts it: it reads the range in key order,
    keeps what the selector matches until ``limit`` items are kept, and answers a continue token
    whenever any key of the range follows the last kept item, matching or not; so with a label
    selector a token may lead to an empty last page.
    """
    prefix = f"{req.namespace}/" if req.namespace else ""
    page: list[tuple[str, Object]] = []
    more = 0  # keys of the range after a full page, matching or not
    for key, obj in objects_at(state, revision):
        if not _in_scope(key, req.resource, req.namespace):
            continue
        relative = key.path[len(prefix) :]
        if relative < start:
            continue
        if 0 < req.limit <= len(page):
            more += 1
        elif selects(obj.labels, req.label_selector):
            page.append((relative, obj))
    items = tuple(o for _, o in page)
    if not more:
        return ListResponse(revision, items)
    token = encode_continue(revision, page[-1][0] + "\x00")
    return ListResponse(revision, items, token, None if req.label_selector else more)


def list_objects(state: KubeState, req: List) -> ListResponse | KubeError:
    where = list_revision(state, req)
    if isinstance(where, KubeError):
        return where
    return list_at(state, req, *where)


# -- watch --------------------------------------------------------------------------------------


def _event(change: Change, req: Watch) -> WatchEvent | None:
    old = change.before
    new = change.after
    was = old is not None and selects(old.labels, req.label_selector)
    now = new is not None and selects(new.labels, req.label_selector)
    if now and new is not None:
        return WatchEvent(EventType.MODIFIED if was else EventType.ADDED, new)
    if was and old is not None:
        return WatchEvent(EventType.DELETED, old.with_resource_version(change.revision))
    return None


def _change_revision(change: Change) -> int:
    return change.revision


def events_after(state: KubeState, req: Watch, revision: int) -> list[WatchEvent]:
    """The events of every retained change after ``revision`` that ``req`` watches, in order."""
    first = bisect.bisect_right(state.changes, revision, key=_change_revision)
    found = []
    for change in state.changes[first:]:
        if _in_scope(change.key, req.resource, req.namespace):
            event = _event(change, req)
            if event is not None:
                found.append(event)
    return found


def initial_events(state: KubeState, req: Watch, revision: int) -> list[WatchEvent]:
    """The synthetic ADDED events of a watch that starts from the state at ``revision``."""
    return [
        WatchEvent(EventType.ADDED, obj)
        for key, obj in objects_at(state, revision)
        if _in_scope(key, req.resource, req.namespace) and selects(obj.labels, req.label_selector)
    ]


def watch_start(state: KubeState, req: Watch) -> int | KubeError:
    """The revision after which ``req`` replays changes (the current one for ``""``/``"0"``)."""
    requested = parse_resource_version(req.resource_version)
    if isinstance(requested, KubeError):
        return requested
    if requested == 0:
        return state.revision
    if requested > state.revision:
        return errors.too_large_resource_version(requested, state.revision)
    if requested + 1 < state.compact_revision:
        return errors.gone(errors.WATCH_TOO_OLD)
    return requested


def watch(state: KubeState, req: Watch) -> WatchResponse | KubeError:
    start = watch_start(state, req)
    if isinstance(start, KubeError):
        return start
    initial = initial_events(state, req, start) if req.resource_version in ("", "0") else []
    return WatchResponse((*initial, *events_after(state, req, start)))
