"""The client's prefix helper agrees with the specification's."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from raftkube.client.keys import prefix_end
from raftkube_spec.kv.keyrange import prefix_range_end


@given(st.binary(max_size=6) | st.binary(max_size=3).map(lambda b: b + b"\xff" * 3))
def test_prefix_end_matches_the_spec(prefix: bytes) -> None:
    assert prefix_end(prefix) == prefix_range_end(prefix)


def test_examples() -> None:
    assert prefix_end(b"foo") == b"fop"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") == b"\x00"
