"""Reading a real API server's answers as the object model's values, and the model's answers as
upstream would give them: the translation layer of ``test_model_conformance.py``.

Two differences of *numbering* and *shape* separate the server from the model, and neither is a
disagreement:

* Revisions. The model's store starts at revision 1; the server's store has its own history
  (startup objects, earlier examples). An example starts right after it created its namespace,
  at server revision ``R0``, which the model calls 1: every resourceVersion, continue token and
  revision in a message is shifted by ``offset = R0 - 1`` on the way in and out. This holds
  only while nothing else writes to the store during the example, which is true of the harness.
* Projection. The model gives every resource ``metadata.generation`` (a stated
  simplification); upstream's ConfigMaps and Secrets have none, so it is dropped from the
  model's objects of those resources before comparing.

:func:`as_upstream` then rewrites the model's answer where the model and upstream Kubernetes
are known to differ, each rewrite naming the upstream code that decides it. Every rewrite is
idempotent, so it stays harmless once the model is corrected. Everything else must be equal.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import attrs

from raftkube_spec.kube import (
    DeleteResponse,
    EventType,
    KubeError,
    KubeState,
    ListResponse,
    Object,
    ObjectKey,
    ObjectResponse,
    Reason,
    Result,
    Watch,
    WatchEvent,
    WatchResponse,
)
from raftkube_spec.kube.reads import events_after

NO_GENERATION = frozenset({"configmaps", "secrets"})
"""Resources without ``metadata.generation`` upstream (their strategies never set it)."""

_UID_PRECONDITION = "Precondition failed: UID in precondition: "
_REVISIONS_IN_MESSAGES = (
    re.compile(r"Too large resource version: (\d+), current: (\d+)$"),
    re.compile(r"ResourceVersion in the precondition \((\d+)\) .* in record \((\d+)\)"),
)


@attrs.frozen
class Unexpected:
    """A server answer the model has no value for (an unknown reason, a malformed body); it
    equals nothing the model can answer, so the comparison fails and shows it."""

    code: int
    body: str


@attrs.frozen
class Numbering:
    """Server revision = model revision + ``offset``."""

    offset: int

    def to_server(self, revision: int) -> int:
        return revision + self.offset

    def rv_to_server(self, text: str) -> str:
        """A resourceVersion as the client sends it: ``""`` and ``"0"`` keep their meaning."""
        return text if text in ("", "0") else str(int(text) + self.offset)

    def object_to_model(self, body: dict[str, Any]) -> Object:
        content = json.loads(json.dumps(body))
        meta = content.get("metadata") or {}
        if meta.get("resourceVersion"):
            meta["resourceVersion"] = str(int(meta["resourceVersion"]) - self.offset)
        return Object.of(content)

    def object_to_server(self, obj: Object) -> dict[str, Any]:
        content = obj.to_dict()
        meta = content.get("metadata") or {}
        if meta.get("resourceVersion"):
            meta["resourceVersion"] = self.rv_to_server(str(meta["resourceVersion"]))
        return content

    def token(self, token: str, shift: int) -> str:
        """A continue token with its revision moved by ``shift`` (the layout is upstream's,
        which both sides use: base64url of ``{"v", "rv", "start"}``)."""
        if not token:
            return token
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        doc["rv"] = int(doc["rv"]) + shift
        raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def token_to_server(self, token: str) -> str:
        return self.token(token, self.offset)

    def message_to_model(self, message: str) -> str:
        """Revisions named in a message, in the model's numbering."""
        for pattern in _REVISIONS_IN_MESSAGES:
            found = pattern.search(message)
            if found is not None:
                for group in reversed(range(1, pattern.groups + 1)):
                    model = str(int(found.group(group)) - self.offset)
                    message = message[: found.start(group)] + model + message[found.end(group) :]
                return message
        return message

    # -- the server's answers as model values ----------------------------------------------

    def error(self, code: int, body: dict[str, Any]) -> KubeError | Unexpected:
        try:
            reason = Reason(body.get("reason") or "")  # upstream leaves an unknown one out
        except ValueError:
            return Unexpected(code, json.dumps(body, sort_keys=True))
        if reason.code != code:
            return Unexpected(code, json.dumps(body, sort_keys=True))
        return KubeError(reason, self.message_to_model(str(body.get("message", ""))))

    def object_answer(self, code: int, body: dict[str, Any]) -> Result | Unexpected:
        if not 200 <= code < 300:
            return self.error(code, body)
        return ObjectResponse(self.object_to_model(body), code)

    def list_answer(self, code: int, body: dict[str, Any]) -> Result | Unexpected:
        if code != 200:
            return self.error(code, body)
        meta = body.get("metadata") or {}
        return ListResponse(
            int(meta["resourceVersion"]) - self.offset,
            tuple(self.object_to_model(item) for item in body.get("items") or ()),
            self.token(str(meta.get("continue") or ""), -self.offset),
            meta.get("remainingItemCount"),
        )

    def delete_answer(self, code: int, body: dict[str, Any], gone: bool) -> Result | Unexpected:
        """``gone``: a get right after the delete found nothing (upstream answers 200 either
        way, so the code does not say whether the object went)."""
        if code != 200:
            return self.error(code, body) if code >= 300 else Unexpected(code, str(body))
        return DeleteResponse(self.object_to_model(body), deleted=gone)

    def event(self, event_type: str, body: dict[str, Any]) -> WatchEvent | KubeError | Unexpected:
        if event_type == "ERROR":
            return self.error(int(body.get("code") or 0), body)
        return WatchEvent(EventType(event_type), self.object_to_model(body))


# -- projection and the known differences from upstream --------------------------------------


def project(obj: Object, resource: str) -> Object:
    if resource not in NO_GENERATION:
        return obj
    content = obj.to_dict()
    (content.get("metadata") or {}).pop("generation", None)
    return Object.of(content)


def project_result(result: Result | Unexpected, resource: str) -> Result | Unexpected:
    """``result`` with :func:`project` applied to every object in it."""
    match result:
        case ObjectResponse():
            return attrs.evolve(result, object=project(result.object, resource))
        case DeleteResponse():
            return attrs.evolve(result, object=project(result.object, resource))
        case ListResponse():
            return attrs.evolve(result, items=tuple(project(o, resource) for o in result.items))
        case WatchResponse():
            return WatchResponse(
                tuple(WatchEvent(e.type, project(e.object, resource)) for e in result.events)
            )
        case _:
            return result


def as_upstream(result: Result, key: ObjectKey | None = None) -> Result:
    """The model's ``result`` as upstream answers it (``key`` is the object the request was
    about, if any):

    * A PUT's uid precondition fails in the etcd3 store, whose ``StorageError`` the conflict's
      message carries (the model states that it leaves the wrapper out).
    """
    match result:
        case KubeError(reason=Reason.CONFLICT) if key is not None and _UID_PRECONDITION in (
            result.message
        ):
            head, _, tail = result.message.partition(_UID_PRECONDITION)
            wrapper = (
                f"StorageError: invalid object, Code: 4, Key: /registry/{key.resource}/"
                f"{key.path}, ResourceVersion: 0, AdditionalErrorMsg: "
            )
            return KubeError(result.reason, f"{head}{wrapper}{_UID_PRECONDITION}{tail}")
        case _:
            return result


def expected_events(history: KubeState, req: Watch, start: int) -> tuple[WatchEvent, ...]:
    """The model's events for a watch of ``req`` from ``start``, read from ``history``, which
    is never compacted: what upstream's watch cache may still serve."""
    return tuple(events_after(history, req, start))
