"""``rkctl member add/promote/remove``: etcdctl's membership commands, flags and output.

``member add NAME --peer-urls=URL[,URL...] [--learner]`` prints etcdctl's ``Member <id>
added to cluster <cluster>`` line and, in the simple format, the ``ETCD_NAME`` /
``ETCD_INITIAL_CLUSTER`` / ``ETCD_INITIAL_ADVERTISE_PEER_URLS`` / ``ETCD_INITIAL_CLUSTER_STATE``
lines etcdctl prints for starting the new member. ``--client-urls`` is a raftkube addition
(etcd learns a member's client URLs when it starts; a raftkube member is told them up front so
the cluster's leader hints can name it). ``member remove ID`` and ``member promote ID`` take
the id in hex, as etcdctl does. A refusal prints the server's text, e.g. ``Error: etcdserver:
member not found``.
"""

from __future__ import annotations

import argparse
from typing import Any

from raftkube.api import wire
from raftkube.client import ClientError
from raftkube.rkctl.commands import Context
from raftkube.rkctl.errors import CommandError, UsageError
from raftkube.rkctl.output import MemberRow, go_quote


def add_member_add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="the new member's name")
    p.add_argument("--peer-urls", default="", help="comma separated peer URLs for the new member.")
    p.add_argument(
        "--client-urls", default="", help="comma separated client URLs of the new member."
    )
    p.add_argument(
        "--learner", action="store_true", help="indicates if the new member is raft learner"
    )


def add_member_id_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("member_id", nargs="?", metavar="memberID", help="the member's ID, in hex")


def parse_member_id(ns: argparse.Namespace) -> int:
    """The positional member id in hex, with etcdctl's texts for a missing or bad one."""
    if ns.member_id is None:
        raise UsageError("member ID is not provided")
    text = ns.member_id
    try:
        value = int(text, 16) if not text.startswith(("-", "+", "0x", "0X")) else -1
    except ValueError:
        value = -1
    if value < 0:
        # Go's strconv.ParseUint error, as etcdctl wraps it.
        raise UsageError(
            f"bad member ID arg (strconv.ParseUint: parsing {go_quote(text)}: invalid syntax), "
            "expecting ID in Hex"
        )
    return value


def member_rows(raw: list[Any]) -> list[MemberRow]:
    """The ``members`` of a cluster op's answer as ``member list`` shows them."""
    return [
        MemberRow(
            id=int(m.get("ID", 0)),
            name=str(m.get("name", "")),
            peer_urls=tuple(m.get("peerURLs", ())),
            client_urls=tuple(m.get("clientURLs", ())),
            is_learner=bool(m.get("isLearner", False)),
        )
        for m in raw
    ]


def _split(flag: str) -> list[str]:
    return [u.strip() for u in flag.split(",") if u.strip()]


async def _call(ctx: Context, op: str, body: dict[str, Any]) -> dict[str, Any]:
    with ctx.deadline():
        async with ctx.settings.client() as c:
            try:
                return await c.call(op, body, write=True)
            except ClientError as exc:
                if exc.code == "timeout":
                    raise
                # The server's text as it is (etcdctl prints etcd's own message).
                raise CommandError(exc.message) from None


async def cmd_member_add(ctx: Context, ns: argparse.Namespace) -> int:
    if not ns.name:
        raise UsageError("member name not provided")
    peer_urls = _split(ns.peer_urls)
    if not peer_urls:
        raise UsageError("member peer urls not provided")
    body = {
        "name": ns.name,
        "peerURLs": peer_urls,
        "clientURLs": _split(ns.client_urls),
        "isLearner": bool(ns.learner),
    }
    msg = await _call(ctx, "member_add", body)
    header = wire.decode_header(msg["header"])
    (added,) = member_rows([msg["body"]["member"]])
    ctx.printer.member_add(
        header, added, member_rows(msg["body"]["members"]), ns.name, ns.peer_urls
    )
    return 0


async def cmd_member_remove(ctx: Context, ns: argparse.Namespace) -> int:
    member_id = parse_member_id(ns)
    msg = await _call(ctx, "member_remove", {"ID": member_id})
    header = wire.decode_header(msg["header"])
    ctx.printer.member_changed(
        "removed from", member_id, header, member_rows(msg["body"]["members"])
    )
    return 0


async def cmd_member_promote(ctx: Context, ns: argparse.Namespace) -> int:
    member_id = parse_member_id(ns)
    msg = await _call(ctx, "member_promote", {"ID": member_id})
    header = wire.decode_header(msg["header"])
    ctx.printer.member_changed(
        "promoted in", member_id, header, member_rows(msg["body"]["members"])
    )
    return 0
