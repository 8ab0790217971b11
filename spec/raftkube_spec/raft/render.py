"""Text renderings of Raft states, messages and events for counterexamples and timelines.

Formatting is not I/O: these return strings, and the shells decide where they go.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from . import events as ev
from .messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    InstallSnapshotRequest,
    Message,
    RequestVoteRequest,
    RequestVoteResponse,
)
from .state import RaftState, ServerState
from .types import Entry, Role

Show = Callable[[object], str]
"""How an entry's value is written: ``str`` for the model's own values; a shell that logs
encoded client requests passes a decoder (the fuzz timeline does)."""


def entry(e: Entry, show: Show = str) -> str:
    return f"{e.term}:{show(e.value)}"


def log(entries: tuple[Entry, ...], show: Show = str) -> str:
    return "[" + " ".join(entry(e, show) for e in entries) + "]"


def message(m: Message, show: Show = str) -> str:
    head = f"{type(m).__name__}(t{m.term} {m.source}->{m.dest}"
    if isinstance(m, RequestVoteRequest):
        body = f" last={m.last_log_index}@t{m.last_log_term}" + (" pre" if m.pre_vote else "")
    elif isinstance(m, RequestVoteResponse):
        body = (" granted" if m.granted else " denied") + (" pre" if m.pre_vote else "")
    elif isinstance(m, AppendEntriesRequest):
        body = (
            f" prev={m.prev_log_index}@t{m.prev_log_term} {log(m.entries, show)}"
            f" commit={m.commit_index}" + (f" ctx={m.read_ctx}" if m.read_ctx else "")
        )
    elif isinstance(m, AppendEntriesResponse):
        body = (
            (" ok" if m.success else " fail")
            + f" match={m.match_index}"
            + (f" ctx={m.read_ctx}" if m.read_ctx else "")
        )
    elif isinstance(m, InstallSnapshotRequest):
        body = f" last={m.last_index}@t{m.last_term} {log(m.entries, show)}"
    else:
        body = ""
    return head + body + ")"


def event(e: ev.Event, show: Show = str) -> str:
    fields = []
    for f in attrs.fields(type(e)):
        value = getattr(e, f.name)
        if f.name == "message":
            fields.append(message(value, show))
        else:
            fields.append(f"{f.name}={show(value) if f.name == 'value' else value}")
    return f"{type(e).__name__}(" + ", ".join(fields) + ")"


def server(i: int, v: ServerState) -> str:
    parts = [
        f"s{i}: {v.role.value:<12} term={v.term}",
        f"vote={'-' if v.voted_for is None else v.voted_for}",
        f"commit={v.commit_index}",
    ]
    if v.snapshot_index:
        parts.append(f"snap={v.snapshot_index}")
    parts.append(f"log={log(v.log)}")
    if v.role in (Role.CANDIDATE, Role.PRE_CANDIDATE):
        parts.append(f"votes={sorted(v.votes_granted)}")
    if v.role is Role.LEADER:
        parts.append(f"next={list(v.next_index)} match={list(v.match_index)}")
        if v.pending_reads:
            reads = ", ".join(
                f"#{r.read_id}@{r.index} acks={sorted(r.acks)}" for r in v.pending_reads
            )
            parts.append(f"reads=[{reads}]")
    return " ".join(parts)


def state(s: RaftState, indent: str = "    ") -> str:
    lines = [indent + server(i, v) for i, v in enumerate(s.servers)]
    if s.network:
        lines.append(indent + "network:")
        for m, count in s.network:
            lines.append(indent + "  " + message(m) + (f" x{count}" if count > 1 else ""))
    else:
        lines.append(indent + "network: empty")
    if s.committed:
        lines.append(indent + "committed: " + log(tuple(c.entry for c in s.committed)))
    return "\n".join(lines)
