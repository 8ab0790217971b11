"""Label and field selectors: upstream's syntax, errors, matching and canonical printing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftkube.apiserver.errors import APIError
from raftkube.apiserver.selectors import (
    FieldSelector,
    FieldTerm,
    LabelSelector,
    Operator,
    Requirement,
    check_field_keys,
    from_api,
    new_requirement,
    object_meta_fields,
    parse_field_selector,
    parse_label_selector,
)

names = st.from_regex(r"\A[A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?\Z")
label_values = st.one_of(st.just(""), names)
dns_labels = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?\Z")
prefixes = st.lists(dns_labels, min_size=1, max_size=3).map(".".join)
keys = st.one_of(names, st.builds(lambda p, n: f"{p}/{n}", prefixes, names))


@st.composite
def requirements(draw: st.DrawFn) -> Requirement:
    key = draw(keys)
    op = draw(st.sampled_from(list(Operator)))
    if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        values: list[str] = []
    elif op in (Operator.IN, Operator.NOT_IN):
        values = draw(st.lists(label_values, min_size=1, max_size=4))
    elif op in (Operator.GREATER_THAN, Operator.LESS_THAN):
        values = [str(draw(st.integers(-1000, 1000)))]
    else:
        values = [draw(label_values)]
    return new_requirement(key, op, values)


label_selectors = st.lists(requirements(), max_size=5).map(
    lambda reqs: LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))
)
label_sets = st.dictionaries(keys, label_values, max_size=4)


@given(label_selectors)
def test_label_selectors_print_and_parse_back(selector: LabelSelector) -> None:
    assert parse_label_selector(str(selector)) == selector


@given(requirements(), label_sets)
def test_negated_operators_select_the_complement(req: Requirement, labels: dict[str, str]) -> None:
    opposite = {
        Operator.EQUALS: Operator.NOT_EQUALS,
        Operator.DOUBLE_EQUALS: Operator.NOT_EQUALS,
        Operator.NOT_EQUALS: Operator.EQUALS,
        Operator.IN: Operator.NOT_IN,
        Operator.NOT_IN: Operator.IN,
        Operator.EXISTS: Operator.DOES_NOT_EXIST,
        Operator.DOES_NOT_EXIST: Operator.EXISTS,
    }
    op = req.operator
    if op not in opposite:
        return
    key, values = req.key, req.values
    labels = {**labels}
    if values and values[0] and len(labels) % 2:
        labels[key] = values[0]  # half the time the label is there with a selected value
    negated = new_requirement(key, opposite[op], values)
    assert req.matches(labels) != negated.matches(labels)


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {}, True),
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "db"}, False),
        ("app!=web", {}, True),  # a missing label is "not web", as upstream
        ("app in (web, db), tier", {"app": "db", "tier": "x"}, True),
        ("app notin (web)", {"app": "web"}, False),
        ("!app", {"app": ""}, False),
        ("app=", {"app": ""}, True),
        ("n>3", {"n": "4"}, True),
        ("n<3", {"n": "x"}, False),
        ("example.com/role=x , other", {"example.com/role": "x", "other": "1"}, True),
    ],
)
def test_label_selector_matching(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a in b", "unable to parse requirement: found 'b', expected: '('"),
        ("a=b=c", "found '=', expected: ',' or 'end of string'"),
        ("a,", "found '', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("a in (x", "unable to parse requirement: found '', expected: ',', ')' or identifier"),
        ("-a=b", 'key: Invalid value: "-a": name part must consist of alphanumeric'),
        ("a=-b", 'values[0]: Invalid value: "-b": a valid label must be an empty string'),
        ("/a", 'key: Invalid value: "/a": prefix part must be non-empty'),
        ("a>b", "for 'Gt', 'Lt' operators, the value must be an integer"),
        ("x=" + "v" * 64, "must be no more than 63 characters"),
    ],
)
def test_bad_label_selectors(text: str, message: str) -> None:
    with pytest.raises(APIError) as err:
        parse_label_selector(text)
    assert err.value.code == 400 and message in err.value.message


def test_structured_label_selectors() -> None:
    assert from_api(None).matches({"a": "b"}) is False  # no selector selects nothing
    assert from_api({}).matches({"a": "b"}) is True
    sel = from_api(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["fe", "be"]},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        }
    )
    assert str(sel) == "app=web,!canary,tier in (be,fe)"
    assert sel.matches({"app": "web", "tier": "fe"})
    assert not sel.matches({"app": "web", "tier": "fe", "canary": "1"})
    with pytest.raises(APIError, match='"Like" is not a valid label selector operator'):
        from_api({"matchExpressions": [{"key": "a", "operator": "Like"}]})
    with pytest.raises(APIError, match="values set can't be empty"):
        from_api({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})


field_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz.", min_size=1, max_size=15)
field_terms = st.builds(FieldTerm, field_names, st.text(max_size=10), st.booleans(), st.booleans())


@given(st.lists(field_terms, max_size=4))
def test_field_selectors_print_and_parse_back(terms: list[FieldTerm]) -> None:
    terms = [t if not t.negated else FieldTerm(t.field, t.value, True, False) for t in terms]
    selector = FieldSelector(tuple(sorted(terms, key=str)))
    assert parse_field_selector(str(selector)) == selector


def test_field_selectors() -> None:
    sel = parse_field_selector("spec.nodeName=n1,metadata.name!=x,a==b\\,c")
    assert sel.keys == ("a", "metadata.name", "spec.nodeName")  # sorted, as upstream
    assert sel.matches({"spec.nodeName": "n1", "metadata.name": "y", "a": "b,c"})
    assert not sel.matches({"spec.nodeName": "n1", "metadata.name": "x", "a": "b,c"})
    assert parse_field_selector("spec.nodeName=").matches({})  # a missing field reads as ""
    assert sel.value_of("spec.nodeName") == "n1" and sel.value_of("metadata.name") is None
    assert parse_field_selector("").empty
    with pytest.raises(APIError, match="invalid selector: 'abc'; can't understand 'abc'"):
        parse_field_selector("abc")
    with pytest.raises(APIError, match="invalid escape sequence"):
        parse_field_selector("a=\\x")
    check_field_keys(parse_field_selector("metadata.name=a"), object_meta_fields)
    with pytest.raises(APIError) as err:
        check_field_keys(parse_field_selector("spec.foo=a"), ["metadata.name"])
    assert err.value.code == 400 and err.value.message == "field label not supported: spec.foo"
