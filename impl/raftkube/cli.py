"""The ``raftkube`` command.

Subcommands are plugins found through the ``raftkube.commands`` entry-point group: each names a
function that adds its parser to the subparsers and sets ``handler``. That keeps the production
package free of imports from the specification tooling and the simulator, while one command
fronts them all.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or, given the ``command`` about to run, of that one alone:
    loading a plugin imports its whole component (the fuzzer loads the simulated world and
    Hypothesis), and a member or kubelet process should not pay for every other's at start."""
    parser = argparse.ArgumentParser(
        prog="raftkube",
        description="A Kubernetes-style control plane on its own Raft key/value store.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    plugins = sorted(entry_points(group="raftkube.commands"), key=lambda e: e.name)
    chosen = [p for p in plugins if p.name == command]
    for plugin in chosen or plugins:
        plugin.load()(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
