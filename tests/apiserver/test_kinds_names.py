"""Name, label and annotation syntax, and ObjectMeta validation, worded as upstream."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from raftkube.apiserver.errors import invalid
from raftkube.apiserver.kinds import field as f
from raftkube.apiserver.kinds.meta import (
    validate_annotations,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from raftkube.apiserver.kinds.names import (
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_path_segment_name,
    is_qualified_name,
    name_is_dns_subdomain,
)
from tests.helpers.kinds import text

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


def test_subdomain_message_is_upstreams() -> None:
    assert is_dns1123_subdomain("Foo") == [SUBDOMAIN_MSG]
    assert is_dns1123_subdomain("a" * 254) == ["must be no more than 253 characters"]
    assert is_dns1123_subdomain("example.com") == []
    # Python's $ would accept a trailing newline; Go's regexp does not.
    assert is_dns1123_subdomain("abc\n") == [SUBDOMAIN_MSG]


def test_label_names() -> None:
    assert is_dns1123_label("my-name") == []
    assert is_dns1123_label("a.b") == ["must not contain dots"]
    assert is_dns1123_label("-a") == [LABEL_MSG]
    assert is_dns1035_label("1abc")[0].startswith("a DNS-1035 label must consist of")
    assert is_dns1035_label("abc-1") == []


def test_qualified_names() -> None:
    assert is_qualified_name("example.com/MyName") == []
    assert is_qualified_name("app") == []
    assert is_qualified_name("/a") == ["prefix part must be non-empty"]
    assert is_qualified_name("a/") == [
        "name part must be non-empty",
        "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
        "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
        "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
    ]
    assert is_qualified_name("a/b/c")[0].startswith("a qualified name must consist of")
    assert is_qualified_name("Bad_Prefix/x") == ["prefix part " + SUBDOMAIN_MSG]
    assert is_label_value("") == []
    assert is_label_value("x" * 64) == [
        "must be no more than 63 characters",
    ]


def test_path_segment_names() -> None:
    assert is_path_segment_name("system:kube-scheduler") == []
    assert is_path_segment_name("..") == ["may not be '..'"]
    assert is_path_segment_name("a/b%c") == ["may not contain '/'", "may not contain '%'"]


def test_generate_name_prefix_may_end_with_a_dash() -> None:
    assert name_is_dns_subdomain("web-", prefix=True) == []
    assert name_is_dns_subdomain("web-", prefix=False) == [SUBDOMAIN_MSG]


_LABEL = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)


@given(st.lists(_LABEL, min_size=1, max_size=5))
def test_dotted_labels_are_subdomains(parts: list[str]) -> None:
    name = ".".join(parts)
    assert is_dns1123_subdomain(name) == []
    assert (is_dns1123_label(name) == []) == (len(parts) == 1)


@given(st.text(max_size=30))
def test_subdomain_check_agrees_with_the_regex(name: str) -> None:
    ok = re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", name)
    assert (is_dns1123_subdomain(name) == []) == bool(ok)
    assert (is_dns1123_label(name) == []) == bool(ok and "." not in name)


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=70))
def test_label_values_and_qualified_names_agree_with_their_regex(value: str) -> None:
    ok = re.fullmatch(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", value)
    assert (is_label_value(value) == []) == bool(ok and len(value) <= 63)
    if "/" not in value:
        assert (is_qualified_name(value) == []) == bool(ok and value and len(value) <= 63)


def test_labels_and_annotations_are_reported_at_the_map() -> None:
    causes = validate_labels({"bad key": "ok", "ok": "bad value"}, "metadata.labels")
    assert [c.field for c in causes] == ["metadata.labels", "metadata.labels"]
    assert causes[0].message.startswith('Invalid value: "bad key": name part must consist')
    assert causes[1].message.startswith('Invalid value: "bad value": a valid label must be')
    # Annotation keys ignore case; their total size is limited to 256 KiB.
    assert validate_annotations({"Example.COM/Key": "v"}, "metadata.annotations") == []
    big = validate_annotations({"a": "x" * (256 * 1024)}, "metadata.annotations")
    assert text(big) == ["metadata.annotations: Too long: must have at most 262144 bytes"]


def test_object_meta_on_create() -> None:
    def check(meta: dict, namespaced: bool = True) -> list[str]:
        return text(validate_object_meta(meta, namespaced, name_is_dns_subdomain))

    assert check({"name": "ok", "namespace": "default"}) == []
    assert check({"namespace": "default"}) == [
        "metadata.name: Required value: name or generateName is required"
    ]
    assert check({"name": "ok"}) == ["metadata.namespace: Required value"]
    assert check({"name": "ok", "namespace": "x"}, namespaced=False) == [
        "metadata.namespace: Forbidden: not allowed on this type"
    ]
    assert check({"name": "Bad", "namespace": "default"}) == [
        f'metadata.name: Invalid value: "Bad": {SUBDOMAIN_MSG}'
    ]
    assert check({"name": "ok", "namespace": "default", "generation": -1}) == [
        "metadata.generation: Invalid value: -1: must be greater than or equal to 0"
    ]
    assert check({"name": "ok", "namespace": "d", "finalizers": ["custom"]}) == [
        'metadata.finalizers[0]: Invalid value: "custom": name is neither a standard finalizer '
        "name nor is it fully qualified"
    ]
    refs = [
        {"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1", "controller": True},
        {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2", "controller": True},
    ]
    [message] = check({"name": "ok", "namespace": "d", "ownerReferences": refs})
    assert message.endswith(
        'Only one reference can have Controller set to true. Found "true" in references for '
        "A/a and B/b"
    )


def test_object_meta_update_keeps_identity() -> None:
    old = {"name": "a", "namespace": "d", "uid": "u1", "generation": 3}
    new = {"name": "a", "namespace": "d", "uid": "u2", "generation": 2}
    assert text(validate_object_meta_update(new, old, True)) == [
        "metadata.generation: Invalid value: 2: must not be decremented",
        'metadata.uid: Invalid value: "u2": field is immutable',
    ]
    deleting = {**old, "deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": ["a.io/x"]}
    adding = {**deleting, "finalizers": ["a.io/x", "b.io/y"]}
    assert text(validate_object_meta_update(adding, deleting, True)) == [
        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being "
        'deleted, found new finalizers []string{"b.io/y"}'
    ]


def test_status_message_reads_as_kubectl_shows_it() -> None:
    causes = [f.required("spec.containers"), f.not_supported("spec.type", "X", ("A", "B"))]
    error = invalid("Pod", "web", causes)
    assert error.message == (
        'Pod "web" is invalid: [spec.containers: Required value, spec.type: Unsupported value: '
        '"X": supported values: "A", "B"]'
    )
    assert error.details is not None
    assert error.details["causes"][1] == {
        "reason": "FieldValueNotSupported",
        "message": 'Unsupported value: "X": supported values: "A", "B"',
        "field": "spec.type",
    }
