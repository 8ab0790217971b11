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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raftkube",
        description="A Kubernetes-style control plane on its own Raft key/value store.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for plugin in sorted(entry_points(group="raftkube.commands"), key=lambda e: e.name):
        plugin.load()(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
