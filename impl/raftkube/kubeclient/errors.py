"""What a Kubernetes API call can fail with: the server's answer, or no answer at all."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Gone",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
"""client-go's ``reasonForCode``, used when a non-2xx answer carries no ``Status`` body."""


class KubeAPIError(Exception):
    """A non-2xx answer. ``status`` is the server's ``Status`` object (or one made up from the
    HTTP code and body when the server sent something else, as client-go does), so callers
    test ``err.reason == "NotFound"`` or ``err.code == 409`` as they would with client-go's
    ``errors.IsNotFound`` and ``errors.IsConflict``."""

    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status
        self.code = int(status.get("code") or 0)
        self.reason = str(status.get("reason") or "")
        self.message = str(status.get("message") or "")
        super().__init__(f"{self.code} {self.reason}: {self.message}")

    @classmethod
    def from_response(cls, code: int, body: bytes, content_type: str) -> KubeAPIError:
        """The error for an answer with HTTP ``code`` and ``body``: the body itself when it is a
        ``Status``, else a ``Status`` built from the code and the body's text."""
        if "json" in content_type:
            try:
                decoded = json.loads(body)
            except ValueError:
                decoded = None
            if isinstance(decoded, dict) and decoded.get("kind") == "Status":
                decoded.setdefault("code", code)
                return cls(decoded)
        text = body.decode("utf-8", "replace").strip()
        if not text:
            try:
                text = HTTPStatus(code).phrase
            except ValueError:
                text = f"HTTP {code}"
        return cls(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": text[:1024],
                "reason": _REASONS.get(code, ""),
                "code": code,
            }
        )


class KubeConnectionError(Exception):
    """No usable answer: the connection could not be opened, broke, timed out, or carried
    something that is not HTTP. Whether the request took effect is unknown, unless ``sent``
    is False: no connection could be opened, so nothing of it reached the server."""

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent
