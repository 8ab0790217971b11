"""Bad input gets upstream's status code and a one-line Status message, and writes nothing.

Each case sends raw HTTP through the REST client's ``request`` (so nothing on the client side
cleans the input up), checks the code, the ``Status`` reason and message, and then that the
store holds what it held before.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from raftkube.apiserver.resources import lookup
from tests.helpers.api_server import APIHarness

CONFIGMAPS = lookup("", "v1", "configmaps")
CM_PATH = "/api/v1/namespaces/default/configmaps"


async def status_of(api: APIHarness, method: str, path: str, body: bytes = b"",
                    content_type: str = "application/json",
                    client: Any = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
    c = client or api.admin
    path, _, raw_query = path.partition("?")
    query = dict(part.split("=", 1) for part in raw_query.split("&")) if raw_query else None
    code, _, data = await c.request(method, path, query=query, body=body, content_type=content_type)
    return code, json.loads(data) if data else {}


async def revision(api: APIHarness) -> str:
    listed = await api.admin.list(CONFIGMAPS, namespace="default")
    return str(listed["metadata"]["resourceVersion"])


CASES = [
    # (what, method, path, body, content type, code, reason, message fragment)
    ("malformed JSON", "POST", CM_PATH, b'{"metadata": {', "application/json", 400,
     "BadRequest", "json parse error"),
    ("malformed YAML", "POST", CM_PATH, b"metadata: [", "application/yaml", 400,
     "BadRequest", "yaml parse error"),
    ("a body that is no object", "POST", CM_PATH, b"[1, 2]", "application/json", 400,
     "BadRequest", "not a JSON object"),
    ("the wrong kind", "POST", CM_PATH,
     b'{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}', "application/json",
     400, "BadRequest", "does not match the expected kind (ConfigMap)"),
    ("the wrong API version", "POST", CM_PATH,
     b'{"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}',
     "application/json", 400, "BadRequest", "does not match the expected API version (v1)"),
    ("an invalid name", "POST", CM_PATH, b'{"metadata": {"name": "Bad_Name"}}',
     "application/json", 422, "Invalid", 'ConfigMap "Bad_Name" is invalid: metadata.name'),
    ("no name", "POST", CM_PATH, b'{"metadata": {}}', "application/json", 422, "Invalid",
     "name or generateName is required"),
    ("a field of the wrong type", "POST", "/apis/apps/v1/namespaces/default/deployments",
     b'{"metadata": {"name": "d"}, "spec": {"replicas": "3"}}', "application/json", 400,
     "BadRequest", 'Deployment in version "v1" cannot be handled as a Deployment: json: '),
    ("an unknown media type", "POST", CM_PATH, b"x", "text/plain", 415,
     "UnsupportedMediaType", "text/plain"),
    ("an oversized body", "POST", CM_PATH,
     json.dumps({"metadata": {"name": "big"}, "data": {"k": "x" * (4 << 20)}}).encode(),
     "application/json", 413, "RequestEntityTooLarge", "limit"),
    ("a verb the resource does not serve", "DELETE", "/api/v1/namespaces/default/bindings",
     b"", "application/json", 405, "MethodNotAllowed", "not supported"),
    ("an unknown resource", "GET", "/api/v1/namespaces/default/widgets", b"",
     "application/json", 404, "NotFound", "could not find the requested resource"),
    ("an unsupported field selector", "GET", CM_PATH + "?fieldSelector=spec.foo=bar", b"",
     "application/json", 400, "BadRequest", "field label not supported: spec.foo"),
    ("a malformed label selector", "GET", CM_PATH + "?labelSelector=a in (", b"",
     "application/json", 400, "BadRequest", ""),
]  # fmt: skip


@pytest.mark.trio
@pytest.mark.parametrize(
    ("what", "method", "path", "body", "ctype", "code", "reason", "fragment"),
    CASES,
    ids=[c[0] for c in CASES],
)
async def test_bad_input_is_refused_and_writes_nothing(
    api: APIHarness,
    what: str,
    method: str,
    path: str,
    body: bytes,
    ctype: str,
    code: int,
    reason: str,
    fragment: str,
) -> None:
    with trio.fail_after(30):
        before = await revision(api)
        got, status = await status_of(api, method, path, body, ctype)
        assert got == code, (what, status)
        assert status["kind"] == "Status" and status["reason"] == reason
        assert status["code"] == code and fragment in status["message"]
        assert "\n" not in status["message"]
        assert await revision(api) == before


@pytest.mark.trio
async def test_a_stale_resource_version_is_a_conflict_and_changes_nothing(
    api: APIHarness,
) -> None:
    with trio.fail_after(30):
        created = await api.admin.create(
            CONFIGMAPS, {"metadata": {"name": "c"}, "data": {"a": "1"}}, namespace="default"
        )
        await api.admin.update(CONFIGMAPS, {**created, "data": {"a": "2"}}, namespace="default")
        stale = {**created, "data": {"a": "3"}}
        code, status = await status_of(api, "PUT", f"{CM_PATH}/c", json.dumps(stale).encode())
        assert (code, status["reason"]) == (409, "Conflict")
        assert status["message"] == (
            'Operation cannot be fulfilled on configmaps "c": the object has been modified; '
            "please apply your changes to the latest version and try again"
        )
        current = await api.admin.get(CONFIGMAPS, "c", namespace="default")
        assert current["data"] == {"a": "2"}


@pytest.mark.trio
async def test_forged_and_unknown_tokens_are_unauthorized(api: APIHarness) -> None:
    header = "eyJhbGciOiJFUzI1NiIsImtpZCI6IngifQ"
    claims = "eyJpc3MiOiJodHRwczovL2t1YmVybmV0ZXMuZGVmYXVsdC5zdmMuY2x1c3Rlci5sb2NhbCJ9"
    forged = f"{header}.{claims}.c2lnbmF0dXJl"
    with trio.fail_after(30):
        for token in ("not-a-token", forged):
            async with api.token_client(token) as c:
                code, status = await status_of(api, "GET", "/api/v1/namespaces", client=c)
            assert (code, status["reason"], status["message"]) == (
                401, "Unauthorized", "Unauthorized"
            )  # fmt: skip
            assert token not in json.dumps(status)
