"""``raftkube member``: one cluster member as an operating-system process.

The member logs one line per event an operator cares about (listening, term changes, leader
changes, stopping) to stderr, and stops cleanly on SIGTERM or SIGINT: its tasks are cancelled
and its storage closed, so the next start recovers from a WAL that was never cut mid-write by
us. ``--peers`` lists every member by ``id=host:port`` (its Raft address), this one included,
like etcd's ``--initial-cluster``; the size of that list is the size of the initial cluster.
A member added later (``rkctl member add``) is started with ``--initial-cluster-state
existing``, as an etcd member is; it waits outside the configuration until the leader's log
(or snapshot) tells it the one in force.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import trio

from raftkube.clock import sleep_for
from raftkube.cluster.common import (
    describe,
    expected_error,
    format_address,
    parse_member_addresses,
    parse_member_names,
    port_number,
)
from raftkube.cluster.join import JoinError, join, join_ssl_context, promote_when_in_sync
from raftkube.cluster.timing import TimingConfigError, add_timing_flags, raft_timing
from raftkube.gcpauses import GcPauseLog
from raftkube.net.transport import PeerAddress
from raftkube.server.compactor import MODES, AutoCompaction, CompactionConfigError
from raftkube.server.member import LEASE, READ_INDEX, Member, MemberConfig
from raftkube.server.wiring import RunningMember, open_member
from raftkube.tls import TlsSetupError, peer_tls, server_context
from raftkube.tuning import (
    freeze_long_lived,
    middle_generation_due,
    reclaim_due,
    reclaim_frozen,
    tune_gc,
)

logger = logging.getLogger("raftkube.member")

READ_MODE_FLAGS = {"read-index": READ_INDEX, "lease": LEASE}
"""``--read-mode`` values (dashes, as command lines spell them) to ``MemberConfig.read_mode``."""


def drift_bound(text: str) -> float:
    """An argparse type: a clock-rate error bound in [0, 1)."""
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def add_read_flags(p: argparse.ArgumentParser) -> None:
    """``--read-mode`` and ``--max-clock-drift``, shared with ``raftkube up``."""
    p.add_argument(
        "--read-mode",
        choices=sorted(READ_MODE_FLAGS),
        default="read-index",
        help="linearizable reads: a quorum round each (read-index, default) or a leader lease "
        "(lease: no round trip, but UNSAFE if a clock's rate drifts beyond --max-clock-drift)",
    )
    p.add_argument(
        "--max-clock-drift",
        type=drift_bound,
        default=0.1,
        help="with --read-mode lease: bound on any member's clock-rate error (default 0.1)",
    )


def add_compaction_flags(p: argparse.ArgumentParser) -> None:
    """etcd's ``--auto-compaction-mode`` and ``--auto-compaction-retention``, shared with
    ``raftkube up`` (semantics in :mod:`raftkube.server.compactor`)."""
    p.add_argument(
        "--auto-compaction-mode",
        default="periodic",
        metavar="|".join(MODES),
        help="interpret --auto-compaction-retention as a period ('periodic', default) or as a "
        "number of revisions to keep ('revision')",
    )
    p.add_argument(
        "--auto-compaction-retention",
        default="0",
        help="auto compaction retention: a duration (e.g. 5m, 1h) or a number of hours in "
        "periodic mode, a number of revisions in revision mode; 0 (default) disables it",
    )


def compaction_argv(args: argparse.Namespace) -> tuple[str, ...]:
    """The compaction flags as ``raftkube member`` takes them (for launchers to pass on)."""
    return (
        "--auto-compaction-mode",
        args.auto_compaction_mode,
        "--auto-compaction-retention",
        args.auto_compaction_retention,
    )


SNAPSHOT_IMAGE_RATIO = 1.0
"""``MemberConfig.snapshot_image_ratio`` of a member process: a snapshot waits until the
entries applied since the last one weigh as much as its image, so its cost per write stays
constant as the store grows, and the WAL since the last snapshot stays below one image."""

MAX_MEMBERS = 16
"""``--max-members``' default: room for adding members over a cluster's life (ids are never
reused, so this bounds the additions too; see :mod:`raftkube.server.reconfig`)."""

REPORT_INTERVAL: float = 0.05
"""How often the member's term and leader are sampled for the event log: a few ticks, so an
election is reported promptly without logging every tick."""


def register(commands: Any) -> None:
    """Add ``raftkube member`` to the ``raftkube`` command."""
    p = commands.add_parser(
        "member",
        help="run one cluster member in the foreground",
        description="Run one member of a raftkube cluster until SIGTERM or SIGINT.",
    )
    p.add_argument("--id", dest="member_id", type=int, help="this member's id (required)")
    p.add_argument(
        "--peers",
        action="append",
        default=[],
        metavar="ID=HOST:PORT[,...]",
        help="Raft address of every member, this one included (ids 0..N-1); repeatable (required)",
    )
    p.add_argument(
        "--join",
        metavar="ENDPOINTS",
        help="instead of --id and --peers: add this member to the running cluster at these "
        "client endpoints (a learner, promoted once in sync) and run it; running the same "
        "command again restarts it",
    )
    p.add_argument(
        "--peer-address",
        metavar="HOST:PORT",
        help="with --join: where this member's peers reach it",
    )
    p.add_argument(
        "--join-cert",
        type=Path,
        help="with --join and TLS: client certificate for the join's own requests (member add "
        "and promote), as rkctl's --cert",
    )
    p.add_argument("--join-key", type=Path, help="private key of --join-cert")
    p.add_argument(
        "--client-port",
        type=port_number,
        required=True,
        help="port for clients, on the host of this member's --peers entry",
    )
    p.add_argument(
        "--client-endpoints",
        action="append",
        default=[],
        metavar="ID=HOST:PORT[,...]",
        help="client address of each member, used for leader hints to clients",
    )
    p.add_argument("--data-dir", type=Path, required=True, help="WAL directory (created)")
    p.add_argument("--name", default="", help="this member's name, as `member list` shows it")
    p.add_argument(
        "--peer-names",
        action="append",
        default=[],
        metavar="ID=NAME[,...]",
        help="names of the other members of --peers, as `member list` shows them (etcd's "
        "--initial-cluster carries them); repeatable",
    )
    p.add_argument(
        "--initial-cluster-state",
        choices=("new", "existing"),
        default="new",
        help="new: --peers is the whole initial cluster; existing: join a running cluster "
        "that `rkctl member add` told about this member (--peers: its members and this one)",
    )
    p.add_argument(
        "--max-members",
        type=int,
        default=MAX_MEMBERS,
        help=f"member ids the cluster may ever use, 0..N-1 (default {MAX_MEMBERS}); "
        "0 turns membership changes off",
    )
    p.add_argument("--cluster-id", default="raftkube", help="members of other clusters are refused")
    p.add_argument("--cert", type=Path, help="PEM certificate: enables TLS for clients and peers")
    p.add_argument("--key", type=Path, help="PEM private key of --cert")
    p.add_argument("--cacert", type=Path, help="CA that signs every member (and client) cert")
    p.add_argument(
        "--client-cert-auth",
        action="store_true",
        help="clients must present a certificate signed by --cacert",
    )
    p.add_argument(
        "--stop-on-stdin-eof",
        action="store_true",
        help="also stop when stdin closes (used by `raftkube up`, so members never outlive it)",
    )
    add_read_flags(p)
    add_compaction_flags(p)
    add_timing_flags(p)
    p.set_defaults(handler=run_member)


class _Setup(Exception):
    """Bad flags, reported as one line."""


def _configure(args: argparse.Namespace) -> dict[str, Any]:
    """Validate the flags into ``open_member`` arguments, before anything touches the disk."""
    if args.member_id is None or not args.peers:
        raise _Setup("--id and --peers are required (or --join)")
    try:
        peers = parse_member_addresses(args.peers)
        clients = parse_member_addresses(args.client_endpoints)
        names = parse_member_names(args.peer_names)
    except ValueError as exc:
        raise _Setup(str(exc)) from None
    joining = args.initial_cluster_state == "existing"
    if not joining and sorted(peers) != list(range(len(peers))):
        raise _Setup(f"--peers must list members 0..N-1, got ids {sorted(peers)}")
    if args.member_id not in peers:
        raise _Setup(f"--peers must include this member ({args.member_id})")
    if args.max_members and not max(peers) < args.max_members:
        raise _Setup(f"--max-members {args.max_members} leaves no room for id {max(peers)}")
    if joining and args.member_id == 0:
        raise _Setup("a joining member has the id `rkctl member add` gave it, never 0")
    if joining and not args.max_members:
        raise _Setup("--initial-cluster-state existing needs membership changes (--max-members)")
    host, peer_port = peers[args.member_id]
    kwargs: dict[str, Any] = {"host": host, "peer_port": peer_port, "client_port": args.client_port}
    if args.cert or args.key or args.cacert:
        if not (args.cert and args.key and args.cacert):
            raise _Setup("TLS needs all of --cert, --key and --cacert")
        kwargs["client_ssl_context"] = server_context(
            args.cert, args.key, args.cacert, client_cert_auth=args.client_cert_auth
        )
        kwargs["peer_tls"] = peer_tls(args.cert, args.key, args.cacert)
    elif args.client_cert_auth:
        raise _Setup("--client-cert-auth needs --cert, --key and --cacert")
    try:
        compaction = AutoCompaction.parse(args.auto_compaction_mode, args.auto_compaction_retention)
        tick_interval, election_ticks = raft_timing(args.heartbeat_interval, args.election_timeout)
    except (CompactionConfigError, TimingConfigError) as exc:
        raise _Setup(str(exc)) from None
    return {
        "config": MemberConfig(
            member_id=args.member_id,
            # A joining member starts outside the configuration (every id below its own, a
            # stand-in it replaces with the leader's as soon as it hears from it).
            servers=args.member_id if joining else len(peers),
            max_members=args.max_members,
            cluster_id=args.cluster_id,
            read_mode=READ_MODE_FLAGS[args.read_mode],
            max_clock_drift=args.max_clock_drift,
            snapshot_image_ratio=SNAPSHOT_IMAGE_RATIO,
            auto_compaction=compaction,
            tick_interval=tick_interval,
            election_ticks=election_ticks,
        ),
        "peers": peers,
        "clients": clients,
        "names": names,
        "kwargs": kwargs,
    }


def _check_data_dir(path: Path) -> None:
    """Fail with a clear message now rather than with a storage traceback later."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _Setup(f"cannot create data directory {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise _Setup(f"data directory {path} is not writable")


async def _report_events(member: Member) -> None:
    """Log term and leader changes by sampling: the Raft driver stays free of log policy.
    Also freezes the collector's tracked objects before each middle-generation collection,
    and reclaims what the freezes kept once it outgrew the heap (:mod:`raftkube.tuning`), a
    process-wide policy kept out of the member for the same reason (a simulated world runs
    many members in one process)."""
    term: int | None = None
    leader: int | None = -1
    baseline = gc.get_freeze_count()
    while True:
        if middle_generation_due():
            freeze_long_lived()
            frozen = gc.get_freeze_count()
            if reclaim_due(frozen, baseline):
                logger.warning(
                    "reclaiming frozen garbage: %d objects frozen, %d after the last reclaim; "
                    "a full collection follows and may pause this member",
                    frozen,
                    baseline,
                )
                baseline = reclaim_frozen()
        if member.term != term:
            term = member.term
            logger.info("term %d", term)
        if member.leader != leader:
            leader = member.leader
            if leader is None:
                logger.info("no leader in term %d", term)
            elif leader == member.id:
                logger.info("elected leader in term %d", term)
            else:
                logger.info("following leader %d in term %d", leader, term)
        await sleep_for(member.clock, REPORT_INTERVAL)


async def _wait_for_stdin_eof() -> None:
    """Return when stdin reaches end of file: the supervisor went away (even via SIGKILL)."""
    stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    async with stream:
        try:
            while await stream.receive_some(4096):
                pass
        except (trio.BrokenResourceError, OSError):
            pass
    logger.info("stdin closed; stopping")


def _wire_peers(running: RunningMember, setup: dict[str, Any], name: str) -> None:
    for mid, (host, port) in setup["peers"].items():
        client = setup["clients"].get(mid)
        endpoint = format_address(client) if client else None
        mine = mid == running.member.id
        if mine:
            endpoint = endpoint or running.client_endpoint
        their_name = name if mine and name else setup["names"].get(mid, "")
        running.add_peer(mid, PeerAddress(host, port), endpoint, their_name)


async def _serve(args: argparse.Namespace, setup: dict[str, Any]) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with open_member(setup["config"], args.data_dir, **setup["kwargs"]) as running:
            _wire_peers(running, setup, args.name)
            torn = getattr(running.member.storage, "torn_tail", None)  # RaftLogStore only
            if torn is not None:
                logger.warning(
                    "recovered the write-ahead log by truncating a torn tail: dropped %d "
                    "unacknowledged bytes of %s from byte offset %d (%s)",
                    torn.dropped_bytes,
                    torn.path,
                    torn.offset,
                    torn.reason,
                )
            tls = "tls" if "client_ssl_context" in setup["kwargs"] else "plaintext"
            logger.info(
                "member %d of %d-member cluster %r: clients on %s (%s), peers on %s:%d",
                running.member.id,
                setup["config"].servers,
                setup["config"].cluster_id,
                running.client_endpoint,
                tls,
                running.peer_address.host,
                running.peer_address.port,
            )
            freeze_long_lived()  # the recovered store, before any collection walks it
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_report_events, running.member)
                if args.join is not None:
                    nursery.start_soon(
                        promote_when_in_sync,
                        [e.strip() for e in args.join.split(",") if e.strip()],
                        running.member.id,
                        running.member.clock,
                        join_ssl_context(args),
                    )
                if args.stop_on_stdin_eof:

                    async def stdin_watch() -> None:
                        await _wait_for_stdin_eof()
                        nursery.cancel_scope.cancel()

                    nursery.start_soon(stdin_watch)
                async for signum in signals:
                    logger.info("stopping on %s", signal.Signals(signum).name)
                    break
                # A leader hands over first (bounded by the transfer timeout), so the cluster
                # does not wait an election timeout for a successor.
                successor = await running.member.stop_gracefully()
                if successor is not None:
                    logger.info("handed leadership to member %d", successor)
                nursery.cancel_scope.cancel()
    logger.info("stopped; storage closed")


def run_member(args: argparse.Namespace) -> int:
    """The ``raftkube member`` handler: 0 after a requested stop, 1 on bad input or failure."""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s.%(msecs)03d %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    tune_gc()
    try:
        if args.join is not None:
            trio.run(join, args)
        setup = _configure(args)
        _check_data_dir(args.data_dir)
    except (_Setup, TlsSetupError, JoinError) as exc:
        print(f"raftkube member: {exc}", file=sys.stderr, flush=True)
        return 1
    try:
        # Long collections are logged while the member serves (not the one at exit).
        with GcPauseLog(logging.getLogger("raftkube.gc")):
            trio.run(_serve, args, setup)
    except BaseException as exc:
        cause = expected_error(exc)
        if cause is None:
            raise
        print(f"raftkube member {args.member_id}: {describe(cause)}", file=sys.stderr, flush=True)
        return 1
    return 0
