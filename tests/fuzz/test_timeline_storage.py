"""The timeline's compact storage (columns, folded and shared events) reads back exactly what
was added: the same lines, the same message flows, the same digest."""

from __future__ import annotations

import pytest

from raftkube_fuzz.timeline import (
    CHECK,
    CLIENT,
    EVENT,
    FAULT,
    SEND,
    Lazy,
    Timeline,
    describe,
    describe_message,
)
from raftkube_spec.raft import events as ev
from raftkube_spec.raft.messages import AppendEntriesRequest, AppendEntriesResponse


def _request(commit: int) -> AppendEntriesRequest:
    return AppendEntriesRequest(
        term=3, source=0, dest=2, prev_log_index=7, prev_log_term=3, entries=(), commit_index=commit
    )


def test_every_entry_reads_back_as_it_was_added() -> None:
    request = _request(7)
    response = AppendEntriesResponse(term=3, source=2, dest=0, success=True, match_index=7)
    added: list[tuple[float, int | None, str, object, dict[str, object] | None]] = [
        (0.25, 0, EVENT, ev.AppendEntries(server=0, peer=2, count=0), None),
        (0.25, 0, SEND, request, None),
        (0.5, 2, EVENT, ev.UpdateTerm(request), None),
        (0.5, 2, EVENT, ev.HandleAppendEntriesRequest(request), None),
        (0.5, 2, SEND, response, None),
        (0.75, None, FAULT, Lazy("drop ", describe_message, response), {"fault": "dropped"}),
        (1.0, 0, EVENT, ev.AppendEntries(server=0, peer=2, count=0), None),
        (1.0, 0, EVENT, ev.CheckQuorum(server=0), None),
        (1.5, None, CLIENT, "user: create rs-a", {"host": "user"}),
        (1.75, None, FAULT, Lazy("duplicate ", describe_message, request), {"fault": "duplicated"}),
        (1.75, None, CLIENT, "user: delete rs-a", {"host": "user"}),
        (2.0, None, CHECK, "reconciled", None),
        (2.0, 4, "a kind no module names", "text", None),
    ]
    timeline = Timeline()
    timeline.begin_step(0.0, "step 0: wait")
    for entry in added:
        timeline.add(*entry)
    lines = list(timeline.lines())
    assert len(timeline) == len(lines) == len(added) + 1
    assert [(line.time, line.member, line.kind, line.text) for line in lines[1:]] == [
        (time, member, kind, describe(payload)) for time, member, kind, payload, _ in added
    ]
    assert lines[0].text == "step 0: wait" and timeline.step_starts == [0]
    flows = [(line.info or {}).get("flow") for line in lines]
    assert flows == [None, None, "msg-2", "msg-2", None, "msg-5", "msg-5"] + [None] * 3 + [
        "msg-2",
        None,
        None,
        None,
    ]
    assert lines[6].info == {"fault": "dropped", "flow": "msg-5"}
    assert lines[10].info == {"fault": "duplicated", "flow": "msg-2"}
    assert lines[9].info == lines[11].info == {"host": "user"}
    raw = list(timeline._raw())
    assert [entry[3] for entry in raw[1:]] == [entry[3] for entry in added]
    assert [entry[4] for entry in raw[1:]] == [entry[4] for entry in added]
    assert raw[9][4] is raw[11][4], "equal one-key infos are stored once"
    assert raw[6][3] == Lazy("drop ", describe_message, response)
    assert raw[1][3] is raw[7][3], "equal AppendEntries events are stored once"
    handled = raw[4][3]
    assert isinstance(handled, ev.HandleAppendEntriesRequest)
    assert handled.message is request, "a handled message's event is rebuilt around it"
    assert list(timeline.lines(3)) == lines[:3]


@pytest.mark.parametrize("member", [-1, 2**15])
def test_a_member_outside_the_stored_range_is_refused(member: int) -> None:
    timeline = Timeline()
    with pytest.raises(ValueError, match=f"member must be 0 to 32767, not {member}"):
        timeline.add(0.0, member, CHECK, "text")
    assert len(timeline) == 0
