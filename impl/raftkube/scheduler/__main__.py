"""``python -m raftkube.scheduler --kubeconfig PATH ...``: ``raftkube scheduler`` without the
entry point (how ``raftkube bench scheduler`` starts it)."""

from __future__ import annotations

import argparse
import sys

from raftkube.scheduler.cli import register


def main() -> int:
    parser = argparse.ArgumentParser(prog="raftkube")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["scheduler", *sys.argv[1:]])
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
