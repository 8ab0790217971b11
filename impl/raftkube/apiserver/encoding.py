"""Request bodies in, response bodies out: JSON (and YAML, which kubectl never sends but people
do with curl), with upstream's errors for everything else.

Responses are JSON; client-go reads a response by its own Content-Type, so that serves clients
that prefer protobuf too. Protobuf request bodies (``application/vnd.kubernetes.protobuf``), which
kubectl's typed clients send, are read by :mod:`raftkube.apiserver.protobuf`.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from raftkube.apiserver import errors, protobuf
from raftkube.apiserver.request import Request, Response

JSON = "application/json"
YAML = "application/yaml"
_JSON_TYPES = frozenset({JSON, "text/json", "*/*", "application/*", ""})
_YAML_TYPES = frozenset({YAML, "application/x-yaml", "text/yaml"})


def media_type(header: str) -> str:
    """``application/json`` from ``application/json; charset=utf-8``."""
    return header.split(";", 1)[0].strip().lower()


def decode_object(req: Request, kind_hint: str = "") -> dict[str, Any]:
    """The request body as a JSON object; 415 for a media type we do not read, 400 for a body
    that does not parse or is not an object (worded as upstream's decoder)."""
    ctype = media_type(req.headers.get("content-type", JSON))
    if ctype in _JSON_TYPES:
        text = req.body.decode("utf-8", errors="replace")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _unrecognized(kind_hint, f"json parse error: {exc}") from None
    elif ctype in _YAML_TYPES:
        try:
            value = yaml.safe_load(req.body)
        except yaml.YAMLError as exc:
            raise _unrecognized(kind_hint, f"yaml parse error: {exc}") from None
    elif ctype == protobuf.MEDIA_TYPE:
        value = protobuf.decode_protobuf(req.body, kind_hint)
    else:
        raise errors.unsupported_media_type(ctype)
    if not isinstance(value, dict):
        raise _unrecognized(kind_hint, "the body is not a JSON object")
    return value


def _unrecognized(kind: str, detail: str) -> errors.APIError:
    must = f" (must be of type {kind})" if kind else ""
    detail = " ".join(detail.split())  # parsers' messages span lines; a Status message does not
    return errors.bad_request(
        f"the object provided is unrecognized{must}: couldn't get version/kind; {detail}"
    )


def wants_yaml(req: Request) -> bool:
    accept = req.headers.get("accept", "")
    return any(media_type(part) in _YAML_TYPES for part in accept.split(","))


def encode(value: Any, *, yaml_out: bool = False) -> bytes:
    if yaml_out:
        return yaml.safe_dump(value, sort_keys=False).encode()
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def respond(status: int, value: Any, req: Request | None = None) -> Response:
    """A JSON (or, if asked for, YAML) response."""
    as_yaml = req is not None and wants_yaml(req)
    ctype = YAML if as_yaml else JSON
    return Response(status, (("content-type", ctype),), encode(value, yaml_out=as_yaml))


def error_response(exc: errors.APIError) -> Response:
    headers = (("content-type", JSON), *exc.headers)
    return Response(exc.code, headers, encode(exc.status()))


def success_status(details: dict[str, Any] | None = None) -> dict[str, Any]:
    """``Status{status: Success}``, what some deletions and evictions answer."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
    }
    if details:
        body["details"] = details
    return body
