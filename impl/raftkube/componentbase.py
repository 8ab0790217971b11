"""What the controller-manager commands share, as upstream's ``k8s.io/component-base`` is shared
by kube-controller-manager and cloud-controller-manager: pflag's value syntax for booleans and
durations, the leader-election flags with upstream's defaults, the leader-election identity, and
the run loop that stops on SIGTERM or SIGINT and turns a lost Lease or a bad configuration into
one line and an exit status.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from raftkube.controllers.leaderelection import LeaderElectionLost


def parse_bool(text: str) -> bool:
    """Go's ``strconv.ParseBool``, which pflag uses for ``--flag=value``."""
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}")


def parse_duration(text: str) -> float:
    """A Go duration of the simple kind these flags take: ``15s``, ``500ms``, ``1m``."""
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix):
            try:
                value = float(text[: -len(suffix)]) * scale
            except ValueError:
                break
            if value > 0:
                return value
            break
    raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 15s, 500ms)")


def add_leader_election_flags(parser: Any) -> None:
    """``--leader-elect`` and its Lease timings, with upstream's defaults (15s, 10s, 2s)."""
    parser.add_argument(
        "--leader-elect",
        type=parse_bool,
        nargs="?",
        const=True,
        default=True,
        help="run only while holding the Lease (default true)",
    )
    parser.add_argument("--leader-elect-lease-duration", type=parse_duration, default=15.0)
    parser.add_argument("--leader-elect-renew-deadline", type=parse_duration, default=10.0)
    parser.add_argument("--leader-elect-retry-period", type=parse_duration, default=2.0)


def add_service_account_credentials_flag(parser: Any) -> None:
    """``--use-service-account-credentials`` (default false), as both managers spell it."""
    parser.add_argument(
        "--use-service-account-credentials",
        type=parse_bool,
        nargs="?",
        const=True,
        default=False,
        help="each controller acts as its own kube-system service account (default false)",
    )


def identity() -> str:
    """Upstream's leader-election identity: the host name and a fresh UUID."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def _sole(exc: BaseException) -> BaseException:
    """The one exception inside nested single-member exception groups (Trio's nurseries wrap
    what their tasks raise)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def run_until_signal(
    command: str,
    work: Callable[[], Awaitable[None]],
    *,
    bad_configuration: tuple[type[BaseException], ...] = (ValueError,),
    stop_logger: logging.Logger | None = None,
) -> int:
    """Run ``work`` in a Trio run until it returns or SIGTERM or SIGINT arrives (status 0).

    A lost Lease is status 1 with its own message (for a supervisor to restart the process, as
    upstream exits); an error of a ``bad_configuration`` type is status 2 with
    ``raftkube COMMAND: error``; anything else propagates. ``stop_logger``, when given, says
    "stopping" on the signal.
    """
    logging.basicConfig(
        level=os.environ.get("RAFTKUBE_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )

    async def main() -> None:
        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                    async for _ in signals:
                        if stop_logger is not None:
                            stop_logger.info("stopping")
                        nursery.cancel_scope.cancel()
                        return

            nursery.start_soon(stop_on_signal)
            await work()
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    except BaseException as exc:  # one line for what an operator can act on
        error = _sole(exc)
        if isinstance(error, LeaderElectionLost):
            print(error, file=sys.stderr)
            return 1
        if isinstance(error, bad_configuration):
            print(f"raftkube {command}: {error}", file=sys.stderr)
            return 2
        raise
    return 0
