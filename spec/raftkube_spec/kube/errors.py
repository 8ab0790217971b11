"""The failures the object model can answer with, as comparable values.

Each :class:`Reason` is an upstream ``metav1.StatusReason`` with the HTTP code the API server
sends with it; :class:`KubeError` pairs one with the message upstream writes, because reason,
code and message are all a client sees of a ``Status`` (``kubectl`` prints the message, and
client-go's ``IsNotFound``, ``IsConflict``, ``IsResourceExpired`` read the reason and code).
The constructors below mirror ``k8s.io/apimachinery/pkg/api/errors`` and the registry code that
calls them, wording included.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import attrs

from raftkube_spec.kube.objects import ObjectKey


class Reason(enum.Enum):
    """Upstream status reasons; the value is the ``reason`` string on the wire."""

    NOT_FOUND = "NotFound"
    ALREADY_EXISTS = "AlreadyExists"
    CONFLICT = "Conflict"
    INVALID = "Invalid"
    GONE = "Expired"
    """A resourceVersion older than the store retains. Upstream answers it with reason
    ``Expired`` and code 410 (``NewResourceExpired``); older servers said ``Gone``, and
    clients treat both alike."""
    BAD_REQUEST = "BadRequest"
    TIMEOUT = "Timeout"
    """A resourceVersion newer than the store has reached (``Too large resource version``)."""
    UNKNOWN = ""
    """``StatusReasonUnknown``: an error the registry did not translate into a ``Status``,
    which ``ErrorToAPIStatus`` answers with 500 and the error's own text (the field is then
    left out of the JSON)."""

    @property
    def code(self) -> int:
        return _CODES[self]


_CODES = {
    Reason.NOT_FOUND: 404,
    Reason.ALREADY_EXISTS: 409,
    Reason.CONFLICT: 409,
    Reason.INVALID: 422,
    Reason.GONE: 410,
    Reason.BAD_REQUEST: 400,
    Reason.TIMEOUT: 504,
    Reason.UNKNOWN: 500,
}


@attrs.frozen
class KubeError:
    """A refused request: nothing was written."""

    reason: Reason
    message: str

    @property
    def code(self) -> int:
        return self.reason.code


@attrs.frozen
class FieldError:
    """One ``field.Error``: ``Type`` is upstream's wording of the error kind (``Required
    value``, ``Invalid value``, ``Forbidden``), ``value`` is shown only for ``Invalid value``."""

    field: str
    type: str
    detail: str
    value: str | None = None

    def __str__(self) -> str:
        body = self.type if self.value is None else f"{self.type}: {self.value}"
        return f"{self.field}: {body}: {self.detail}" if self.detail else f"{self.field}: {body}"


def go_quote(text: str) -> str:
    """Go's ``%q`` for the ASCII strings object metadata holds."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def go_string_slice(items: Sequence[str]) -> str:
    """Go's ``%#v`` of a ``[]string``: ``[]string{"a", "b"}``."""
    return "[]string{" + ", ".join(go_quote(i) for i in items) + "}"


def not_found(key: ObjectKey) -> KubeError:
    return KubeError(Reason.NOT_FOUND, f"{key.resource} {go_quote(key.name)} not found")


def already_exists(key: ObjectKey) -> KubeError:
    return KubeError(Reason.ALREADY_EXISTS, f"{key.resource} {go_quote(key.name)} already exists")


OPTIMISTIC_LOCK = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def conflict(what: str, name: str, reason: str) -> KubeError:
    """``NewConflict``: ``what`` is the qualified resource (the delete preconditions, as
    upstream's ``BeforeDelete`` does, pass the qualified *kind* instead)."""
    return KubeError(
        Reason.CONFLICT, f"Operation cannot be fulfilled on {what} {go_quote(name)}: {reason}"
    )


def invalid(kind: str, group: str, name: str, errors: Sequence[FieldError]) -> KubeError:
    """``NewInvalid``: one error is shown bare, several as ``[e1, e2]``."""
    what = f"{kind}.{group}" if group else kind
    parts = [str(e) for e in errors]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return KubeError(Reason.INVALID, f"{what} {go_quote(name)} is invalid: {summary}")


def bad_request(message: str) -> KubeError:
    return KubeError(Reason.BAD_REQUEST, message)


RESOURCE_VERSION_SET_ON_CREATE = "resourceVersion should not be set on objects to be created"


def resource_version_set_on_create() -> KubeError:
    """The etcd3 store's ``Create`` refuses a body whose resourceVersion parses as a non-zero
    number with the plain error ``storage.ErrResourceVersionSetOnCreate``, which reaches the
    client untranslated: 500, no reason (``kubectl`` prints ``Error from server:`` and the
    text)."""
    return KubeError(Reason.UNKNOWN, RESOURCE_VERSION_SET_ON_CREATE)


def gone(message: str) -> KubeError:
    return KubeError(Reason.GONE, message)


def too_large_resource_version(requested: int, current: int) -> KubeError:
    """What a read at a revision the store has not reached gets once the server stops waiting
    (upstream: ``NewTooLargeResourceVersionError``, a ``NewTimeoutError``: code 504, reason
    ``Timeout`` and the message prefixed with ``Timeout: ``)."""
    return KubeError(
        Reason.TIMEOUT, f"Timeout: Too large resource version: {requested}, current: {current}"
    )


LIST_TOO_OLD = "The resourceVersion for the provided list is too old."
WATCH_TOO_OLD = "The resourceVersion for the provided watch is too old."
CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted between "
    "the time the first chunk was returned and now may show up in the list."
)
