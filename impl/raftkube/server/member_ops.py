"""The client protocol's cluster ops: ``member_list``, ``member_add``, ``member_promote``,
``member_remove`` (etcd's ``Cluster`` service: ``MemberList``, ``MemberAdd``,
``MemberPromote``, ``MemberRemove``), with etcd's ``etcdserverpb`` field names.

Kept apart from :mod:`raftkube.server.service` (which routes frames) and from
:mod:`raftkube.server.reconfig` (which makes the changes): this module only decodes the
bodies strictly, naming the field that is wrong, and encodes the answers.

Bodies::

    member_list     {}                                          -> {members}
    member_add      {name, peerURLs, clientURLs?, isLearner?}   -> {member, members}
    member_promote  {ID}                                        -> {members}
    member_remove   {ID}                                        -> {members}

A member is ``{ID, name, peerURLs, clientURLs, isLearner}``. ``name`` and ``clientURLs`` are
raftkube additions to ``member_add`` (etcd learns them when the new member starts and
publishes them; raftkube records them up front, see :mod:`raftkube.server.reconfig`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from raftkube.api import wire
from raftkube.server.reconfig import MemberInfo

if TYPE_CHECKING:
    from raftkube.server.member import Member

MEMBER_OPS: Final = frozenset({"member_list", "member_add", "member_promote", "member_remove"})


def encode_member(info: MemberInfo) -> dict[str, Any]:
    a = info.attributes
    return {
        "ID": a.id,
        "name": a.name,
        "peerURLs": list(a.peer_urls),
        "clientURLs": list(a.client_urls),
        "isLearner": info.is_learner,
    }


def _fields(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise wire.WireError(f"body.{sorted(unknown)[0]}", "unknown field")


def _urls(body: dict[str, Any], name: str) -> tuple[str, ...]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(u, str) and u for u in value):
        raise wire.WireError(f"body.{name}", "expected a list of non-empty strings")
    return tuple(value)


def _member_id(body: dict[str, Any]) -> int:
    _fields(body, {"ID"})
    value = body.get("ID")
    if type(value) is not int or value < 0:
        raise wire.WireError("body.ID", "expected a non-negative integer")
    return value


async def serve_member_op(member: Member, op: str, body: dict[str, Any]) -> dict[str, Any]:
    """The answer body of one cluster op; raises ``wire.WireError`` for a malformed body and
    :class:`~raftkube.server.outcomes.MemberError` for a refused change."""
    reconfig = member.reconfig
    if op == "member_list":
        _fields(body, set())
    elif op == "member_add":
        _fields(body, {"name", "peerURLs", "clientURLs", "isLearner"})
        name = body.get("name", "")
        if not isinstance(name, str):
            raise wire.WireError("body.name", "expected a string")
        learner = body.get("isLearner", False)
        if type(learner) is not bool:
            raise wire.WireError("body.isLearner", "expected a boolean")
        added = await reconfig.add(
            name, _urls(body, "peerURLs"), _urls(body, "clientURLs"), learner
        )
        members = [encode_member(m) for m in reconfig.list()]
        mine = next((m for m in members if m["ID"] == added.id), None)
        return {"member": mine or {"ID": added.id, "name": added.name}, "members": members}
    elif op == "member_promote":
        await reconfig.promote(_member_id(body))
    elif op == "member_remove":
        await reconfig.remove(_member_id(body))
    else:
        raise wire.WireError("op", f"not a cluster op: {op!r}")
    return {"members": [encode_member(m) for m in reconfig.list()]}
