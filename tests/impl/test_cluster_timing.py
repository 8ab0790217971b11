"""``--heartbeat-interval`` and ``--election-timeout``: etcd's rules and texts, and ``raftkube
up`` passing them to every member."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from raftkube.cluster import member as member_cli
from raftkube.cluster import up
from raftkube.cluster.timing import TimingConfigError, raft_timing
from raftkube.server.member import MemberConfig
from tests.helpers.processes import free_port_block, free_ports


def test_the_interval_is_the_tick_and_the_timeout_whole_ticks() -> None:
    assert raft_timing(100, 1000) == (0.1, 10)  # etcd's defaults
    assert raft_timing(20, 200) == (0.02, 10)
    assert raft_timing(100, 1050) == (0.1, 10)  # etcd's ElectionTicks rounds down


@pytest.mark.parametrize(
    ("heartbeat", "election", "message"),
    [
        (0, 1000, "--heartbeat-interval must be >0 (set to 0ms)"),
        (100, -1, "--election-timeout must be >0 (set to -1ms)"),
        (
            250,
            1000,
            "--election-timeout[1000ms] should be at least as 5 times as "
            "--heartbeat-interval[250ms]",
        ),
        (
            100,
            60_000,
            "--election-timeout[60000ms] is too long, and should be set less than 50000ms",
        ),
    ],
)
def test_bad_timings_get_etcds_messages(heartbeat: int, election: int, message: str) -> None:
    with pytest.raises(TimingConfigError) as caught:
        raft_timing(heartbeat, election)
    assert str(caught.value) == message


def _parse(register: Callable[[Any], None], argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def _member_config(argv: list[str]) -> MemberConfig:
    args = _parse(member_cli.register, argv[argv.index("member") :])
    config = member_cli._configure(args)["config"]
    assert isinstance(config, MemberConfig)
    return config


def test_raftkube_up_passes_the_timing_to_every_member(tmp_path: Path) -> None:
    base = free_port_block(6)
    (api,) = free_ports(1)
    common = ["up", "--data-dir", str(tmp_path / "c"), "--port-base", str(base)]
    common += ["--apiserver-port", str(api)]
    plan = up.make_plan(_parse(up.register, common))
    config = _member_config(plan.member_argv(plan.members[0]))
    assert (config.tick_interval, config.election_ticks) == (0.1, 10)  # etcd's defaults

    timing = ["--heartbeat-interval", "20", "--election-timeout", "300"]
    plan = up.make_plan(_parse(up.register, [*common, *timing]))
    for m in plan.members:
        config = _member_config(plan.member_argv(m))
        assert (config.tick_interval, config.election_ticks) == (0.02, 15)

    bad = ["up", "--data-dir", str(tmp_path / "bad"), "--election-timeout", "50"]
    with pytest.raises(up.UpError, match=r"--election-timeout\[50ms\] should be at least"):
        up.make_plan(_parse(up.register, bad))
    assert not (tmp_path / "bad").exists()


def test_a_member_refuses_bad_timing_before_touching_the_disk(tmp_path: Path) -> None:
    argv = ["member", "--id", "0", "--peers", "0=127.0.0.1:1", "--client-port", "2"]
    argv += ["--data-dir", str(tmp_path / "m"), "--heartbeat-interval", "0"]
    with pytest.raises(member_cli._Setup, match="--heartbeat-interval must be >0"):
        member_cli._configure(_parse(member_cli.register, argv))
