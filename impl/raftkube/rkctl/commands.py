"""The commands: each turns parsed flags into requests and hands responses to the printer.

Flag handling mirrors etcdctl's ``getGetOp``/``getPutOp``/``getDelOp`` (including which flag
combinations are refused and with what words), because those helpers also define what a
``put``/``get``/``del`` line inside ``txn`` means.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, TextIO

import attrs
import trio

from raftkube.client import ClientError, KVRequestError
from raftkube.client.keys import FROM_KEY, prefix_end
from raftkube.clock import Clock, TrioClock, fail_after, sleep_for
from raftkube.rkctl.connection import Settings, request
from raftkube.rkctl.errors import CommandError, UsageError
from raftkube.rkctl.output import Printer
from raftkube.rkctl.txn_parser import TxnSyntaxError, parse_txn
from raftkube_spec.kv.errors import ErrorCode
from raftkube_spec.kv.requests import (
    CompactionRequest,
    DeleteRangeRequest,
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    LeaseTimeToLiveRequest,
    PutRequest,
    RangeRequest,
    RequestOp,
    TxnRequest,
)
from raftkube_spec.kv.responses import (
    CompactionResponse,
    DeleteRangeResponse,
    LeaseGrantResponse,
    LeaseKeepAliveResponse,
    LeaseRevokeResponse,
    LeaseTimeToLiveResponse,
    PutResponse,
    RangeResponse,
    TxnResponse,
)


@attrs.define
class Context:
    """What a command needs besides its own flags: settings, the printer and the streams."""

    settings: Settings
    printer: Printer
    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    clock: Clock = attrs.field(factory=TrioClock)
    """What ``--command-timeout`` and the keep-alive cadence are measured on."""

    def deadline(self) -> AbstractContextManager[trio.CancelScope]:
        """``--command-timeout`` around one round of requests (not around streams)."""
        return fail_after(self.clock, self.settings.command_timeout)

    @asynccontextmanager
    async def progress_deadline(self) -> AsyncIterator[Callable[[], None]]:
        """``--command-timeout`` for a request whose answer may come in parts (a range):
        it bounds the wait for the first part and then for each next one, not the whole
        transfer. etcdctl's bounds the whole command, but etcd sends a million keys in well
        under its 5 s; here they take longer to arrive, and are no less an answer for it.
        Yields the callable that records progress; raises ``trio.TooSlowError`` (reported
        as etcdctl's ``context deadline exceeded``) when a wait runs out."""
        clock, timeout = self.clock, self.settings.command_timeout
        last = clock.now()
        expired = False

        def progress() -> None:
            nonlocal last
            last = clock.now()

        async with trio.open_nursery() as nursery:

            async def watchdog() -> None:
                nonlocal expired
                while clock.now() < last + timeout:
                    await clock.sleep_until(last + timeout)
                expired = True
                nursery.cancel_scope.cancel()

            nursery.start_soon(watchdog)
            try:
                yield progress
            finally:
                nursery.cancel_scope.cancel()
        if expired:
            raise trio.TooSlowError


def raw(arg: str) -> bytes:
    """A command-line argument as the bytes the user typed (argv is surrogate-escaped)."""
    return arg.encode("utf-8", "surrogateescape")


def parse_lease_id(text: str) -> int:
    """A lease id in hex, as etcdctl prints and parses them."""
    try:
        return int(text, 16)
    except ValueError:
        raise UsageError(f"bad lease ID arg ({text}), expecting ID in Hex") from None


def _expect(resp: object, kind: type[Any]) -> Any:
    if not isinstance(resp, kind):
        raise CommandError(f"unexpected response {type(resp).__name__}")
    return resp


# --- put / get / del: flags shared with txn ops ------------------------------------------------


def add_put_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("key")
    p.add_argument("value", nargs="?", help="the value; read from stdin when omitted")
    p.add_argument("--lease", default="0", help="lease ID (in hexadecimal) to attach to the key")
    p.add_argument("--prev-kv", action="store_true", help="return the previous key-value pair")
    p.add_argument("--ignore-value", action="store_true", help="update the key keeping its value")
    p.add_argument("--ignore-lease", action="store_true", help="update the key keeping its lease")


def put_request(ns: argparse.Namespace, stdin: TextIO | None) -> PutRequest:
    """etcdctl's ``getPutOp``: the value may come from stdin, unless ``--ignore-value``."""
    value: str | None = ns.value
    if value is None:
        if ns.ignore_value:
            value = ""
        elif stdin is None:
            raise UsageError("put command needs 1 argument and input from stdin or 2 arguments")
        else:
            value = stdin.read()
    elif ns.ignore_value:
        raise UsageError("put command needs only 1 argument when 'ignore-value' is set")
    return PutRequest(
        raw(ns.key),
        raw(value),
        lease=parse_lease_id(ns.lease),
        prev_kv=ns.prev_kv,
        ignore_value=ns.ignore_value,
        ignore_lease=ns.ignore_lease,
    )


def add_get_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("key")
    p.add_argument("range_end", nargs="?")
    p.add_argument("--prefix", action="store_true", help="get keys with matching prefix")
    p.add_argument("--from-key", action="store_true", help="get keys >= the given key")
    p.add_argument("--rev", type=int, default=0, help="specify the kv revision")
    p.add_argument("--limit", type=int, default=0, help="maximum number of results")
    p.add_argument("--keys-only", action="store_true", help="get only the keys")
    p.add_argument("--count-only", action="store_true", help="get only the count")
    p.add_argument(
        "--print-value-only", action="store_true", help="only write values (simple format)"
    )
    p.add_argument("--consistency", default="l", help="linearizable (l) or serializable (s)")


def _key_range(
    key: str, range_end: str | None, prefix: bool, from_key: bool
) -> tuple[bytes, bytes]:
    """``(key, range_end)`` from the positional arguments and ``--prefix``/``--from-key``."""
    if prefix and from_key:
        raise UsageError("`--prefix` and `--from-key` cannot be set at the same time, choose one")
    if range_end is not None and (prefix or from_key):
        raise UsageError(
            "too many arguments, only accept one argument when `--prefix` or `--from-key` is set"
        )
    k = raw(key)
    if prefix:
        # etcdctl: an empty prefix means every key.
        return (b"\x00", FROM_KEY) if not k else (k, prefix_end(k))
    if from_key:
        return (k or b"\x00", FROM_KEY)
    return k, b"" if range_end is None else raw(range_end)


def get_request(ns: argparse.Namespace) -> tuple[RangeRequest, bool]:
    """etcdctl's ``getGetOp``; also says whether the read may be serializable."""
    if ns.keys_only and ns.count_only:
        raise UsageError(
            "`--keys-only` and `--count-only` cannot be set at the same time, choose one"
        )
    if ns.consistency not in ("l", "s"):
        raise UsageError(f"unknown consistency flag {ns.consistency!r}")
    if ns.limit < 0:
        raise UsageError("--limit must not be negative")
    key, end = _key_range(ns.key, ns.range_end, ns.prefix, ns.from_key)
    req = RangeRequest(
        key,
        end,
        limit=ns.limit,
        revision=max(ns.rev, 0),
        keys_only=ns.keys_only,
        count_only=ns.count_only,
    )
    return req, ns.consistency == "s"


def add_del_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("key")
    p.add_argument("range_end", nargs="?")
    p.add_argument("--prefix", action="store_true", help="delete keys with matching prefix")
    p.add_argument("--from-key", action="store_true", help="delete keys >= the given key")
    p.add_argument("--prev-kv", action="store_true", help="return deleted key-value pairs")


def del_request(ns: argparse.Namespace) -> DeleteRangeRequest:
    key, end = _key_range(ns.key, ns.range_end, ns.prefix, ns.from_key)
    return DeleteRangeRequest(key, end, prev_kv=ns.prev_kv)


# --- KV commands --------------------------------------------------------------------------------


async def cmd_put(ctx: Context, ns: argparse.Namespace) -> int:
    req = put_request(ns, ctx.stdin)
    with ctx.deadline():
        async with ctx.settings.client() as c:
            h, resp = await request(c, req)
    ctx.printer.put(h, _expect(resp, PutResponse))
    return 0


async def cmd_get(ctx: Context, ns: argparse.Namespace) -> int:
    req, serializable = get_request(ns)
    if ns.count_only and ctx.printer.fmt != "fields":
        raise UsageError("--count-only is only for `--write-out=fields`")
    if ns.print_value_only:
        if ctx.printer.fmt != "simple":
            raise UsageError("print-value-only is only for `--write-out=simple`")
        ctx.printer.value_only = True
    async with ctx.progress_deadline() as progress, ctx.settings.client() as c:
        h, resp = await request(c, req, serializable=serializable, on_part=progress)
    ctx.printer.get(h, _expect(resp, RangeResponse))
    return 0


async def cmd_del(ctx: Context, ns: argparse.Namespace) -> int:
    req = del_request(ns)
    with ctx.deadline():
        async with ctx.settings.client() as c:
            h, resp = await request(c, req)
    ctx.printer.delete(h, _expect(resp, DeleteRangeResponse))
    return 0


class _OpParser(argparse.ArgumentParser):
    """Parses one txn op line; a bad line is reported as etcdctl does, naming the line."""

    def error(self, message: str) -> Any:
        raise TxnSyntaxError(message)


def _txn_op_parser() -> _OpParser:
    parser = _OpParser(prog="txn", add_help=False)
    sub = parser.add_subparsers(dest="op", required=True, parser_class=_OpParser)
    add_put_args(sub.add_parser("put", add_help=False))
    add_get_args(sub.add_parser("get", add_help=False))
    add_del_args(sub.add_parser("del", add_help=False))
    return parser


def txn_op(args: list[str], line: str) -> RequestOp:
    """One ``put``/``get``/``del`` line of a txn branch as a request."""
    try:
        ns = _txn_op_parser().parse_args(args)
        if ns.op == "put":
            return put_request(ns, None)
        if ns.op == "get":
            return get_request(ns)[0]
        return del_request(ns)
    except (TxnSyntaxError, UsageError):
        raise TxnSyntaxError(f"invalid txn request: {line}") from None


async def cmd_txn(ctx: Context, ns: argparse.Namespace) -> int:
    prompt = None
    if ns.interactive:

        def prompt(title: str) -> None:
            ctx.stdout.write(title + "\n")
            ctx.stdout.flush()

    compares, success, failure = parse_txn(iter(ctx.stdin.readline, ""), txn_op, prompt)
    req = TxnRequest(compares, success, failure)
    with ctx.deadline():
        async with ctx.settings.client() as c:
            h, resp = await request(c, req)
    ctx.printer.txn(h, _expect(resp, TxnResponse))
    return 0


async def cmd_watch(ctx: Context, ns: argparse.Namespace) -> int:
    """Print events until interrupted; only the registration has ``--command-timeout``."""
    if ns.interactive:
        raise UsageError("interactive watch is not supported")
    key, end = _key_range(ns.key, ns.range_end, ns.prefix, ns.from_key)
    if ctx.printer.fmt == "table":
        raise CommandError("table is not supported as output format")
    async with ctx.settings.client() as c, AsyncExitStack() as stack:
        # Only entering the watch (its registration) is bounded; the stream then runs on.
        # Entering it opens no cancel scope, so it may outlive the deadline's scope.
        with ctx.deadline():
            watch = c.watch(key, end, start_revision=max(ns.rev, 0), prev_kv=ns.prev_kv)
            events = await stack.enter_async_context(watch)
        try:
            async for ev in events:
                ctx.printer.watch([ev])
        except ClientError as exc:
            raise CommandError(f"watch was canceled ({_client_message(exc)})") from None
    raise CommandError("watch is canceled by the server")


def _client_message(exc: ClientError) -> str:
    if exc.code == "compacted" or exc.code == ErrorCode.COMPACTED.name:
        return ErrorCode.COMPACTED.value
    if isinstance(exc, KVRequestError):
        return exc.error.message
    return exc.message


async def cmd_compaction(ctx: Context, ns: argparse.Namespace) -> int:
    try:
        rev = int(ns.revision)
    except ValueError:
        raise UsageError(f"invalid revision {ns.revision!r}") from None
    with ctx.deadline():
        async with ctx.settings.client() as c:
            _, resp = await request(c, CompactionRequest(rev))
    _expect(resp, CompactionResponse)
    ctx.printer.compaction(rev)
    return 0


DEFRAG_NOT_NEEDED = (
    "raftkube members have nothing to defragment: the keyspace lives in memory, and the "
    "disk holds a write-ahead log and snapshot files, whose space is freed when a snapshot "
    "releases the log it covers"
)


async def cmd_defrag(ctx: Context, ns: argparse.Namespace) -> int:
    """etcd's defrag rewrites its bbolt file to give back the pages compaction freed. This
    storage engine has no such file (see ``rkctl defrag --help``), so the command says so
    instead of pretending to have done something, and succeeds: maintenance scripts that run
    it after a compaction keep working."""
    ctx.printer.line(DEFRAG_NOT_NEEDED)
    return 0


# --- leases -------------------------------------------------------------------------------------


async def cmd_lease_grant(ctx: Context, ns: argparse.Namespace) -> int:
    try:
        ttl = int(ns.ttl)
    except ValueError:
        raise UsageError(f"bad TTL ({ns.ttl})") from None
    with ctx.deadline():
        async with ctx.settings.client() as c:
            h, resp = await request(c, LeaseGrantRequest(0, ttl, 0))
    ctx.printer.lease_grant(h, _expect(resp, LeaseGrantResponse))
    return 0


async def cmd_lease_revoke(ctx: Context, ns: argparse.Namespace) -> int:
    lease_id = parse_lease_id(ns.id)
    with ctx.deadline():
        async with ctx.settings.client() as c:
            h, resp = await request(c, LeaseRevokeRequest(lease_id))
    ctx.printer.lease_revoke(h, lease_id, _expect(resp, LeaseRevokeResponse).header.revision)
    return 0


async def cmd_lease_timetolive(ctx: Context, ns: argparse.Namespace) -> int:
    lease_id = parse_lease_id(ns.id)
    with ctx.deadline():
        async with ctx.settings.client() as c:
            h, resp = await request(c, LeaseTimeToLiveRequest(lease_id, 0, ns.keys))
    ctx.printer.lease_ttl(h, _expect(resp, LeaseTimeToLiveResponse), ns.keys)
    return 0


async def cmd_lease_keepalive(ctx: Context, ns: argparse.Namespace) -> int:
    """Renew every TTL/3 seconds (clientv3's cadence) until the lease is gone or Ctrl-C."""
    lease_id = parse_lease_id(ns.id)
    async with ctx.settings.client() as c:
        while True:
            try:
                with ctx.deadline():
                    h, resp = await request(c, LeaseKeepAliveRequest(lease_id, 0))
            except KVRequestError as exc:
                if ns.once or exc.error.code is not ErrorCode.LEASE_NOT_FOUND:
                    raise
                break
            ka = _expect(resp, LeaseKeepAliveResponse)
            if ka.ttl <= 0 and not ns.once:
                break
            ctx.printer.lease_keepalive(h, ka)
            if ns.once:
                return 0
            await sleep_for(ctx.clock, max(ka.ttl / 3, 0.5))
    if ctx.printer.fmt == "simple":
        ctx.printer.line(f"lease {lease_id:016x} expired or revoked.")
    return 0
