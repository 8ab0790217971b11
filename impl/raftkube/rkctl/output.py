"""etcdctl's output formats: ``simple``, ``json``, ``fields`` and ``table``.

Each printer reproduces what etcdctl writes for the same response, because scripts parse it:
``simple`` prints keys and values on their own lines, ``json`` is Go's ``encoding/json`` view
of etcd's protobuf messages (base64 bytes, zero fields omitted, ``Response`` oneof wrappers),
``fields`` is etcdctl's ``"Name" : value`` lines and ``table`` (member and endpoint commands
only) an ASCII grid, drawn with rich.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.table import Table

from raftkube.api.wire import WireHeader
from raftkube.rkctl.encoding import (
    b64,
    cluster_hex,
    go_duration,
    go_quote,
    hex_text,
    json_header,
    json_health,
    json_kv,
    json_member,
    json_response,
    json_status,
    text,
)
from raftkube.rkctl.errors import CommandError
from raftkube.rkctl.rows import HealthRow, MemberRow, StatusRow
from raftkube_spec.kv.responses import (
    DeleteRangeResponse,
    LeaseGrantResponse,
    LeaseKeepAliveResponse,
    LeaseTimeToLiveResponse,
    PutResponse,
    RangeResponse,
    ResponseOp,
    TxnResponse,
)
from raftkube_spec.kv.types import Event, EventType, KeyValue

__all__ = [
    "FORMATS",
    "HealthRow",
    "MemberRow",
    "Printer",
    "StatusRow",
    "go_duration",
    "go_quote",
]

FORMATS = ("simple", "json", "fields", "table")
_BATCH = 4096
"""KeyValues printed per write in ``get``'s simple output."""


class Printer:
    """Writes responses to ``out`` in one of :data:`FORMATS`."""

    def __init__(self, out: TextIO, fmt: str = "simple", *, hex: bool = False) -> None:
        self.out = out
        self.fmt = fmt
        self.hex = hex
        self.value_only = False

    # --- primitives ------------------------------------------------------------------------

    def line(self, s: str = "") -> None:
        self.out.write(s + "\n")

    def flush(self) -> None:
        """Flush now: watch and keep-alive output is read live through pipes."""
        self.out.flush()

    def _json(self, value: Any) -> None:
        self.line(json.dumps(value, separators=(",", ":"), ensure_ascii=False))

    def _bytes(self, data: bytes) -> str:
        return hex_text(data) if self.hex else text(data)

    def _simple_kv(self, kv: KeyValue) -> None:
        # etcdctl prints the value line even when it is empty (e.g. --keys-only).
        if not self.value_only:
            self.line(self._bytes(kv.key))
        self.line(self._bytes(kv.value))

    def _fields_header(self, h: WireHeader | None, revision: int) -> None:
        if h is not None:
            self.line(f'"ClusterID" : {h.cluster_id}')
            self.line(f'"MemberID" : {h.member_id}')
            self.line(f'"Revision" : {h.revision}')
            self.line(f'"RaftTerm" : {h.raft_term}')
        else:
            self.line('"ClusterID" : 0')
            self.line('"MemberID" : 0')
            self.line(f'"Revision" : {revision}')
            self.line('"RaftTerm" : 0')

    def _fields_kv(self, prefix: str, kv: KeyValue) -> None:
        self.line(f'"{prefix}Key" : {go_quote(text(kv.key))}')
        self.line(f'"{prefix}CreateRevision" : {kv.create_revision}')
        self.line(f'"{prefix}ModRevision" : {kv.mod_revision}')
        self.line(f'"{prefix}Version" : {kv.version}')
        self.line(f'"{prefix}Value" : {go_quote(text(kv.value))}')
        self.line(f'"{prefix}Lease" : {kv.lease}')

    def _unsupported(self) -> CommandError:
        return CommandError(f"{self.fmt} is not supported as output format")

    def _table(self, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        """An ASCII grid like etcdctl's tablewriter output (upper-case, centred headers)."""
        table = Table(box=box.ASCII2, show_lines=False, header_style=None, pad_edge=True)
        for h in headers:
            table.add_column(h.upper(), justify="center", no_wrap=True, overflow="ignore")
        for row in rows:
            table.add_row(*row)
        console = Console(
            file=self.out,
            width=1000,
            color_system=None,
            force_terminal=False,
            highlight=False,
            soft_wrap=True,
        )
        with console.capture() as capture:
            console.print(table)
        # rich pads every line to the console width; etcdctl's lines end at the border.
        for ln in capture.get().splitlines():
            self.line(ln.rstrip())

    # --- KV --------------------------------------------------------------------------------

    def put(self, h: WireHeader | None, resp: PutResponse) -> None:
        if self.fmt == "simple":
            self.line("OK")
            if resp.prev_kv is not None:
                self._simple_kv(resp.prev_kv)
        elif self.fmt == "json":
            self._json(json_response(resp, h))
        elif self.fmt == "fields":
            self._fields_header(h, resp.header.revision)
            if resp.prev_kv is not None:
                self._fields_kv("Prev", resp.prev_kv)
        else:
            raise self._unsupported()

    def get(self, h: WireHeader | None, resp: RangeResponse) -> None:
        if self.fmt == "simple":
            # Written a few thousand lines at a time: a million keys as two million writes
            # took longer than fetching them.
            kvs = resp.kvs
            for start in range(0, len(kvs), _BATCH):
                lines = []
                for kv in kvs[start : start + _BATCH]:
                    if not self.value_only:
                        lines.append(self._bytes(kv.key))
                    lines.append(self._bytes(kv.value))
                lines.append("")
                self.out.write("\n".join(lines))
        elif self.fmt == "json":
            self._json(json_response(resp, h))
        elif self.fmt == "fields":
            self._fields_header(h, resp.header.revision)
            for kv in resp.kvs:
                self._fields_kv("", kv)
            self.line(f'"More" : {str(resp.more).lower()}')
            self.line(f'"Count" : {resp.count}')
        else:
            raise self._unsupported()

    def delete(self, h: WireHeader | None, resp: DeleteRangeResponse) -> None:
        if self.fmt == "simple":
            self.line(str(resp.deleted))
            for kv in resp.prev_kvs:
                self._simple_kv(kv)
        elif self.fmt == "json":
            self._json(json_response(resp, h))
        elif self.fmt == "fields":
            self._fields_header(h, resp.header.revision)
            self.line(f'"Deleted" : {resp.deleted}')
            for kv in resp.prev_kvs:
                self._fields_kv("Prev", kv)
        else:
            raise self._unsupported()

    def txn(self, h: WireHeader | None, resp: TxnResponse) -> None:
        if self.fmt == "json":
            self._json(json_response(resp, h))
            return
        if self.fmt == "simple":
            self.line("SUCCESS" if resp.succeeded else "FAILURE")
            for r in resp.responses:
                self.line()
                self._op(r)
        elif self.fmt == "fields":
            self._fields_header(h, resp.header.revision)
            self.line(f'"Succeeded" : {str(resp.succeeded).lower()}')
            for r in resp.responses:
                self._op(r)
        else:
            raise self._unsupported()

    def _op(self, r: ResponseOp) -> None:
        match r:
            case PutResponse():
                self.put(None, r)
            case RangeResponse():
                self.get(None, r)
            case DeleteRangeResponse():
                self.delete(None, r)
            case TxnResponse():
                self.txn(None, r)

    def watch(self, events: Sequence[Event]) -> None:
        if self.fmt == "simple":
            for ev in events:
                self.line(ev.type.name)
                if ev.prev_kv is not None:
                    self._simple_kv(ev.prev_kv)
                self._simple_kv(ev.kv)
        elif self.fmt == "json":
            evs = []
            for ev in events:
                e: dict[str, Any] = {"kv": json_kv(ev.kv)}
                if ev.type is EventType.DELETE:
                    e["type"] = 1  # mvccpb.DELETE; PUT is 0 and omitted
                if ev.prev_kv is not None:
                    e["prev_kv"] = json_kv(ev.prev_kv)
                evs.append(e)
            revision = max((ev.kv.mod_revision for ev in events), default=0)
            self._json(
                {
                    "Header": json_header(None, revision),
                    "Events": evs,
                    "CompactRevision": 0,
                    "Canceled": False,
                    "Created": False,
                }
            )
        elif self.fmt == "fields":
            revision = max((ev.kv.mod_revision for ev in events), default=0)
            self._fields_header(None, revision)
            for ev in events:
                self.line(f'"Type" : {ev.type.name}')
                if ev.prev_kv is not None:
                    self._fields_kv("Prev", ev.prev_kv)
                self._fields_kv("", ev.kv)
        else:
            raise self._unsupported()
        self.flush()

    # --- leases ----------------------------------------------------------------------------

    def _lease_json(self, h: WireHeader | None, revision: int, **fields: Any) -> None:
        # clientv3's lease responses embed *pb.ResponseHeader, so its fields sit at top level.
        self._json({**json_header(h, revision), **fields})

    def lease_grant(self, h: WireHeader | None, resp: LeaseGrantResponse) -> None:
        if self.fmt == "simple":
            self.line(f"lease {resp.id:016x} granted with TTL({resp.ttl}s)")
        elif self.fmt == "json":
            self._lease_json(h, resp.header.revision, ID=resp.id, TTL=resp.ttl, Error="")
        elif self.fmt == "fields":
            self._fields_header(h, resp.header.revision)
            self.line(f'"ID" : {resp.id}')
            self.line(f'"TTL" : {resp.ttl}')
        else:
            raise self._unsupported()

    def lease_revoke(self, h: WireHeader | None, lease_id: int, revision: int) -> None:
        if self.fmt == "simple":
            self.line(f"lease {lease_id:016x} revoked")
        elif self.fmt == "json":
            self._json({"header": json_header(h, revision)})
        elif self.fmt == "fields":
            self._fields_header(h, revision)
        else:
            raise self._unsupported()

    def lease_keepalive(self, h: WireHeader | None, resp: LeaseKeepAliveResponse) -> None:
        if self.fmt == "simple":
            self.line(f"lease {resp.id:016x} keepalived with TTL({resp.ttl})")
        elif self.fmt == "json":
            self._lease_json(h, resp.header.revision, ID=resp.id, TTL=resp.ttl)
        elif self.fmt == "fields":
            self._fields_header(h, resp.header.revision)
            self.line(f'"ID" : {resp.id}')
            self.line(f'"TTL" : {resp.ttl}')
        else:
            raise self._unsupported()
        self.flush()

    def lease_ttl(self, h: WireHeader | None, resp: LeaseTimeToLiveResponse, keys: bool) -> None:
        if self.fmt == "simple":
            if resp.granted_ttl == 0 and resp.ttl == -1:
                self.line(f"lease {resp.id:016x} already expired")
                return
            txt = f"lease {resp.id:016x} granted with TTL({resp.granted_ttl}s), "
            txt += f"remaining({resp.ttl}s)"
            if keys:
                # Go's %v of a []string: space separated inside brackets.
                txt += f", attached keys([{' '.join(text(k) for k in resp.keys)}])"
            self.line(txt)
        elif self.fmt == "json":
            self._lease_json(
                h,
                resp.header.revision,
                id=resp.id,
                ttl=resp.ttl,
                **{"granted-ttl": resp.granted_ttl},
                keys=[b64(k) for k in resp.keys] or None,
            )
        elif self.fmt == "fields":
            self._fields_header(h, resp.header.revision)
            self.line(f'"ID" : {resp.id}')
            self.line(f'"TTL" : {resp.ttl}')
            self.line(f'"GrantedTTL" : {resp.granted_ttl}')
            for k in resp.keys:
                self.line(f'"Key" : {go_quote(text(k))}')
        else:
            raise self._unsupported()

    def compaction(self, revision: int) -> None:
        if self.fmt != "simple":
            raise self._unsupported()
        self.line(f"compacted revision {revision}")

    # --- cluster ---------------------------------------------------------------------------

    def member_list(self, h: WireHeader, members: Sequence[MemberRow]) -> None:
        headers = ["ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"]
        rows = [
            [
                f"{m.id:x}",
                "started",
                m.name,
                ",".join(m.peer_urls),
                ",".join(m.client_urls),
                str(m.is_learner).lower(),
            ]
            for m in members
        ]
        if self.fmt == "simple":
            for row in rows:
                self.line(", ".join(row))
        elif self.fmt == "table":
            self._table(headers, rows)
        elif self.fmt == "json":
            self._json(
                {
                    "header": json_header(h, h.revision),
                    "members": [json_member(m) for m in members],
                }
            )
        elif self.fmt == "fields":
            self._fields_header(h, h.revision)
            self._fields_members(members)

    def member_add(
        self,
        h: WireHeader,
        added: MemberRow,
        members: Sequence[MemberRow],
        name: str,
        peer_urls_flag: str,
    ) -> None:
        """etcdctl's ``member add`` answer; in the simple format followed, as etcdctl does,
        by the environment a new member is started with (its name substituted for the new
        member's in ``ETCD_INITIAL_CLUSTER``)."""
        if self.fmt in ("simple", "table"):
            as_learner = " as learner " if added.is_learner else " "
            self.line(f"Member {added.id:16x} added{as_learner}to cluster {cluster_hex(h)}")
            if self.fmt == "table":
                return  # etcdctl prints the environment only with its simple printer
            cluster = ",".join(
                f"{name if m.id == added.id else m.name}={u}" for m in members for u in m.peer_urls
            )
            self.line()
            self.line(f"ETCD_NAME={go_quote(name)}")
            self.line(f"ETCD_INITIAL_CLUSTER={go_quote(cluster)}")
            self.line(f"ETCD_INITIAL_ADVERTISE_PEER_URLS={go_quote(peer_urls_flag)}")
            self.line('ETCD_INITIAL_CLUSTER_STATE="existing"')
        elif self.fmt == "json":
            self._json(
                {
                    "header": json_header(h, h.revision),
                    "member": json_member(added),
                    "members": [json_member(m) for m in members],
                }
            )
        elif self.fmt == "fields":
            self._fields_header(h, h.revision)
            self._fields_members([added])
            self._fields_members(members)
        else:
            raise self._unsupported()

    def member_changed(
        self, verb: str, member_id: int, h: WireHeader, members: Sequence[MemberRow]
    ) -> None:
        """etcdctl's ``member remove`` / ``member promote`` answer (``verb``: "removed from"
        or "promoted in")."""
        if self.fmt in ("simple", "table"):
            self.line(f"Member {member_id:16x} {verb} cluster {cluster_hex(h)}")
        elif self.fmt == "json":
            self._json(
                {
                    "header": json_header(h, h.revision),
                    "members": [json_member(m) for m in members],
                }
            )
        elif self.fmt == "fields":
            self._fields_header(h, h.revision)
            self._fields_members(members)
        else:
            raise self._unsupported()

    def _fields_members(self, members: Sequence[MemberRow]) -> None:
        for m in members:
            self.line(f'"ID" : {m.id}')
            self.line(f'"Name" : {go_quote(m.name)}')
            for u in m.peer_urls:
                self.line(f'"PeerURL" : {go_quote(u)}')
            for u in m.client_urls:
                self.line(f'"ClientURL" : {go_quote(u)}')
            self.line(f'"IsLearner" : {str(m.is_learner).lower()}')
            self.line()

    def endpoint_status(self, statuses: Sequence[StatusRow]) -> None:
        headers = [
            "Endpoint",
            "ID",
            "Version",
            "Is Leader",
            "Is Learner",
            "Raft Term",
            "Raft Index",
            "Raft Applied Index",
            "Errors",
        ]
        rows = [
            [
                s.endpoint,
                f"{s.header.member_id:x}",
                s.version,
                str(s.leader == s.header.member_id).lower(),
                str(s.is_learner).lower(),
                str(s.header.raft_term),
                str(s.raft_index),
                str(s.raft_applied_index),
                ", ".join(s.errors),
            ]
            for s in statuses
        ]
        if self.fmt == "simple":
            for row in rows:
                self.line(", ".join(row))
        elif self.fmt == "table":
            self._table(headers, rows)
        elif self.fmt == "json":
            self._json([json_status(s) for s in statuses])
        elif self.fmt == "fields":
            for s in statuses:
                self._fields_header(s.header, s.header.revision)
                self.line(f'"Version" : {go_quote(s.version)}')
                self.line(f'"Leader" : {s.leader}')
                self.line(f'"IsLearner" : {str(s.is_learner).lower()}')
                self.line(f'"RaftIndex" : {s.raft_index}')
                self.line(f'"RaftTerm" : {s.header.raft_term}')
                self.line(f'"RaftAppliedIndex" : {s.raft_applied_index}')
                self.line(f'"Errors" : [{" ".join(s.errors)}]')
                self.line(f'"Endpoint" : {go_quote(s.endpoint)}')
                self.line()

    def endpoint_health(self, checks: Sequence[HealthRow], err: TextIO) -> None:
        """``simple`` goes to stderr, exactly as etcdctl writes it; the others to stdout."""
        if self.fmt == "simple":
            for c in checks:
                if c.health:
                    err.write(
                        f"{c.endpoint} is healthy: successfully committed proposal: "
                        f"took = {go_duration(c.took)}\n"
                    )
                else:
                    err.write(f"{c.endpoint} is unhealthy: failed to commit proposal: {c.error}\n")
        elif self.fmt == "table":
            rows = [
                [c.endpoint, str(c.health).lower(), go_duration(c.took), c.error] for c in checks
            ]
            self._table(["Endpoint", "Health", "Took", "Error"], rows)
        elif self.fmt == "json":
            self._json([json_health(c) for c in checks])
        elif self.fmt == "fields":
            for c in checks:
                self.line(f'"Endpoint" : {go_quote(c.endpoint)}')
                self.line(f'"Health" : {str(c.health).lower()}')
                self.line(f'"Took" : {go_duration(c.took)}')
                self.line(f'"Error" : {c.error}')
                self.line()
