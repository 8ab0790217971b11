"""Membership changes as a member serves them: ``member list/add/promote/remove``.

etcd's cluster API, over the Raft core's single-server changes (:mod:`raftkube.raft.membership`,
the spec's rules). A change is served by the leader only, one at a time, in two steps:

1. **Attributes** (``add`` only): the new member's id, name and URLs are committed as a
   ``member_attrs`` entry (:mod:`raftkube.server.cluster_members`). When it applies, every
   member records them and tells its transport where the new peer listens, so that by the
   time the configuration includes the member, every member can reach it. The members the
   leader knows only from its command line are published the same way, first.
2. **Configuration**: ``RaftNode.add_member`` / ``promote_member`` / ``remove_member`` append
   the new configuration, in force at once (a single-server change needs no joint phase).
   The caller is answered when that entry is applied here, i.e. committed; an entry of
   another term at that index (a new leader replaced it) answers ``leader changed``.

The checks are etcd's, with its error texts where etcd has one: a member that does not exist
(``member not found``), promoting a voter (``can only promote a learner member``) or a
learner whose log is not within 90% of the leader's (``... which is in sync with leader``,
etcd's ``readyPercent``), a peer URL another member has (``Peer URLs already exists``), and a
second learner (``too many learner members in cluster``: etcd allows one by default). The
core refuses a change while another is uncommitted or before the leader committed an entry
of its own term (Ongaro's single-server-change bug); that refusal is passed on as
``unavailable``, which a client may retry.

Removing the leader itself: etcd's leader steps down after the removal commits; the Raft
core (like the spec) has no such step, so the leader first hands leadership to the most
up-to-date voter and answers ``not_leader``, and the client retries the removal there.

Member ids are small integers, not etcd's random 64-bit ids, because the core numbers
servers ``0..N-1`` (a member's ``servers`` bound is the largest id it can ever admit, plus
one); a removed member's id is never reused. Simplification: ``member list`` shows every
member as ``started`` (etcd shows ``unstarted`` until a new member has published its name).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import urlsplit

import attrs

from raftkube.net.transport import PeerAddress
from raftkube.raft import NotLeaderError, RejectedError
from raftkube.server.cluster_members import MemberAttributes, MemberTable
from raftkube.server.outcomes import MemberError, Waiter, not_leader, wait_for
from raftkube_spec.raft.types import Membership, ServerId

if TYPE_CHECKING:
    from raftkube.server.member import Member

logger = logging.getLogger(__name__)

LEARNER_READY_FRACTION = 0.9
"""etcd's ``readyPercentThreshold``: a learner may be promoted once its log holds this
fraction of the leader's."""

MAX_LEARNERS = 1
"""etcd's default ``--max-learners``."""

NOT_FOUND = "etcdserver: member not found"
NOT_LEARNER = "etcdserver: can only promote a learner member"
LEARNER_NOT_READY = "etcdserver: can only promote a learner member which is in sync with leader"
PEER_URL_EXISTS = "etcdserver: Peer URLs already exists"
TOO_MANY_LEARNERS = "etcdserver: too many learner members in cluster"


@runtime_checkable
class PeerDirectory(Protocol):
    """A transport that can be told where a peer listens (the TCP transport can; the
    simulator's network routes by id and needs no addresses)."""

    def add_peer(self, peer_id: ServerId, address: PeerAddress) -> None: ...

    def remove_peer(self, peer_id: ServerId) -> None: ...

    def peer_ids(self) -> frozenset[ServerId]: ...


@attrs.frozen
class MemberInfo:
    """One member as ``member list`` shows it."""

    attributes: MemberAttributes
    is_learner: bool


def parse_peer_url(url: str) -> PeerAddress:
    """``http://HOST:PORT`` (or https) as a transport address; ``ValueError`` naming the URL."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise ValueError(f"peer URL {url!r}: expected http://HOST:PORT or https://HOST:PORT")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"peer URL {url!r}: expected no path, query or fragment")
    return PeerAddress(parts.hostname, port)


def client_endpoint(url: str) -> str:
    """A client URL as the member's leader hints spell an endpoint (``host:port``)."""
    parts = urlsplit(url)
    return parts.netloc if parts.scheme and parts.netloc else url


class Reconfiguration:
    """The member table of one member and the membership changes it serves as leader."""

    def __init__(self, member: Member) -> None:
        self._member = member
        self.table = MemberTable()
        """The replicated attributes (built by applied entries and snapshots)."""
        self._seeded = MemberTable()
        """What this process was told at start (``--peers``): shown for members the
        replicated table does not know (a cluster that never changed its membership)."""
        self._waiting: dict[int, tuple[int, Waiter]] = {}
        """Configuration entries this leader appended, by index: their term and waiter."""
        self._applied_members: frozenset[int] | None = None
        """The members of the last configuration entry applied here (None: none yet)."""

    # --- what the log tells every member -------------------------------------------------

    def seed(self, attributes: MemberAttributes) -> None:
        """Record what the command line says about a member (never replicated; the runner
        has already told the transport where it listens)."""
        self._seeded.set(attributes)

    def attributes_applied(self, attributes: MemberAttributes) -> None:
        """A ``member_attrs`` entry was applied (the table itself is updated by
        :func:`~raftkube.server.entries.apply_entry`): reach the member from now on."""
        self._connect(attributes)

    def table_replaced(self) -> None:
        """An installed snapshot replaced the table: reach every member it names."""
        for attributes in self.table:
            self._connect(attributes)

    def configuration_applied(self, index: int, term: int, membership: Membership) -> None:
        """The configuration entry at ``index`` (of ``term``) was applied, i.e. committed."""
        waiting = self._waiting.pop(index, None)
        if waiting is not None:
            expected_term, w = waiting
            if expected_term != term:
                w.error = MemberError("unavailable", "etcdserver: leader changed")
            w.finish()
        # Stop sending to a member this entry removed (one of the previous configuration):
        # not to every id outside it, which includes a member whose attributes are committed
        # and whose addition is still to come.
        previous, self._applied_members = self._applied_members, frozenset(membership.members)
        directory = self._member.transport
        if previous is not None and isinstance(directory, PeerDirectory):
            for j in sorted(previous - self._applied_members):
                if j in directory.peer_ids():
                    directory.remove_peer(j)

    def replaced_up_to(self, index: int) -> None:
        """A leader's snapshot at ``index`` replaced the log: changes waiting at or below it
        cannot be told apart from whatever was committed there."""
        for i in [i for i in self._waiting if i <= index]:
            _, w = self._waiting.pop(i)
            w.error = MemberError("unavailable", "etcdserver: leader changed")
            w.finish()

    def _connect(self, attributes: MemberAttributes) -> None:
        member = self._member
        if attributes.client_urls:
            member.client_endpoints[attributes.id] = client_endpoint(attributes.client_urls[0])
        directory = member.transport
        if attributes.id == member.id or not attributes.peer_urls:
            return
        # A peer already reachable keeps its link (and its queue): the command line or an
        # earlier entry named it, and an address never changes (no ``member update``).
        if not isinstance(directory, PeerDirectory) or attributes.id in directory.peer_ids():
            return
        try:
            directory.add_peer(attributes.id, parse_peer_url(attributes.peer_urls[0]))
        except ValueError as exc:  # validated when proposed; a table from elsewhere may not be
            logger.error("member %d: cannot reach member %d: %s", member.id, attributes.id, exc)

    # --- member list -----------------------------------------------------------------------

    def list(self) -> list[MemberInfo]:
        """Every member of the configuration in force here, by id."""
        membership = self._member.node.membership
        learners = set(membership.learners)
        return [MemberInfo(self._attributes(j), j in learners) for j in membership.members]

    def _attributes(self, member_id: int) -> MemberAttributes:
        known = self.table.get(member_id) or self._seeded.get(member_id)
        if known is not None:
            return known
        endpoint = self._member.client_endpoints.get(member_id)
        return MemberAttributes(member_id, "", (), (endpoint,) if endpoint else ())

    # --- changes (leader only) -------------------------------------------------------------

    async def add(
        self, name: str, peer_urls: tuple[str, ...], client_urls: tuple[str, ...], learner: bool
    ) -> MemberAttributes:
        """Add a member (a learner, or a voter) and return its attributes once committed."""
        self._require_leader()
        if not peer_urls:
            raise MemberError("bad_request", "member peer urls not provided")
        for url in peer_urls:
            try:
                parse_peer_url(url)
            except ValueError as exc:
                raise MemberError("bad_request", str(exc)) from None
        current = self.list()
        taken = {u for m in current for u in m.attributes.peer_urls}
        if taken & set(peer_urls):
            raise MemberError("failed_precondition", PEER_URL_EXISTS)
        if learner and sum(m.is_learner for m in current) >= MAX_LEARNERS:
            raise MemberError("failed_precondition", TOO_MANY_LEARNERS)
        node = self._member.node
        new_id = max(self.table.next_id(), self._seeded.next_id(), max(node.membership.members) + 1)
        if new_id >= node.config.servers:
            last = node.config.servers - 1
            raise MemberError(
                "failed_precondition", f"raftkube: no member id left: ids stop at {last}"
            )
        # Members this leader knows only from its command line are published first, in the
        # same batch: the new member learns their names and client URLs from the log too
        # (its leader hints need them), whatever it was started with.
        for info in current:
            known = info.attributes
            if known.id not in self.table and (known.peer_urls or known.client_urls):
                self._member.proposals.propose(known)
        attributes = MemberAttributes(new_id, name, peer_urls, client_urls)
        pid, w = self._member.proposals.propose(attributes)
        await wait_for(
            w,
            self._member.clock,
            self._member.config.request_timeout,
            lambda: self._member.proposals.forget(pid),
        )
        await self._change(lambda: node.add_member(new_id, learner))
        return attributes

    async def promote(self, member_id: int) -> MemberAttributes:
        """Make learner ``member_id`` a voter once its log has caught up."""
        self._require_leader()
        node = self._member.node
        membership = node.membership
        if member_id not in membership.members:
            raise MemberError("not_found", NOT_FOUND)
        if member_id not in membership.learners:
            raise MemberError("member_not_learner", NOT_LEARNER)
        if node.match_index(member_id) < LEARNER_READY_FRACTION * node.last_index:
            raise MemberError("learner_not_ready", LEARNER_NOT_READY)
        await self._change(lambda: node.promote_member(member_id))
        return self._attributes(member_id)

    async def remove(self, member_id: int) -> MemberAttributes:
        """Remove ``member_id`` from the configuration."""
        self._require_leader()
        member = self._member
        node = member.node
        membership = node.membership
        if member_id not in membership.members:
            raise MemberError("not_found", NOT_FOUND)
        if membership.voters == (member_id,):
            raise MemberError(
                "failed_precondition", "raftkube: cannot remove the last voting member"
            )
        attributes = self._attributes(member_id)
        if member_id == member.id:
            # The core's leader does not remove itself (module docstring): hand over first.
            successor = await member.transfer_leadership()
            if successor is None:
                raise MemberError(
                    "unavailable",
                    "raftkube: the leader could not hand over before removing itself (no "
                    "voter holds its whole log yet, or --read-mode lease forbids handing over)",
                )
            raise not_leader(successor)
        await self._change(lambda: node.remove_member(member_id))
        return attributes

    def _require_leader(self) -> None:
        member = self._member
        if member.disk_fault is not None:
            raise member.disk_fault
        if not member.node.is_leader:
            raise not_leader(member.node.leader)

    async def _change(self, append: Callable[[], int]) -> None:
        """Append a configuration (``append()`` returns its index) and wait until it is
        committed here."""
        member = self._member
        node = member.node
        try:
            index = append()
        except NotLeaderError:
            raise not_leader(node.leader) from None
        except RejectedError as exc:
            raise MemberError("unavailable", f"raftkube: {exc}") from None
        w = Waiter()
        self._waiting[index] = (node.term, w)
        member.kick()
        await wait_for(
            w, member.clock, member.config.request_timeout, lambda: self._waiting.pop(index, None)
        )
