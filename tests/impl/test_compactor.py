"""etcd's auto-compaction flags and schedules (:mod:`raftkube.server.compactor`), step by step,
and the loop that drives them on a virtual clock; the flags' way from ``raftkube up`` to each
member; and ``rkctl defrag``, which has nothing to do."""

from __future__ import annotations

import argparse
import functools
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from raftkube.cluster import member as member_cli
from raftkube.cluster import up
from raftkube.rkctl import cli as rkctl
from raftkube.rkctl.commands import DEFRAG_NOT_NEEDED
from raftkube.server.compactor import (
    PERIODIC,
    REVISION,
    REVISION_INTERVAL,
    AutoCompaction,
    CompactionConfigError,
    PeriodicSchedule,
    parse_go_duration,
    run_auto_compaction,
)
from tests.helpers.processes import free_port_block, free_ports


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("5m", 300.0), ("1h30m", 5400.0), ("500ms", 0.5), ("1.5s", 1.5), ("2h", 7200.0)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "m", "5x", "-1h", "1h 2m", "h1"])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_go_duration(text)


def test_flags_read_as_etcd_reads_them() -> None:
    assert AutoCompaction.parse("periodic", "72") == AutoCompaction(PERIODIC, 72 * 3600.0)
    assert AutoCompaction.parse("periodic", "30m") == AutoCompaction(PERIODIC, 1800.0)
    assert AutoCompaction.parse("revision", "1000") == AutoCompaction(REVISION, 1000.0)
    assert not AutoCompaction.parse("periodic", "0").enabled
    assert AutoCompaction.parse("periodic", "10m").check_interval() == 60.0
    assert AutoCompaction.parse("periodic", "72h").check_interval() == 360.0
    assert AutoCompaction.parse("revision", "5").check_interval() == REVISION_INTERVAL


@pytest.mark.parametrize(
    ("mode", "retention", "named"),
    [
        ("hourly", "1", "--auto-compaction-mode"),
        ("periodic", "abc", "--auto-compaction-retention"),
        ("revision", "5m", "--auto-compaction-retention"),
        ("revision", "-3", "--auto-compaction-retention"),
    ],
)
def test_bad_flags_are_named(mode: str, retention: str, named: str) -> None:
    with pytest.raises(CompactionConfigError, match=named):
        AutoCompaction.parse(mode, retention)


def test_periodic_compacts_at_the_revision_one_period_ago() -> None:
    """Period 10 s, so a sample each second (taken before each wait, as the loop does) and 11
    kept; the first compaction once 10 s have passed, then one every 10 s, each at the oldest
    sample kept; nothing while the revision there is the one last compacted at."""

    def rev(t: int) -> int:
        return 100 + 5 * t if t <= 25 else 225

    schedule = PeriodicSchedule(10.0, started=0.0)
    compacted = []
    for second in range(1, 61):
        schedule.sample(rev(second - 1))
        at = schedule.due(float(second), rev(second))
        if at is not None:
            compacted.append((second, at))
            schedule.done(at, float(second))
    assert compacted == [(10, rev(0)), (20, rev(9)), (30, rev(19)), (40, rev(29))]


async def _drive(config: AutoCompaction, *, seconds: float, leading: bool = True) -> list[int]:
    """Run the loop for ``seconds`` of virtual time over a store that gains a revision every
    0.1 s, applying each compaction at once; return the revisions compacted at."""
    compacted: list[int] = []
    start = trio.current_time()

    def revision() -> int:
        return 1 + int((trio.current_time() - start) * 10)

    async def compact(rev: int) -> bool:
        compacted.append(rev)
        return True

    async def sleep_until(deadline: float) -> None:
        await trio.sleep_until(deadline)

    with trio.move_on_after(seconds):
        await run_auto_compaction(
            config,
            now=trio.current_time,
            sleep_until=sleep_until,
            revision=revision,
            leading=lambda: leading,
            compact=compact,
        )
    return compacted


def test_revision_mode_every_five_minutes_keeps_the_last_n() -> None:
    got = trio.run(
        functools.partial(_drive, AutoCompaction(REVISION, 1000.0), seconds=901.0),
        clock=trio.testing.MockClock(autojump_threshold=0),
    )
    # At 300 s the store is at revision 3001: compact at 2001, then 5001, then 8001.
    assert got == [2001, 5001, 8001]


def test_periodic_mode_on_a_virtual_clock_and_paused_while_following() -> None:
    def run(config: AutoCompaction, leading: bool = True) -> list[int]:
        return trio.run(
            functools.partial(_drive, config, seconds=185.0, leading=leading),
            clock=trio.testing.MockClock(autojump_threshold=0),
        )

    # Samples every 6 s from 0; compactions at 60 s (at the sample of 0 s), 120 s and 180 s
    # (at the oldest of the 11 samples kept: 54 s and 114 s).
    assert run(AutoCompaction(PERIODIC, 60.0)) == [1, 541, 1141]
    assert run(AutoCompaction(PERIODIC, 60.0), leading=False) == []
    assert run(AutoCompaction(PERIODIC, 0.0)) == []


def test_rkctl_defrag_says_there_is_nothing_to_defragment() -> None:
    """No endpoint is contacted (none listens here) and nothing is claimed to be done."""
    out, err = io.StringIO(), io.StringIO()
    code = trio.run(
        functools.partial(
            rkctl.run, ["defrag", "--endpoints", "127.0.0.1:1"], stdout=out, stderr=err
        )
    )
    assert code == 0
    assert out.getvalue() == DEFRAG_NOT_NEEDED + "\n"
    assert "nothing to defragment" in out.getvalue() and err.getvalue() == ""


def _parse(register: Callable[[Any], None], argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_raftkube_up_passes_the_flags_to_every_member(tmp_path: Path) -> None:
    base = free_port_block(6)
    (api,) = free_ports(1)
    flags = ["--auto-compaction-mode", "revision", "--auto-compaction-retention", "1000"]
    common = ["--data-dir", str(tmp_path / "c"), "--port-base", str(base)]
    plan = up.make_plan(_parse(up.register, ["up", *common, "--apiserver-port", str(api), *flags]))
    argv = plan.member_argv(plan.members[0])
    member_args = _parse(member_cli.register, argv[argv.index("member") :])
    config = member_cli._configure(member_args)["config"]
    assert config.auto_compaction == AutoCompaction(REVISION, 1000.0)
    assert config.snapshot_image_ratio == member_cli.SNAPSHOT_IMAGE_RATIO

    bad = ["up", "--data-dir", str(tmp_path / "bad"), "--auto-compaction-retention", "1y"]
    with pytest.raises(up.UpError, match="--auto-compaction-retention '1y'"):
        up.make_plan(_parse(up.register, bad))
    assert not (tmp_path / "bad").exists()
