"""``raftkube proxy``'s flags."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from raftkube.proxy.cli import register, run_command


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="raftkube")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["proxy", *argv])


def test_defaults() -> None:
    args = parse("--kubeconfig", "p.kubeconfig")
    assert args.kubeconfig == Path("p.kubeconfig")
    assert args.bind_address == "127.0.0.1"
    assert args.sync_period == 30.0
    assert args.handler is run_command


def test_flags_are_checked() -> None:
    assert parse("--kubeconfig", "k", "--bind-address", "127.5.0.1").bind_address == "127.5.0.1"
    assert parse("--kubeconfig", "k", "--sync-period", "500ms").sync_period == 0.5
    for bad in (["--bind-address", "localhost"], ["--sync-period", "soon"], []):
        with pytest.raises(SystemExit):
            parse(*(["--kubeconfig", "k"] if bad else []), *bad)


def test_a_missing_kubeconfig_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_command(parse("--kubeconfig", str(tmp_path / "absent"))) == 2
    assert capsys.readouterr().err.startswith("raftkube proxy: ")
