"""``raftkube member --join ENDPOINTS``: add this member to a running cluster, then run it.

etcd's runbook for a new member, as one command: ``member add`` (as a learner, through any
member of the running cluster; it answers with the new id and every member's URLs), start
the member as ``--initial-cluster-state existing`` with those ``--peers``, and ``member
promote`` it once it is in sync with the leader (retried until then, as kubeadm does). The
id and addresses the cluster gave are kept in the data dir (:data:`JOINED_FILE`), so running
the same command again restarts that member instead of adding another one.

With TLS (``--cert``/``--key``/``--cacert``), the join's own requests present the client
certificate given by ``--join-cert``/``--join-key`` (what ``rkctl --cert/--key`` would use;
``raftkube up --tls`` passes its ``client.crt``), and the member's peer URL is ``https://``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import ssl
from pathlib import Path
from typing import Any

import trio

from raftkube.client import Client, ClientError
from raftkube.clock import Clock, sleep_for
from raftkube.cluster.common import parse_address, root_cause
from raftkube.server.reconfig import parse_peer_url
from raftkube.tls import client_context

logger = logging.getLogger("raftkube.member")

JOINED_FILE = "joined.json"
"""In the data dir: the id and the cluster's addresses a join got (``member add``'s answer)."""

PROMOTE_RETRY = 0.5
"""Seconds between promotion attempts while the learner catches up."""


class JoinError(Exception):
    """The join could not be made (bad flags, or the cluster refused); one line."""


def _endpoints(text: str) -> list[str]:
    endpoints = [e.strip() for e in text.split(",") if e.strip()]
    if not endpoints:
        raise JoinError("--join needs the client endpoints of the running cluster")
    return endpoints


def _addresses(members: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """``--peers`` and ``--client-endpoints`` values for ``member add``'s ``members``."""
    peers, clients = [], []
    for m in members:
        if m.get("peerURLs"):
            address = parse_peer_url(str(m["peerURLs"][0]))
            peers.append(f"{m['ID']}={address.host}:{address.port}")
        if m.get("clientURLs"):
            clients.append(f"{m['ID']}={m['clientURLs'][0]}")
    return peers, clients


async def join(args: argparse.Namespace) -> None:
    """Turn ``--join`` into the flags of a member started by hand: ``--id``, ``--peers``,
    ``--client-endpoints`` and ``--initial-cluster-state existing`` (adding the member to the
    cluster the first time; reading the data dir's record after that)."""
    if args.member_id is not None or args.peers:
        raise JoinError("--join finds this member's --id and --peers itself; omit them")
    if args.peer_address is None:
        raise JoinError(
            "--join needs --peer-address HOST:PORT (where this member's peers reach it)"
        )
    ctx = join_ssl_context(args)
    try:
        host, port = parse_address(args.peer_address)
    except ValueError as exc:
        raise JoinError(f"--peer-address: {exc}") from None
    record = Path(args.data_dir) / JOINED_FILE
    if record.exists():
        joined = json.loads(record.read_text())
        logger.info("rejoining as member %d (recorded in %s)", joined["id"], record)
    else:
        endpoints = _endpoints(args.join)
        try:
            async with Client(endpoints, ssl_context=ctx) as c:
                msg = await c.member_add(
                    args.name,
                    [f"{'http' if ctx is None else 'https'}://{host}:{port}"],
                    client_urls=[f"{host}:{args.client_port}"],
                    learner=True,
                )
        except (ClientError, ExceptionGroup) as exc:  # the client's nursery wraps errors
            cause = root_cause(exc)
            if isinstance(cause, ClientError):
                raise JoinError(
                    f"the cluster at {args.join} refused the new member: {cause.message}"
                ) from None
            raise JoinError(f"could not reach the cluster at {args.join}: {cause}") from None
        body = msg["body"]
        peers, clients = _addresses(body["members"])
        joined = {"id": body["member"]["ID"], "peers": peers, "clients": clients}
        Path(args.data_dir).mkdir(parents=True, exist_ok=True)
        tmp = record.with_suffix(".tmp")
        tmp.write_text(json.dumps(joined))
        os.replace(tmp, record)
        logger.info("added to the cluster as member %d (a learner)", joined["id"])
    args.member_id = int(joined["id"])
    args.peers = [",".join(joined["peers"])]
    args.client_endpoints = [",".join(joined["clients"])]
    args.initial_cluster_state = "existing"


def join_ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The join's client context: None in plaintext; with TLS, ``--cacert`` and the client
    pair of ``--join-cert``/``--join-key``, which a TLS join needs; raises JoinError."""
    join_pair = (args.join_cert, args.join_key)
    if not (args.cert or args.key or args.cacert):
        if any(join_pair):
            raise JoinError("--join-cert and --join-key need TLS (--cert, --key and --cacert)")
        return None
    if not all(join_pair) or not args.cacert:
        raise JoinError(
            "--join with TLS needs --cacert and a client certificate: --join-cert and --join-key"
        )
    return client_context(args.cacert, args.join_cert, args.join_key)  # TlsSetupError if bad


async def promote_when_in_sync(
    endpoints: list[str], member_id: int, clock: Clock, ctx: ssl.SSLContext | None = None
) -> None:
    """Promote ``member_id`` once the leader says it is in sync; done once it votes."""
    while True:
        try:
            async with Client(endpoints, ssl_context=ctx) as c:
                await c.member_promote(member_id)
            logger.info("promoted to a voting member")
            return
        except (ClientError, OSError, trio.TooSlowError, ExceptionGroup) as exc:
            cause = root_cause(exc)  # the client's nursery wraps what it raises
            if isinstance(cause, ClientError) and cause.code == "member_not_learner":
                logger.info("already a voting member")  # a restart of a promoted member
                return
            message = cause.message if isinstance(cause, ClientError) else str(cause)
            logger.info("not promoted yet: %s", message)
        await sleep_for(clock, PROMOTE_RETRY)
