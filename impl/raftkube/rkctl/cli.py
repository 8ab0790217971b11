"""Argument parsing and the entry points: :func:`main` (console script) and :func:`run`.

Global flags (``--endpoints``, ``-w`` ...) are accepted before or after the command, as with
etcdctl's persistent cobra flags: they are declared on every parser with a suppressed default,
so a later parser never overwrites an earlier value with its default. Every failure, usage
errors included, is one ``Error: ...`` line on stderr.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn, TextIO

import trio

from raftkube.rkctl import cluster_commands, commands, member_commands
from raftkube.rkctl.connection import (
    Settings,
    build_ssl_context,
    default_endpoints,
    parse_duration,
    split_endpoints,
)
from raftkube.rkctl.errors import EXIT_INTERRUPTED, UsageError, describe, one_line
from raftkube.rkctl.output import FORMATS, Printer

Command = Callable[[commands.Context, argparse.Namespace], Awaitable[int]]


class _Parser(argparse.ArgumentParser):
    """Raises instead of printing usage and exiting, so errors follow etcdctl's one-line form
    and :func:`run` stays usable inside a larger program."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _global_flags() -> _Parser:
    g = _Parser(add_help=False)
    s = argparse.SUPPRESS
    g.add_argument(
        "--endpoints",
        default=s,
        help="comma-separated endpoints (default: $RKCTL_ENDPOINTS or 127.0.0.1:2379)",
    )
    g.add_argument("--dial-timeout", default=s, help="dial timeout, e.g. 2s (default 2s)")
    g.add_argument("--command-timeout", default=s, help="command timeout, e.g. 5s (default 5s)")
    g.add_argument("-w", "--write-out", choices=FORMATS, default=s, help="output format")
    g.add_argument("--hex", action="store_true", default=s, help="print keys/values as hex")
    g.add_argument("--cert", dest="tls_cert", default=s, help="client certificate file (TLS)")
    g.add_argument("--key", dest="tls_key", default=s, help="client key file (TLS)")
    g.add_argument(
        "--cacert", dest="tls_cacert", default=s, help="CA bundle to verify servers (TLS)"
    )
    g.add_argument(
        "--insecure-skip-tls-verify",
        action="store_true",
        default=s,
        help="skip server certificate verification (TLS)",
    )
    return g


def build_parser() -> argparse.ArgumentParser:
    """The full command tree; each leaf parser sets ``func`` to its command coroutine."""
    common = _global_flags()
    parser = _Parser(
        prog="rkctl",
        description="A command line client for raftkube, compatible with etcdctl v3.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def leaf(
        group: argparse._SubParsersAction[_Parser], name: str, func: Command, help: str
    ) -> _Parser:
        p = group.add_parser(name, help=help, description=help, parents=[common])
        p.set_defaults(func=func)
        return p

    commands.add_put_args(leaf(sub, "put", commands.cmd_put, "Puts the given key into the store"))
    commands.add_get_args(leaf(sub, "get", commands.cmd_get, "Gets the key or a range of keys"))
    commands.add_del_args(
        leaf(sub, "del", commands.cmd_del, "Removes the specified key or range of keys")
    )
    txn = leaf(sub, "txn", commands.cmd_txn, "Txn processes all the requests in one transaction")
    txn.add_argument("-i", "--interactive", action="store_true", help="prompt for each section")

    watch = leaf(sub, "watch", commands.cmd_watch, "Watches events stream on keys or prefixes")
    watch.add_argument("key")
    watch.add_argument("range_end", nargs="?")
    watch.add_argument("--prefix", action="store_true", help="watch on a prefix")
    watch.add_argument("--from-key", action="store_true", help="watch keys >= the given key")
    watch.add_argument("--rev", type=int, default=0, help="revision to start watching")
    watch.add_argument("--prev-kv", action="store_true", help="get the previous key-value pair")
    watch.add_argument("-i", "--interactive", action="store_true", help=argparse.SUPPRESS)

    compaction = leaf(
        sub, "compaction", commands.cmd_compaction, "Compacts the event history in etcd"
    )
    compaction.add_argument("revision")
    compaction.add_argument(
        "--physical", action="store_true", help="accepted for compatibility; has no effect"
    )
    defrag = leaf(
        sub,
        "defrag",
        commands.cmd_defrag,
        "Not needed by raftkube: its members keep the keyspace in memory and on disk only a "
        "write-ahead log and snapshot files, so there are no free pages to give back as "
        "etcd's defragmentation does; the disk that compacted history used is freed when the "
        "next snapshot (taken automatically) releases the log segments it covers. Prints "
        "that and changes nothing.",
    )
    defrag.add_argument("--cluster", action="store_true", help="accepted for compatibility")

    lease = sub.add_parser("lease", help="Lease related commands", parents=[common])
    lease_sub = lease.add_subparsers(dest="lease_command", metavar="COMMAND", required=True)
    leaf(lease_sub, "grant", commands.cmd_lease_grant, "Creates leases").add_argument("ttl")
    leaf(lease_sub, "revoke", commands.cmd_lease_revoke, "Revokes leases").add_argument("id")
    ttl = leaf(lease_sub, "timetolive", commands.cmd_lease_timetolive, "Get lease information")
    ttl.add_argument("id")
    ttl.add_argument("--keys", action="store_true", help="get keys attached to this lease")
    keep = leaf(lease_sub, "keep-alive", commands.cmd_lease_keepalive, "Keeps leases alive (renew)")
    keep.add_argument("id")
    keep.add_argument("--once", action="store_true", help="resets the keep-alive time once")

    member = sub.add_parser("member", help="Membership related commands", parents=[common])
    member_sub = member.add_subparsers(dest="member_command", metavar="COMMAND", required=True)
    leaf(member_sub, "list", cluster_commands.cmd_member_list, "Lists all members in the cluster")
    member_commands.add_member_add_args(
        leaf(member_sub, "add", member_commands.cmd_member_add, "Adds a member into the cluster")
    )
    for name, func, text in (
        ("remove", member_commands.cmd_member_remove, "Removes a member from the cluster"),
        ("promote", member_commands.cmd_member_promote, "Promotes a non-voting member"),
    ):
        member_commands.add_member_id_arg(leaf(member_sub, name, func, text))

    endpoint = sub.add_parser("endpoint", help="Endpoint related commands", parents=[common])
    endpoint_sub = endpoint.add_subparsers(
        dest="endpoint_command", metavar="COMMAND", required=True
    )
    for name, func, text in (
        ("status", cluster_commands.cmd_endpoint_status, "Prints out the status of endpoints"),
        ("health", cluster_commands.cmd_endpoint_health, "Checks the healthiness of endpoints"),
    ):
        ep = leaf(endpoint_sub, name, func, text)
        ep.add_argument(
            "--cluster", action="store_true", help="use all endpoints from the cluster member list"
        )

    leaf(sub, "version", cluster_commands.cmd_version, "Prints the version of rkctl")
    return parser


def settings_from(ns: argparse.Namespace) -> Settings:
    """Resolve the global flags (and their environment/default fallbacks)."""
    return Settings(
        endpoints=tuple(split_endpoints(getattr(ns, "endpoints", None) or default_endpoints())),
        dial_timeout=parse_duration(getattr(ns, "dial_timeout", "2s")),
        command_timeout=parse_duration(getattr(ns, "command_timeout", "5s")),
        write_out=getattr(ns, "write_out", "simple"),
        hex=getattr(ns, "hex", False),
        ssl_context=build_ssl_context(
            getattr(ns, "tls_cert", None),
            getattr(ns, "tls_key", None),
            getattr(ns, "tls_cacert", None),
            getattr(ns, "insecure_skip_tls_verify", False),
        ),
    )


async def run(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run one rkctl command inside the current Trio run; returns the exit status.

    Streams default to the process's; tests pass ``io.StringIO`` objects instead."""
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    parser = build_parser()
    try:
        ns = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        func: Command | None = getattr(ns, "func", None)
        if func is None:
            stdout.write(parser.format_help())
            return 0
        settings = settings_from(ns)
        printer = Printer(stdout, settings.write_out, hex=settings.hex)
        ctx = commands.Context(settings, printer, stdin, stdout, stderr)
        return await func(ctx, ns)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    except Exception as exc:
        described = describe(exc)
        if described is None:
            raise
        message, code = described
        stderr.write(f"Error: {one_line(message)}\n")
        return code
    finally:
        stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """The ``rkctl`` console script: one ``trio.run`` of :func:`run`.

    Standard streams are switched to ``surrogateescape`` so keys and values that are not
    UTF-8 are written back byte for byte, as etcdctl writes them."""
    for stream in (sys.stdout, sys.stdin):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="surrogateescape")
    try:
        return trio.run(run, argv)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
