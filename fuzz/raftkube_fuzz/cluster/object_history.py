"""The user's requests on objects, recorded for the object linearizability check
(:mod:`raftkube_fuzz.checks.object_linearizability`).

One :class:`~raftkube_fuzz.checks.history.History` per object key, since the check searches
each key alone (:mod:`raftkube_fuzz.checks.linearizability.object_model` says why that is
sound). A request is recorded when it is sent and its outcome when the answer comes, in
virtual time; how an answer becomes an outcome is what keeps the check honest
(:func:`outcome_of_error`): a 404 or a 409 AlreadyExists is an answer the model judges, any
other refusal below 500 was not applied, and a 5xx or a lost connection may or may not have
been (the API server may have written to the store before it failed to answer).

Only the user's creates, patches and deletes are recorded, not the components' requests:
those are mostly status writes and watches, which say nothing about the user's objects the
model could judge, and the model already allows what the components may do to them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from raftkube.kubeclient import KubeAPIError, KubeConnectionError
from raftkube_fuzz.checks.history import Failed, History, Ok, Outcome, Unknown
from raftkube_fuzz.checks.linearizability.object_model import (
    AlreadyExists,
    Created,
    Deleted,
    NotFound,
    ObjectRequest,
    Patched,
    Seen,
    digest_of,
    project,
)

Obj = dict[str, Any]


class ObjectHistories:
    """Every recorded request, by object key (``Kind/namespace/name``)."""

    def __init__(self) -> None:
        self.by_key: dict[str, History] = {}
        self.clients = 0

    def __len__(self) -> int:
        return sum(len(h) for h in self.by_key.values())

    async def record(
        self,
        request: ObjectRequest,
        call: Callable[[], Awaitable[Obj]],
        answer: Callable[[Obj], Seen],
    ) -> Obj:
        """Send ``request`` by ``call()`` and record it with its outcome (``answer`` reads a
        2xx answer); whatever ``call`` raises is raised again once recorded. A request the
        action's time limit cancels stays pending, which the check takes as Unknown."""
        history = self.by_key.setdefault(request.key, History())
        self.clients += 1
        op = history.invoke(self.clients, request, trio.current_time())  # type: ignore[arg-type]
        try:
            body = await call()
        except (KubeAPIError, KubeConnectionError) as exc:
            history.complete(op, outcome_of_error(request, exc), trio.current_time())
            raise
        history.complete(op, Ok(answer(body)), trio.current_time())  # type: ignore[arg-type]
        return body


def outcome_of_error(request: ObjectRequest, exc: KubeAPIError | KubeConnectionError) -> Outcome:
    if isinstance(exc, KubeConnectionError) or exc.code >= 500 or exc.code == 0:
        return Unknown(str(exc))
    if exc.code == 404:
        return Ok(NotFound())  # type: ignore[arg-type]
    if exc.code == 409 and exc.reason == "AlreadyExists" and request.verb == "create":
        return Ok(AlreadyExists())  # type: ignore[arg-type]
    return Failed(f"{exc.code} {exc.reason}")


def _meta(body: Obj) -> Obj:
    meta = body.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _rv(body: Obj) -> int:
    text = str(_meta(body).get("resourceVersion") or "0")
    return int(text) if text.isdigit() else 0


def create_request(obj: Obj) -> ObjectRequest:
    meta = obj["metadata"]
    return ObjectRequest("create", obj["kind"], meta["namespace"], meta["name"],
                         digest_of(obj["spec"]))  # fmt: skip


def created(obj: Obj) -> Callable[[Obj], Seen]:
    """How a 201 to the create of ``obj`` reads."""
    return lambda body: Created(
        str(_meta(body).get("uid", "")),
        _rv(body),
        digest_of(project(body.get("spec"), obj["spec"])),
    )


def patch_request(obj: Obj) -> ObjectRequest:
    return attrs.evolve(create_request(obj), verb="patch")


def patched(obj: Obj) -> Callable[[Obj], Seen]:
    """How a 200 to a merge patch of ``obj``'s spec reads."""
    return lambda body: Patched(
        str(_meta(body).get("uid", "")),
        _rv(body),
        digest_of(project(body.get("spec"), obj["spec"])),
        _meta(body).get("deletionTimestamp") is not None,
    )


def delete_request(kind: str, namespace: str, name: str, foreground: bool) -> ObjectRequest:
    return ObjectRequest("delete", kind, namespace, name, foreground=foreground)


def deleted(body: Obj) -> Seen:
    """How a 200 to a delete reads: the object (marked if it stays), or a ``Status``."""
    if body.get("kind") == "Status":
        return Deleted("", 0, False)
    meta = _meta(body)
    return Deleted(str(meta.get("uid", "")), _rv(body), meta.get("deletionTimestamp") is not None)


async def send(
    histories: ObjectHistories | None,
    request: ObjectRequest,
    call: Callable[[], Awaitable[Obj]],
    answer: Callable[[Obj], Seen],
) -> Obj:
    """``call()``, recorded in ``histories`` when there are any
    (see :meth:`ObjectHistories.record`)."""
    if histories is None:
        return await call()
    return await histories.record(request, call, answer)
