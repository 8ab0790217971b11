"""``python -m raftkube.cluster member|up|apiserver ...``: the cluster commands without entry
points (``raftkube up`` launches its children this way)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from raftkube.cluster import control_plane, member
from raftkube.cluster import up as up_command


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="raftkube")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    member.register(commands)
    up_command.register(commands)
    control_plane.register(commands)
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
