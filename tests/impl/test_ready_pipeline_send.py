"""The ready pipeline's sending: a snapshot over the peer frame limit is logged and skipped (the
member goes on; the core retries after its snapshot timeout), any other message over it is a
bug that still surfaces; every snapshot sent is logged; a leader's Ready leaves before its sync
only when the core says it may."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from raftkube.net.framing import FrameTooLargeError
from raftkube.raft import Ready
from raftkube.server.ready_pipeline import ReadyPipeline
from raftkube_spec.raft.messages import AppendEntriesRequest, InstallSnapshotRequest, Message
from raftkube_spec.raft.types import Entry

LIMIT = 64


class _Transport:
    """Refuses any message whose entries hold more than ``LIMIT`` bytes, as the peer transport
    refuses a frame over its limit."""

    def __init__(self) -> None:
        self.sent: list[Message] = []

    def send(self, peer_id: int, message: Any) -> bool:
        size = sum(len(e.value) for e in message.entries if isinstance(e.value, bytes))
        if size > LIMIT:
            raise FrameTooLargeError(size, LIMIT)
        self.sent.append(message)
        return True


def _pipeline() -> tuple[ReadyPipeline, _Transport]:
    transport = _Transport()
    member: Any = SimpleNamespace(id=0, transport=transport)
    return ReadyPipeline(member, run_sync=None), transport


def _snapshot(size: int, dest: int = 1) -> InstallSnapshotRequest:
    return InstallSnapshotRequest(1, 0, dest, 9, 1, (Entry(1, b"x" * size),))


def test_a_snapshot_over_the_frame_limit_is_logged_and_the_rest_is_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipeline, transport = _pipeline()
    small = _snapshot(8, dest=2)
    with caplog.at_level(logging.INFO, logger="raftkube.server.ready_pipeline"):
        pipeline._send([_snapshot(LIMIT + 1), small])
    assert transport.sent == [small]
    text = caplog.text
    assert "snapshot at index 9 not sent to member 1" in text
    assert "exceeds the maximum frame size" in text
    assert text.count("sending a snapshot at index 9") == 2


def test_any_other_message_over_the_frame_limit_still_raises() -> None:
    pipeline, _ = _pipeline()
    big = AppendEntriesRequest(1, 0, 1, 0, 0, (Entry(1, b"x" * (LIMIT + 1)),), 0)
    with pytest.raises(FrameTooLargeError):
        pipeline._send([big])


class _Storage:
    """Records, at each sync, how many messages the transport had been handed."""

    def __init__(self, transport: _Transport) -> None:
        self.transport = transport
        self.sent_at_sync: list[int] = []

    def append_entries(self, entries: list[Any]) -> None:
        pass

    def set_hard_state(self, hs: Any) -> None:
        pass

    def sync(self) -> None:
        self.sent_at_sync.append(len(self.transport.sent))


@pytest.mark.parametrize("first", [True, False])
def test_a_leader_ready_is_sent_before_its_sync_only_when_the_core_allows_it(first: bool) -> None:
    transport = _Transport()
    storage = _Storage(transport)
    advanced: list[Ready] = []
    member: Any = SimpleNamespace(
        id=0,
        transport=transport,
        storage=storage,
        applied=0,
        node=SimpleNamespace(advance=advanced.append, last_index=1),
        reads=SimpleNamespace(confirm=lambda states: None, release=lambda: None),
    )
    pipeline = ReadyPipeline(member, run_sync=None)
    append = AppendEntriesRequest(1, 0, 1, 0, 0, (Entry(1, b"a"),), 0)
    rd = Ready(
        first_index=1,
        entries=(Entry(1, b"a"),),
        messages=(append,),
        must_sync=True,
        send_before_persist=first,
    )
    trio.run(pipeline._handle, rd)
    assert storage.sent_at_sync == [1 if first else 0]
    assert transport.sent == [append] and advanced == [rd]
