"""``raftkube fuzz nemesis``: its pieces (the seeded schedule, the relay's cut and heal, the
lost-write count) and two short runs on real member processes, run side by side: the real
members pass, and members with a planted stale-read bug are caught, with the history kept."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from raftkube_fuzz.checks.history import History, Ok, Unknown
from raftkube_fuzz.nemesis.cli import fault_kinds, mutant_name
from raftkube_fuzz.nemesis.relay import Relay
from raftkube_fuzz.nemesis.schedule import KINDS, plan
from raftkube_fuzz.nemesis.verdict import lost_writes
from raftkube_spec.kv.requests import DeleteRangeRequest, PutRequest, RangeRequest
from raftkube_spec.kv.responses import DeleteRangeResponse, PutResponse, RangeResponse
from raftkube_spec.kv.types import KeyValue, ResponseHeader

PASSING_PORT = 27600
MUTANT_PORT = 27800
RELAY_PORTS = (27960, 27961)


# --- the schedule ---------------------------------------------------------------------------


def test_the_schedule_is_a_function_of_the_seed() -> None:
    first = plan(7, 300.0, 3)
    assert first == plan(7, 300.0, 3)
    assert first != plan(8, 300.0, 3)
    assert {f.kind for f in first} == set(KINDS)
    assert all(0 < f.at < 300.0 and f.hold > 0 for f in first)
    assert [f.at for f in first] == sorted(f.at for f in first)


def test_the_schedule_takes_only_the_kinds_asked_for() -> None:
    assert {f.kind for f in plan(7, 120.0, 3, ("pause",))} == {"pause"}
    assert plan(7, 120.0, 3, ()) == ()
    with pytest.raises(ValueError, match="unknown fault kinds"):
        plan(7, 120.0, 3, ("pause", "flood"))


# --- the relay ------------------------------------------------------------------------------


async def _receive(stream: trio.SocketStream, seconds: float) -> bytes:
    with trio.move_on_after(seconds):
        return await stream.receive_some(100)
    return b""


@pytest.mark.trio
async def test_a_cut_relay_stalls_both_ways_and_delivers_everything_after_the_heal() -> None:
    target_port, relay_port = RELAY_PORTS
    accepted: trio.MemorySendChannel[trio.SocketStream]
    accepted, incoming = trio.open_memory_channel[trio.SocketStream](2)

    async def accept(stream: trio.SocketStream) -> None:
        await accepted.send(stream)
        await trio.sleep_forever()

    relay = Relay(0, 1, relay_port, target_port)
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_tcp, accept, target_port)
        await nursery.start(relay.run)
        dialer = await trio.open_tcp_stream("127.0.0.1", relay_port)
        await dialer.send_all(b"a")
        server = await incoming.receive()
        assert await _receive(server, 5) == b"a"

        relay.cut()
        await dialer.send_all(b"b")
        await server.send_all(b"c")
        assert await _receive(server, 0.3) == b""
        assert await _receive(dialer, 0.3) == b""
        late = await trio.open_tcp_stream("127.0.0.1", relay_port)  # made during the cut
        await late.send_all(b"d")
        with trio.move_on_after(0.3):
            await incoming.receive()
            pytest.fail("a connection made during the cut reached the member")

        relay.heal()
        assert await _receive(server, 5) == b"b"
        assert await _receive(dialer, 5) == b"c"
        assert await _receive(await incoming.receive(), 5) == b"d"
        assert relay.connections == 2
        nursery.cancel_scope.cancel()


async def _closed(stream: trio.SocketStream) -> bool:
    """Whether ``stream`` ends (end of file or a reset) within 5 s; a timeout fails."""
    with trio.fail_after(5):
        try:
            return await stream.receive_some(100) == b""
        except trio.BrokenResourceError:
            return True


@pytest.mark.trio
async def test_a_reset_closes_every_connection_at_both_ends_and_new_ones_still_pass() -> None:
    target_port, relay_port = RELAY_PORTS
    accepted: trio.MemorySendChannel[trio.SocketStream]
    accepted, incoming = trio.open_memory_channel[trio.SocketStream](2)

    async def accept(stream: trio.SocketStream) -> None:
        await accepted.send(stream)
        await trio.sleep_forever()

    relay = Relay(-1, 0, relay_port, target_port)
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_tcp, accept, target_port)
        await nursery.start(relay.run)
        dialer = await trio.open_tcp_stream("127.0.0.1", relay_port)
        await dialer.send_all(b"a")
        server = await incoming.receive()
        assert await _receive(server, 5) == b"a"

        assert relay.reset() == 1
        assert await _closed(dialer) and await _closed(server)
        again = await trio.open_tcp_stream("127.0.0.1", relay_port)
        await again.send_all(b"b")
        assert await _receive(await incoming.receive(), 5) == b"b"
        nursery.cancel_scope.cancel()


# --- lost writes ------------------------------------------------------------------------------


def _put(history: History, key: bytes, value: bytes, revision: int) -> None:
    op = history.invoke(0, PutRequest(key, value), 0.0)
    history.complete(op, Ok(PutResponse(ResponseHeader(revision))), 1.0)


def _final(history: History, *records: KeyValue) -> None:
    op = history.invoke(0, RangeRequest(b"k", b"l"), 2.0)
    history.complete(op, Ok(RangeResponse(ResponseHeader(9), records, count=len(records))), 3.0)


def _kv(key: bytes, value: bytes, revision: int) -> KeyValue:
    return KeyValue(key, create_revision=revision, mod_revision=revision, version=1, value=value)


def test_an_acknowledged_put_the_final_read_does_not_show_is_lost() -> None:
    history = History()
    _put(history, b"k0", b"new", 3)
    _put(history, b"k1", b"gone", 4)
    _put(history, b"k2", b"kept", 5)
    _final(history, _kv(b"k0", b"old", 2), _kv(b"k2", b"kept", 5))
    acknowledged, lost = lost_writes(history, history.operations()[-1])
    assert acknowledged == 3
    assert len(lost) == 2
    assert "k0" in lost[0] and "older record" in lost[0]
    assert "k1" in lost[1] and "gone" in lost[1]


def test_a_put_overwritten_or_perhaps_deleted_later_is_not_lost() -> None:
    history = History()
    _put(history, b"k0", b"first", 2)
    _put(history, b"k0", b"second", 3)
    _put(history, b"k1", b"deleted", 4)
    op = history.invoke(1, DeleteRangeRequest(b"k1"), 0.5)
    history.complete(op, Unknown("client timeout"), 5.0)
    _put(history, b"k2", b"deleted", 5)
    op = history.invoke(1, DeleteRangeRequest(b"k2"), 1.5)
    history.complete(op, Ok(DeleteRangeResponse(ResponseHeader(6), deleted=1)), 1.6)
    _final(history, _kv(b"k0", b"second", 3))
    assert lost_writes(history, history.operations()[-1]) == (4, [])


# --- real processes ---------------------------------------------------------------------------


def _nemesis(data_dir: Path, port: int, *flags: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "raftkube.cli", "fuzz", "nemesis", "--seed", "5"]
    argv += ["--port", str(port), "--data-dir", str(data_dir), *flags]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[Path, subprocess.Popen[str]]]]:
    """Both runs at once (each mostly waits on its members), so together they take about as
    long as one."""
    base = tmp_path_factory.mktemp("nemesis")
    started = {
        "real": (base / "real", _nemesis(base / "real", PASSING_PORT, "--time", "6s")),
        "mutant": (
            base / "mutant",
            _nemesis(
                base / "mutant",
                MUTANT_PORT,
                "--time",
                "4s",
                "--faults",
                "pause",
                "--mutant",
                "local-read-no-readindex",
            ),
        ),
    }
    yield started
    for _, process in started.values():
        if process.poll() is None:
            # SIGTERM lets the nemesis resume and stop its members; SIGKILL would leave a
            # SIGSTOPped one stopped.
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _finish(run: tuple[Path, subprocess.Popen[str]]) -> tuple[int, str]:
    _, process = run
    output, _ = process.communicate(timeout=120)
    return process.returncode, output


def test_a_short_run_of_the_real_members_is_linearizable_and_loses_nothing(
    runs: dict[str, tuple[Path, subprocess.Popen[str]]],
) -> None:
    code, output = _finish(runs["real"])
    assert code == 0, output
    assert "linearizable: yes" in output
    assert "lost writes: 0 of" in output
    assert "faults injected: 0" not in output
    assert "ok 0," not in output


def test_members_with_a_planted_stale_read_bug_are_caught(
    runs: dict[str, tuple[Path, subprocess.Popen[str]]],
) -> None:
    data_dir, _ = runs["mutant"]
    code, output = _finish(runs["mutant"])
    assert code == 1, output
    assert "linearizable: NO" in output
    saved = json.loads((data_dir / "history.json").read_text())
    assert saved["violation"]["property"] == "Linearizability"
    assert len(History.from_json(saved["history"])) > 0


def test_only_store_mutants_and_known_fault_kinds_are_accepted() -> None:
    """The nemesis runs member processes only: a control-plane mutant is refused, naming the
    store's, as is an unknown fault kind."""
    assert mutant_name("unsynced-vote") == "unsynced-vote"
    with pytest.raises(argparse.ArgumentTypeError, match="no store mutant 'rs-no-expectations'"):
        mutant_name("rs-no-expectations")
    assert fault_kinds("kill,pause") == ("kill", "pause") and fault_kinds("none") == ()
    with pytest.raises(argparse.ArgumentTypeError, match="unknown fault kind"):
        fault_kinds("bogus")
