"""What a request path and method mean, before anything is looked up: upstream's RequestInfo.

Authorization, admission and the handlers all start from it, so it is parsed once, the way
``k8s.io/apiserver/pkg/endpoints/request.RequestInfoFactory`` parses it:

- ``/api/v1/...`` is the core group; ``/apis/{group}/{version}/...`` any other.
- ``namespaces/{ns}/{resource}/{name}/{subresource}`` for namespaced objects; but
  ``namespaces/{name}/status`` and ``namespaces/{name}/finalize`` are subresources of the
  namespace itself, and the namespace of a Namespace request is its own name (as upstream).
- the legacy ``/api/v1/watch/...`` prefix, or ``?watch=true`` on a list, is the ``watch`` verb.
- GET is ``get`` with a name and ``list`` without; DELETE without a name is
  ``deletecollection``; a list or watch whose field selector pins ``metadata.name`` is
  authorized as a request for that name.

Anything else (``/version``, ``/healthz``, ``/openapi/v2``, discovery) is a non-resource request
whose verb is the lower-case HTTP method, as RBAC's ``nonResourceURLs`` rules expect.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@attrs.frozen
class RequestInfo:
    path: str
    verb: str
    is_resource_request: bool = False
    api_prefix: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


def _is_true(value: str) -> bool:
    return value.lower() in {"1", "true"}


def _name_from_field_selector(selector: str) -> str:
    for term in selector.split(","):
        key, sep, value = term.partition("=")
        key = key.rstrip("=")
        value = value.lstrip("=")
        if sep and key.strip() == "metadata.name" and not key.endswith("!"):
            return value.strip()
    return ""


def parse_request_info(method: str, path: str, query: Mapping[str, tuple[str, ...]]) -> RequestInfo:
    """Parse ``method`` and ``path`` (without the query string) as upstream does."""
    method = method.upper()
    parts = [p for p in path.strip("/").split("/") if p]
    non_resource = RequestInfo(path=path, verb=method.lower())
    if not parts or parts[0] not in {"api", "apis"}:
        return non_resource
    prefix = parts[0]
    rest = parts[1:]
    if prefix == "apis":
        if len(rest) < 2:  # /apis or /apis/{group}: discovery
            return non_resource
        group, version, rest = rest[0], rest[1], rest[2:]
    else:
        if len(rest) < 1:  # /api: discovery
            return non_resource
        group, version, rest = "", rest[0], rest[1:]
    if not rest:  # /api/v1, /apis/apps/v1: discovery
        return non_resource

    verb = ""
    if rest[0] == "watch":
        verb = "watch"
        rest = rest[1:]
        if not rest:
            return non_resource
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""

    if not verb:
        if method in {"GET", "HEAD"}:
            verb = "get" if name else "list"
            if verb == "list" and _is_true(_last(query, "watch")):
                verb = "watch"
        elif method == "DELETE":
            verb = "delete" if name else "deletecollection"
        else:
            verb = _VERBS.get(method, method.lower())
    if verb in {"list", "watch"} and not name:
        name = _name_from_field_selector(_last(query, "fieldSelector"))
    return RequestInfo(
        path=path,
        verb=verb,
        is_resource_request=True,
        api_prefix=prefix,
        api_group=group,
        api_version=version,
        namespace=namespace,
        resource=resource,
        subresource=subresource,
        name=name,
    )


def _last(query: Mapping[str, tuple[str, ...]], name: str) -> str:
    values = query.get(name)
    return values[-1] if values else ""
