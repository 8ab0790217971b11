"""JSON patch (RFC 6902) and JSON merge patch (RFC 7386) through ``apply_patch``: the RFCs'
own examples, and the status codes and messages upstream's API server answers failures with."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftkube.apiserver import patch
from raftkube.apiserver.errors import APIError

JP = patch.JSON_PATCH
MP = patch.MERGE_PATCH
SMP = patch.STRATEGIC_MERGE_PATCH


def _apply(ctype: str, original: dict[str, Any], body: Any) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return patch.apply_patch(ctype, original, raw, None)


def _error(ctype: str, original: dict[str, Any], body: Any) -> APIError:
    with pytest.raises(APIError) as info:
        _apply(ctype, original, body)
    return info.value


# RFC 6902 appendix A: (document, patch, result)
RFC6902_EXAMPLES = [
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),
    (
        {"foo": ["bar", "baz"]},
        [{"op": "add", "path": "/foo/1", "value": "qux"}],
        {"foo": ["bar", "qux", "baz"]},
    ),
    ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
    (
        {"baz": "qux", "foo": "bar"},
        [{"op": "replace", "path": "/baz", "value": "boo"}],
        {"baz": "boo", "foo": "bar"},
    ),
    (
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
    ),
    (
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
    ),
    (
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [
            {"op": "test", "path": "/baz", "value": "qux"},
            {"op": "test", "path": "/foo/1", "value": 2},
        ],
        {"baz": "qux", "foo": ["a", 2, "c"]},
    ),
    (
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
    ),
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    (
        {"foo": ["bar"]},
        [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
        {"foo": ["bar", ["abc", "def"]]},
    ),
]


@pytest.mark.parametrize(("doc", "ops", "want"), RFC6902_EXAMPLES)
def test_json_patch_rfc6902_examples(doc: Any, ops: Any, want: Any) -> None:
    before = json.loads(json.dumps(doc))
    assert _apply(JP, doc, ops) == want
    assert doc == before  # the current object is not modified


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/baz", "value": "bar"}],  # A.9 failing test
        [{"op": "add", "path": "/baz/bat", "value": "qux"}],  # A.12 missing parent
        [{"op": "test", "path": "/~01", "value": "10"}],  # A.15 string is not number
        [{"op": "remove", "path": "/nope"}],
        [{"op": "replace", "path": "nope", "value": 1}],  # not a JSON pointer
        [{"op": "frobnicate", "path": "/baz"}],
        [{"op": "add", "path": "/baz"}],  # no value
        [{"op": "replace", "path": "", "value": [1]}],  # the result is not an object
    ],
)
def test_json_patch_that_cannot_apply_is_422_with_upstreams_generic_message(ops: Any) -> None:
    err = _error(JP, {"baz": "qux", "/": 9, "~1": 10}, ops)
    assert (err.code, err.reason) == (422, "Invalid")
    assert err.message == "the server rejected our request due to an error in our request"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[{", None),
        ({"op": "add"}, "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
        ([1], "json: cannot unmarshal array element into Go value of type jsonpatch.Patch"),
    ],
)
def test_json_patch_that_does_not_decode_is_400(body: Any, message: str | None) -> None:
    err = _error(JP, {}, body)
    assert (err.code, err.reason) == (400, "BadRequest")
    if message is not None:
        assert err.message == message


def test_json_patch_null_is_an_empty_patch_and_too_many_operations_are_413() -> None:
    assert _apply(JP, {"a": 1}, b"null") == {"a": 1}
    ops = [{"op": "test", "path": "/a", "value": 1}] * (patch.MAX_JSON_PATCH_OPERATIONS + 1)
    err = _error(JP, {"a": 1}, ops)
    assert (err.code, err.reason) == (413, "RequestEntityTooLarge")
    assert err.message.endswith("is 10000, got 10001")


# RFC 7386 appendix A: (original, patch, result)
RFC7386_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("doc", "body", "want"), RFC7386_EXAMPLES)
def test_merge_patch_rfc7386_examples(doc: Any, body: Any, want: Any) -> None:
    before = json.loads(json.dumps(doc))
    assert _apply(MP, doc, body) == want
    assert doc == before


def test_merge_patch_bodies_upstream_refuses() -> None:
    for body in (b"{", b"null", b'"x"', b"3", b"NaN"):
        err = _error(MP, {"a": 1}, body)
        assert (err.code, err.reason, err.message) == (400, "BadRequest", "Invalid JSON Patch")
    err = _error(MP, {"a": 1}, [1, 2])  # replaces the document with an array
    assert (err.code, err.reason) == (422, "Invalid")


def test_unknown_media_types_are_415_listing_the_accepted_ones() -> None:
    for ctype in ("application/json", "", patch.APPLY_PATCH, "application/merge-patch+json "):
        err = _error(ctype, {}, {})
        assert (err.code, err.reason) == (415, "UnsupportedMediaType")
        assert err.message == (
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, "
            "application/strategic-merge-patch+json"
        )
    assert _apply("application/merge-patch+json; charset=utf-8", {"a": 1}, {"b": 2}) == {
        "a": 1,
        "b": 2,
    }


def test_a_patch_that_changes_nothing_returns_an_equal_object() -> None:
    pod = {"kind": "Pod", "metadata": {"name": "p", "labels": {"a": "1"}}}
    assert _apply(MP, pod, {"metadata": {"labels": {"a": "1"}}}) == pod
    assert _apply(JP, pod, []) == pod
    assert _apply(patch.STRATEGIC_MERGE_PATCH, pod, {}) == pod


# JSON without nulls: RFC 7386 cannot say "set to null" (null means delete); keys without "$",
# which strategic merge patch reads as directives.
_keys = st.text(alphabet="abc/", max_size=2)
_scalars = st.one_of(st.booleans(), st.integers(), st.text(max_size=3))
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=3)),
    max_leaves=12,
)
_objects = st.dictionaries(_keys, _json, max_size=4)


@given(_objects, _objects)
def test_merge_patch_of_the_difference_takes_a_to_b(a: dict[str, Any], b: dict[str, Any]) -> None:
    diff = patch.create_merge_patch(a, b)
    got = _apply(MP, a, diff)
    assert patch.json_equal(got, b)
    # The same patch through strategic merge patch with no patch metadata: the same result.
    assert patch.json_equal(
        patch.apply_patch(
            patch.STRATEGIC_MERGE_PATCH, a, json.dumps(diff).encode(), lambda _p: (None, "")
        ),
        b,
    )
    if patch.json_equal(a, b):
        assert diff == {}
