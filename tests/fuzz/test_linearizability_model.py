"""The linearizability search is model-agnostic: a compare-and-set register, which is not the
KV store, is checked by the same search through the :class:`Model` interface.

The register implements only the three required methods, so these histories also exercise
the optional hooks' defaults (no revision cuts, no up-front refutations), which must still
accept every linearizable history and refute the rest.
"""

from __future__ import annotations

import attrs
import pytest

from raftkube_fuzz.checks.history import Failed, History, Ok, Unknown
from raftkube_fuzz.checks.linearizability import (
    KV_MODEL,
    Model,
    SearchMemo,
    check_linearizable,
    find_linearization,
)
from raftkube_fuzz.violation import Violation


@attrs.frozen
class Read:
    pass


@attrs.frozen
class Write:
    value: int


@attrs.frozen
class Cas:
    expect: int
    value: int


class Register(Model[int, Read | Write | Cas, int | bool | str]):
    """One integer cell: reads answer the value, writes "ok", a CAS whether it swapped."""

    name = "register"

    def init(self) -> int:
        return 0

    def apply(self, state: int, request: Read | Write | Cas) -> tuple[int, int | bool | str]:
        match request:
            case Read():
                return state, state
            case Write(value):
                return value, "ok"
            case Cas(expect, value):
                return (value, True) if state == expect else (state, False)
        raise AssertionError(request)


REGISTER = Register()


def history(*ops: tuple[int, object, float, float | None, object]) -> History:
    """Operations ``(client, request, call, ret, outcome)``, recorded in call order; a
    ``ret`` of None leaves the operation pending."""
    h = History()
    ids = [h.invoke(client, request, call) for client, request, call, _, _ in ops]  # type: ignore[arg-type]
    ends = sorted(
        ((ret, i) for i, (_, _, _, ret, _) in enumerate(ops) if ret is not None),
    )
    for ret, i in ends:
        h.complete(ids[i], ops[i][4], ret)  # type: ignore[arg-type]
    return h


def test_sequential_register_history_is_linearizable() -> None:
    h = history(
        (0, Write(1), 0, 1, Ok("ok")),
        (0, Read(), 2, 3, Ok(1)),
        (0, Cas(1, 2), 4, 5, Ok(True)),
        (0, Cas(1, 3), 6, 7, Ok(False)),
        (0, Read(), 8, 9, Ok(2)),
    )
    witness = find_linearization(h, model=REGISTER)
    assert witness.final_state == 2
    assert [op.op_id for op in witness.operations] == [0, 1, 2, 3, 4]


def test_concurrent_operations_may_take_effect_in_either_order() -> None:
    # The writes overlap; a read after both returned sees the first one called: linearizable
    # only with the writes in the opposite of their call order, which the search must find.
    h = history(
        (0, Write(1), 0, 10, Ok("ok")),
        (1, Write(2), 1, 10, Ok("ok")),
        (2, Read(), 12, 13, Ok(1)),
    )
    witness = find_linearization(h, model=REGISTER)
    assert [op.op_id for op in witness.operations] == [1, 0, 2]


def test_stale_read_is_refuted() -> None:
    h = history(
        (0, Write(1), 0, 1, Ok("ok")),
        (1, Read(), 2, 3, Ok(0)),
    )
    with pytest.raises(Violation) as err:
        check_linearizable(h, model=REGISTER)
    assert err.value.prop == "Linearizability"
    assert "stuck after 1 of 2 operations" in err.value.message


def test_two_successful_cas_from_the_same_value_are_refuted() -> None:
    # Both swaps claim to have seen 0: at most one of them can have.
    h = history(
        (0, Cas(0, 1), 0, 5, Ok(True)),
        (1, Cas(0, 2), 1, 5, Ok(True)),
    )
    with pytest.raises(Violation):
        check_linearizable(h, model=REGISTER)


def test_unknown_write_may_or_may_not_have_happened() -> None:
    took = history(
        (0, Write(7), 0, None, Unknown("timed out")),
        (1, Read(), 5, 6, Ok(7)),
    )
    find_linearization(took, model=REGISTER)
    lost = history(
        (0, Write(7), 0, None, Unknown("timed out")),
        (1, Read(), 5, 6, Ok(0)),
    )
    find_linearization(lost, model=REGISTER)
    failed = history(
        (0, Write(7), 0, 1, Failed("refused")),
        (1, Read(), 5, 6, Ok(7)),
    )
    with pytest.raises(Violation):
        check_linearizable(failed, model=REGISTER)


def test_a_result_of_none_is_refused() -> None:
    # None marks an Unknown outcome inside the search: a model answering it would turn an
    # acknowledged operation into an optional one, so it is an error, not a silent pass.
    with pytest.raises(ValueError, match="never None"):
        check_linearizable(history((0, Write(1), 0, 1, Ok(None))), model=REGISTER)


def test_a_memo_belongs_to_one_model() -> None:
    h = history((0, Read(), 0, 1, Ok(0)))
    memo = SearchMemo(model=REGISTER)
    find_linearization(h, memo=memo)
    find_linearization(h, memo=memo, model=REGISTER)
    with pytest.raises(ValueError, match="register"):
        find_linearization(h, memo=memo, model=KV_MODEL)
