"""Resource quantities: upstream's parsing, canonical forms and exact comparison."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftkube.apiserver.quantity import (
    BINARY_SI,
    DECIMAL_EXPONENT,
    DECIMAL_SI,
    ERR_FORMAT,
    ERR_NUMERIC,
    ERR_SUFFIX,
    Quantity,
    QuantityError,
    is_quantity,
    parse_quantity,
    parse_quantity_json,
)


@pytest.mark.parametrize(
    ("text", "canonical", "milli"),
    [
        ("100m", "100m", 100),
        ("1", "1", 1000),
        ("1.5", "1500m", 1500),
        ("0.1", "100m", 100),
        (".5", "500m", 500),
        ("1.G", "1G", 10**12),
        ("2000", "2k", 2_000_000),
        ("128Mi", "128Mi", 128 * 2**20 * 1000),
        ("1Ki", "1Ki", 1024_000),
        ("1.5Gi", "1536Mi", 1536 * 2**20 * 1000),
        ("0.5Ki", "512", 512_000),
        ("1.1Ki", "1126400m", 1_126_400),
        ("1G", "1G", 10**12),
        ("1e3", "1e3", 10**6),
        ("12e6", "12e6", 12 * 10**9),
        ("1.5e3", "1500", 1_500_000),
        ("1e-3", "1e-3", 1),
        ("0.1n", "1n", 1),
        ("-1.5", "-1500m", -1500),
        ("+7", "7", 7000),
        ("0", "0", 0),
        ("000", "0", 0),
        ("0Gi", "0", 0),
        ("-", "0", 0),
        ("1000E", "1e21", 10**24),
    ],
)
def test_upstream_canonical_forms(text: str, canonical: str, milli: int) -> None:
    q = parse_quantity(text)
    assert q.canonical() == canonical
    assert str(q) == canonical
    assert q.milli_value() == milli


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", ERR_FORMAT),
        ("abc", ERR_FORMAT),
        ("1 Gi", ERR_FORMAT),
        ("1Gi!", ERR_FORMAT),
        ("1Gii", ERR_SUFFIX),
        ("1e", ERR_SUFFIX),
        ("1ee3", ERR_SUFFIX),
        ("1i", ERR_SUFFIX),
        ("--1", ERR_SUFFIX),
        (".", ERR_NUMERIC),
        ("k", ERR_NUMERIC),
        ("-.Mi", ERR_NUMERIC),
    ],
)
def test_bad_quantities_get_upstreams_message(text: str, message: str) -> None:
    with pytest.raises(QuantityError) as caught:
        parse_quantity(text)
    assert str(caught.value) == message
    assert not is_quantity(text)


def test_the_format_message_is_upstreams() -> None:
    assert ERR_FORMAT == (
        "quantities must match the regular expression "
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )


def test_suffix_decides_the_format() -> None:
    assert parse_quantity("1Mi").format == BINARY_SI
    assert parse_quantity("1M").format == DECIMAL_SI
    assert parse_quantity("1e6").format == DECIMAL_EXPONENT
    # A binary amount below one has no binary form: upstream switches to decimal.
    assert parse_quantity("0.0000001Ki").format == DECIMAL_SI


def test_binary_quantities_are_capped_at_int64() -> None:
    assert parse_quantity("100000000Ei").amount == 2**63 - 1


def test_value_rounds_up_and_compares_exactly() -> None:
    assert parse_quantity("100m").value() == 1
    assert parse_quantity("-100m").value() == 0
    assert parse_quantity("1Gi") == parse_quantity("1073741824")
    assert parse_quantity("0.1") + parse_quantity("0.2") == parse_quantity("300m")
    assert parse_quantity("999m") < parse_quantity("1") <= parse_quantity("1000m")
    assert parse_quantity("1Gi") > parse_quantity("1G")
    assert len({parse_quantity("1k"), parse_quantity("1000"), parse_quantity("1e3")}) == 1
    assert (parse_quantity("1Gi") - parse_quantity("512Mi")).canonical() == "512Mi"


def test_json_numbers_are_quantities() -> None:
    assert parse_quantity_json(1).canonical() == "1"
    assert parse_quantity_json(0.5).canonical() == "500m"
    assert parse_quantity_json(1e21).canonical() == "1e21"
    # Upstream's UnmarshalJSON trims spaces before parsing; ParseQuantity does not.
    assert parse_quantity_json(" 2Gi ").canonical() == "2Gi"
    with pytest.raises(QuantityError):
        parse_quantity(" 2Gi ")
    for bad in (True, None, [1], {"a": 1}, float("nan")):
        with pytest.raises(QuantityError):
            parse_quantity_json(bad)


_DECIMAL = ["n", "u", "m", "", "k", "M", "G", "T", "P", "E"]
_BINARY = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]

quantity_texts = st.builds(
    lambda sign, whole, frac, suffix: f"{sign}{whole}{frac}{suffix}",
    st.sampled_from(["", "+", "-"]),
    st.integers(0, 10**12).map(str),
    st.one_of(st.just(""), st.integers(0, 10**6).map(lambda n: f".{n}")),
    st.one_of(
        st.sampled_from(_DECIMAL + _BINARY),
        st.builds(lambda e, p: f"{e}{p}", st.sampled_from("eE"), st.integers(-30, 30)),
    ),
)


@given(quantity_texts)
def test_canonical_form_round_trips(text: str) -> None:
    q = parse_quantity(text)
    again = parse_quantity(q.canonical())
    assert again == q
    assert again.canonical() == q.canonical()


@given(quantity_texts)
def test_amount_is_exact_to_the_nano(text: str) -> None:
    q = parse_quantity(text)
    assert (q.amount * 10**9).denominator == 1
    assert Fraction(q.milli_value(), 1000) >= q.amount > Fraction(q.milli_value() - 1, 1000)


@given(quantity_texts, quantity_texts)
def test_ordering_agrees_with_the_value(a: str, b: str) -> None:
    qa, qb = parse_quantity(a), parse_quantity(b)
    assert (qa < qb) == (qa.amount < qb.amount)
    assert (qa == qb) == (qa.amount == qb.amount)
    assert (qa <= qb) == (not qb < qa)
    if qa <= qb:
        assert qa.milli_value() <= qb.milli_value()


@given(st.integers(-(10**15), 10**15), st.sampled_from(_DECIMAL))
def test_integers_times_a_decimal_suffix(n: int, suffix: str) -> None:
    q = parse_quantity(f"{n}{suffix}")
    power = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
    assert q.amount == n * Fraction(10) ** power[suffix]


def test_quantity_equality_ignores_the_format() -> None:
    assert Quantity(Fraction(1024), BINARY_SI) == Quantity(Fraction(1024), DECIMAL_SI)
    assert Quantity(Fraction(1024), BINARY_SI).canonical() == "1Ki"
    assert Quantity(Fraction(1024), DECIMAL_SI).canonical() == "1024"
    assert Quantity(Fraction(1, 3)).canonical() == "333333334n"
