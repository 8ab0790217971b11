"""From an HTTP request's target and header fields to what :class:`Request` carries.

The request target is split the way Go's ``net/http`` server does it, because the handlers
are written against upstream's behaviour: the path is percent-decoded (``req.URL.Path``), and
the query is parsed like ``url.ParseQuery`` (``&`` separates pairs, ``+`` is a space, empty
values are kept, a repeated name keeps every value in order). A target whose path starts with
``//`` is still a path, not an authority, as for Go's ``ParseRequestURI``.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit


class BadTarget(ValueError):
    """A request target that cannot be decoded; the HTTP layer answers it with 400."""


def split_target(target: bytes) -> tuple[str, dict[str, tuple[str, ...]]]:
    """The decoded path and the parsed query of a request target.

    Origin-form (``/api/v1/pods?watch=1``) is what every client sends; absolute-form
    (``https://host/api``) is accepted as HTTP/1.1 requires of servers; ``*`` (for ``OPTIONS``)
    is kept as the path ``*``.
    """
    try:
        text = target.decode("ascii")
    except UnicodeDecodeError:
        raise BadTarget("the request target is not ASCII") from None
    if text.startswith("/") or text == "*":
        raw_path, _, raw_query = text.partition("?")
    else:
        parts = urlsplit(text)
        if not parts.scheme or not parts.netloc:
            raise BadTarget(f"invalid request target {text!r}")
        raw_path, raw_query = parts.path or "/", parts.query
    # A fragment is never sent by a client; if one arrives it is not part of the path.
    raw_path = raw_path.partition("#")[0]
    try:
        path = unquote(raw_path, errors="strict")
    except UnicodeDecodeError:
        raise BadTarget(f"the request path {raw_path!r} is not UTF-8 once decoded") from None
    return path, parse_query(raw_query)


def parse_query(raw: str) -> dict[str, tuple[str, ...]]:
    """``a=1&b=&a=2`` -> ``{"a": ("1", "2"), "b": ("",)}``; ``;`` is not a separator (Go
    stopped treating it as one in 1.17)."""
    collected: dict[str, list[str]] = {}
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise BadTarget("the query is not UTF-8 once decoded") from None
    for name, value in pairs:
        collected.setdefault(name, []).append(value)
    return {name: tuple(values) for name, values in collected.items()}


def join_headers(fields: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Header fields as ``{lower-case name: value}``, repeated fields joined with ``", "``.

    h11 already lower-cases names. Values are decoded as Latin-1, the one decoding under which
    every byte HTTP allows in a field value maps to a character and back unchanged.
    """
    headers: dict[str, str] = {}
    for raw_name, raw_value in fields:
        name = raw_name.decode("ascii").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers
