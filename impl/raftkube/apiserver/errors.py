"""The API server's errors, as the ``Status`` objects Kubernetes clients expect.

Every failure a request can meet is an :class:`APIError`; the HTTP layer turns it into a JSON
``Status`` body with the same HTTP code, so kubectl prints its usual one-liners
(``Error from server (NotFound): pods "x" not found``) and client-go's ``errors.IsNotFound``
and friends, which read ``reason`` and ``code``, classify it as they would upstream's.

The constructors mirror ``k8s.io/apimachinery/pkg/api/errors`` (``NewNotFound``,
``NewConflict``, ...), message wording included: scripts and people grep for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs


@attrs.frozen
class Cause:
    """One reason an object is invalid: ``field`` is a dotted path such as
    ``metadata.name`` or ``spec.containers[0].image``; ``reason`` is upstream's cause type
    (``FieldValueRequired``, ``FieldValueInvalid``, ``FieldValueNotSupported``,
    ``FieldValueForbidden``, ``FieldValueDuplicate``, ``FieldValueTooLong``)."""

    field: str
    reason: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


class APIError(Exception):
    """A request that fails with an HTTP ``code``, a ``Status`` ``reason`` and a message."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = tuple(headers)

    def status(self) -> dict[str, Any]:
        """The ``Status`` object sent as the response body (or inside a watch ERROR event)."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        }
        if self.reason:
            # Status.reason is ``omitempty`` upstream: a 500 from the store has none at all.
            body["reason"] = self.reason
        if self.details:
            body["details"] = self.details
        return body

    def __repr__(self) -> str:
        return f"APIError({self.code}, {self.reason!r}, {self.message!r})"


def _qualified(resource: str, group: str) -> str:
    """``pods`` for the core group, ``deployments.apps`` otherwise, as upstream prints."""
    return f"{resource}.{group}" if group else resource


def _details(resource: str, group: str, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"kind": resource}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    return details


def not_found(resource: str, name: str, group: str = "") -> APIError:
    what = _qualified(resource, group)
    return APIError(
        404, "NotFound", f'{what} "{name}" not found', details=_details(resource, group, name)
    )


def already_exists(resource: str, name: str, group: str = "") -> APIError:
    what = _qualified(resource, group)
    return APIError(
        409,
        "AlreadyExists",
        f'{what} "{name}" already exists',
        details=_details(resource, group, name),
    )


def conflict(resource: str, name: str, reason: str, group: str = "") -> APIError:
    """Optimistic concurrency lost: the usual ``reason`` is :data:`OPTIMISTIC_LOCK`."""
    what = _qualified(resource, group)
    return APIError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {what} "{name}": {reason}',
        details=_details(resource, group, name),
    )


OPTIMISTIC_LOCK = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def invalid(kind: str, name: str, causes: Sequence[Cause], group: str = "") -> APIError:
    """``Pod "x" is invalid: spec.containers: Required value`` (kind, not resource, as upstream)."""
    what = f"{kind}.{group}" if group else kind
    parts = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details: dict[str, Any] = {"name": name, "kind": kind, "causes": [c.as_dict() for c in causes]}
    if group:
        details["group"] = group
    return APIError(422, "Invalid", f'{what} "{name}" is invalid: {summary}', details=details)


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def unauthorized(message: str = "Unauthorized") -> APIError:
    return APIError(401, "Unauthorized", message)


def forbidden(
    user: str,
    verb: str,
    resource: str,
    group: str,
    namespace: str,
    name: str = "",
    subresource: str = "",
) -> APIError:
    """RBAC's refusal, worded as upstream's authorizer does."""
    what = f"{resource}/{subresource}" if subresource else resource
    qualified = (
        _qualified(resource, group)
        if not subresource
        else f"{_qualified(resource, group)}/{subresource}"
    )
    subject = f'{qualified} "{name}"' if name else qualified
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{what}" '
        f'in API group "{group}"{where}'
    )
    return APIError(403, "Forbidden", message, details=_details(resource, group, name))


def forbidden_message(
    message: str, resource: str = "", name: str = "", group: str = ""
) -> APIError:
    """A refusal by admission (for example NamespaceLifecycle or NodeRestriction)."""
    details = _details(resource, group, name) if resource else None
    return APIError(403, "Forbidden", message, details=details)


def gone(message: str) -> APIError:
    """A resourceVersion older than what is retained: clients relist on this."""
    return APIError(410, "Expired", message)


def method_not_supported(resource: str, verb: str, group: str = "") -> APIError:
    return APIError(
        405,
        "MethodNotAllowed",
        f"{verb} is not supported on resources of kind {_qualified(resource, group)!r}",
    )


def not_acceptable(message: str) -> APIError:
    return APIError(406, "NotAcceptable", message)


def unsupported_media_type(content_type: str) -> APIError:
    return APIError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format: {content_type}",
    )


def too_large(limit: int) -> APIError:
    return APIError(
        413, "RequestEntityTooLarge", f"the request body is larger than the limit of {limit} bytes"
    )


def internal(message: str) -> APIError:
    return APIError(500, "InternalError", f"Internal error occurred: {message}")


def unavailable(message: str) -> APIError:
    return APIError(503, "ServiceUnavailable", message)


def timeout(message: str) -> APIError:
    return APIError(504, "Timeout", message)
