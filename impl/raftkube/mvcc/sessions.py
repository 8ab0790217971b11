"""Client sessions: apply each client request at most once (Raft dissertation, section 6.3).

A client that times out retries, and Raft may then commit the same request
twice. To keep writes linearizable the state machine remembers, per client,
the results of the sequences it has applied; a committed retry of an applied
sequence is answered from that memory without being applied again.

The rules, all functions of the applied log alone so every replica (and a
replica restored from a snapshot) keeps exactly the same sessions:

* **Registration.** A client opens a session with a committed register entry
  before tagging requests; by convention its id is that entry's log index,
  which makes ids unique without coordination. Requests from an unregistered
  (or expired) client are refused with :attr:`SessionRejection.EXPIRED`: the
  state machine cannot know whether such a request was applied before, so
  applying it could apply it twice. The client must register again and treat
  its outstanding requests as of unknown outcome.
* **Acknowledgement.** Each request carries ``lowest_unacked``, the lowest
  sequence the client still awaits an answer for (by default the request's own
  sequence, i.e. one request at a time). Results below it are dropped, and a
  request below it is refused with :attr:`SessionRejection.STALE_SEQUENCE`
  rather than re-applied. A client therefore bounds its own session's memory.
* **Expiry.** At most ``capacity`` sessions are kept. Registering one more
  evicts the session used least recently, where "use" is a register or a
  tagged request, in log order. No clock is involved, so expiry is
  deterministic across replicas.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Iterator

import attrs

from raftkube_spec.kv.responses import Result

DEFAULT_SESSION_CAPACITY = 10_000
"""Sessions kept before the least recently used is expired."""


class SessionRejection(enum.Enum):
    """Why a tagged request was refused without being applied."""

    EXPIRED = "raftkube: client session expired or not registered"
    STALE_SEQUENCE = "raftkube: request sequence already acknowledged by the client"


@attrs.frozen
class SessionError:
    """A tagged request the session table refused; nothing was applied."""

    code: SessionRejection
    client_id: int
    sequence: int

    @property
    def message(self) -> str:
        return self.code.value


@attrs.define(slots=True, eq=False)
class ClientSession:
    """One client's memory: results of applied sequences it has not acknowledged yet."""

    client_id: int
    lowest_unacked: int = 0
    results: dict[int, Result] = attrs.field(factory=dict)

    def acknowledge(self, lowest_unacked: int) -> None:
        """The client has answers for everything below ``lowest_unacked``: forget those."""
        if lowest_unacked <= self.lowest_unacked:
            return
        self.lowest_unacked = lowest_unacked
        for sequence in [s for s in self.results if s < lowest_unacked]:
            del self.results[sequence]


class SessionTable:
    """The sessions of every registered client, in least-recently-used-first order."""

    __slots__ = ("_sessions", "capacity")

    def __init__(self, capacity: int = DEFAULT_SESSION_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("session capacity must be positive")
        self.capacity = capacity
        self._sessions: OrderedDict[int, ClientSession] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, client_id: int) -> bool:
        return client_id in self._sessions

    def sessions(self) -> Iterator[ClientSession]:
        """Every session, least recently used first (the order expiry follows)."""
        return iter(self._sessions.values())

    def register(self, client_id: int) -> None:
        """Open a session, or refresh an existing one; may expire the least recently used."""
        sessions = self._sessions
        if client_id in sessions:
            sessions.move_to_end(client_id)
            return
        sessions[client_id] = ClientSession(client_id)
        while len(sessions) > self.capacity:
            sessions.popitem(last=False)

    def unregister(self, client_id: int) -> None:
        """Close a session (a client that is done); unknown ids are ignored."""
        self._sessions.pop(client_id, None)

    def begin(
        self, client_id: int, sequence: int, lowest_unacked: int | None = None
    ) -> Result | SessionError | None:
        """Judge a tagged request: its cached result, a refusal, or ``None`` to apply it now.

        After applying, the caller must :meth:`finish` it with the result.
        """
        session = self._sessions.get(client_id)
        if session is None:
            return SessionError(SessionRejection.EXPIRED, client_id, sequence)
        self._sessions.move_to_end(client_id)
        session.acknowledge(sequence if lowest_unacked is None else lowest_unacked)
        cached = session.results.get(sequence)
        if cached is not None:
            return cached
        if sequence < session.lowest_unacked:
            return SessionError(SessionRejection.STALE_SEQUENCE, client_id, sequence)
        return None

    def finish(self, client_id: int, sequence: int, result: Result) -> None:
        """Remember the result of a sequence that :meth:`begin` let through."""
        self._sessions[client_id].results[sequence] = result

    def restore(self, session: ClientSession) -> None:
        """Append a session as most recently used; snapshots restore them oldest first."""
        self._sessions[session.client_id] = session
