"""The ``raftkube`` command loads only the plugin of the command it runs, so a member or a
kubelet process does not import the fuzzer (the simulated world, Hypothesis) or every other
component at start; help and an unknown command still see them all."""

from __future__ import annotations

import subprocess
import sys

import pytest

from raftkube.cli import build_parser


def _choices(command: str | None) -> list[str]:
    parser = build_parser(command)
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sub.choices is not None
    return sorted(sub.choices)


def test_a_named_command_loads_its_plugin_only() -> None:
    assert _choices("member") == ["member"]
    assert "fuzz" in _choices(None) and "member" in _choices(None)
    # a command a plugin adds beside its own name (the cloud plugin's cloud-provider) is found
    # by loading them all
    assert "cloud-provider" in _choices("cloud-provider")


def test_a_member_process_does_not_import_the_fuzzer() -> None:
    code = (
        "import sys\n"
        "from raftkube.cli import main\n"
        "try:\n"
        "    main(['member', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('raftkube_fuzz', 'hypothesis')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_an_unknown_command_is_refused_naming_the_choices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from raftkube.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["nosuch"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nosuch'" in err and "'member'" in err and "'fuzz'" in err
