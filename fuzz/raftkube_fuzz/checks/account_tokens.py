"""``DeletedAccountTokens`` on the real cluster: a kept ServiceAccount token authenticates
exactly while its account, by uid, exists.

The spec's property (:func:`raftkube_spec.control.properties.deleted_accounts_authenticate_nobody`)
says a token authenticates only while its ServiceAccount with the uid it names exists. The
real authenticator is only seen from outside, so this check asks it: each token the user keeps
(:mod:`raftkube_fuzz.cluster.accounts`) is presented alone, as ``Authorization: Bearer``,
from the user's machine over the simulated network, in a ``SelfSubjectReview`` (which every
authenticated user may create), and the answer is judged against the store's committed
revisions:

* **refused** (``DeletedAccountTokens``): a token whose account (that uid) the store has
  deleted must get 401, once the two lags upstream allows are over. Upstream's authenticator
  reads the account from the API server's informer cache first (its service-account getter
  asks the lister, and the API only on a miss), so a just-deleted account may still
  authenticate until that cache has seen the deletion; raftkube's verifier does the same with
  the API server's watch cache. And kube-apiserver keeps every successful token
  authentication for 10 s (``--token-success-cache-ttl``'s default wraps the union of token
  authenticators, service accounts' included), so a token accepted shortly before its
  account's deletion may be accepted again until that entry expires; raftkube keeps no such
  cache, but the check allows it. So a probe is judged only if, when it was sent, the API
  server's ServiceAccount cache had applied the deletion's revision (the cache's revision only
  grows, and a restarted API server starts with a fresh list) and the API server's own clock
  had gone :data:`SUCCESS_CACHE_TTL` past the last answer that accepted the token.
* **accepted** (``LiveAccountTokens``): a token whose account lives, with the uid it names and
  not being deleted, when the probe is sent and when it is answered, must not get 401, once
  the API server's cache holds that account's creation (a cache that still holds an earlier
  account of the same name refuses the token, as upstream's lister would) and while the API
  server's wall clock is within the token's times with a margin (its clock is faulted too).

Any other answer (429, 5xx while the store is away) and any connection error prove nothing;
the token is tried again after a later step. Each token is judged once while live and once
after its account is gone (the verdict cannot change afterwards without a new uid, which is a
new token), so a settled token costs no more requests. At the end, once every fault healed,
every token not yet judged is tried until it is (within :data:`END_LIMIT`).

Not seen: tokens bound to pods (the kubelet's), legacy Secret tokens (not issued by
raftkube), and an account deleted with a ``deletionTimestamp`` still standing (upstream
accepts its tokens for a minute): the suite's accounts have no finalizers and go at once.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import attrs
import trio

from raftkube.kubeclient import KubeClient, KubeConnectionError
from raftkube_fuzz.cluster.accounts import KeptToken
from raftkube_fuzz.cluster.components import APIServerProcess, wall_clock
from raftkube_fuzz.timeline import CHECK
from raftkube_fuzz.violation import Violation
from raftkube_fuzz.world.driver import CancelAfter, SimTask, SimulationTimeout, sleep
from raftkube_spec.kv.types import KeyValue

if TYPE_CHECKING:
    from raftkube_fuzz.cluster.plane import ControlPlane
    from raftkube_fuzz.example import Run

PREFIX = b"/registry/serviceaccounts/"
CACHE = "serviceaccounts"
REVIEW = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
REVIEW_BODY = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
SUCCESS_CACHE_TTL = 10.0
"""kube-apiserver's ``--token-success-cache-ttl`` default."""
LEEWAY = 60.0
"""The verifier's leeway on a token's times (go-jose's)."""
CLOCK_MARGIN = 10.0
"""How far inside the leeway the API server's clock must be for a live token to be judged:
its clock may move between the probe's sending and the verifier's reading of it."""
PROBE_LIMIT = 25.0
"""Virtual seconds a probe may take (the client gives up after 10, on a stale pooled
connection after twice that); one cut off proves nothing."""
END_LIMIT = 30.0
"""Virtual seconds the end check tries to judge every token still unjudged."""
END_POLL = 0.5
MAX_KEPT = 6
"""Tokens kept at once; past that the oldest judged one (else the oldest) is let go, so that
probes stay few however many tokens a long example asks for."""


@attrs.define
class AccountLife:
    """One ServiceAccount (one uid) in the store: the revisions of its creation and deletion,
    and whether it has been marked for deletion meanwhile."""

    created: int
    deleted: int | None = None
    deleting: bool = False


class AccountLog:
    """Every ServiceAccount's life, by uid, from the store's committed writes."""

    def __init__(self) -> None:
        self.revision = 1
        self.by_uid: dict[str, AccountLife] = {}
        self._uid_at: dict[bytes, str] = {}

    def follow(self, written: Mapping[int, tuple[KeyValue, ...]]) -> None:
        while self.revision + 1 in written:
            self.revision += 1
            for kv in written[self.revision]:
                if kv.key.startswith(PREFIX):
                    self._apply(self.revision, kv)

    def _apply(self, revision: int, kv: KeyValue) -> None:
        if kv.version == 0:
            uid = self._uid_at.pop(kv.key, None)
            if uid is not None:
                self.by_uid[uid].deleted = revision
            return
        meta = json.loads(kv.value).get("metadata") or {}
        uid = str(meta.get("uid", ""))
        life = self.by_uid.setdefault(uid, AccountLife(revision))
        life.deleting = bool(meta.get("deletionTimestamp"))
        self._uid_at[kv.key] = uid


@attrs.define
class Judged:
    """A kept token and what has been shown of it."""

    kept: KeptToken
    refused_dead: bool = False
    accepted_live: bool = False
    accepted_at: float | None = None
    """The API server's clock when an answer last accepted the token."""
    probing: bool = False

    @property
    def settled(self) -> bool:
        return self.refused_dead


@attrs.frozen
class APIView:
    """What the API server's authenticator reads from, when a probe is sent."""

    cache_revision: int
    clock: float
    """The API server's monotonic clock (what a cache entry's age is measured by)."""
    wall: float
    """The API server's wall clock (what a token's times are judged by)."""


class AccountTokens:
    """The check for one example (kept in ``run.extras``: :func:`of`)."""

    def __init__(self) -> None:
        self.log = AccountLog()
        self.tokens: list[Judged] = []
        self.kept = 0
        """Tokens kept so far (their numbers)."""
        self.violation: Violation | None = None
        self.in_flight = 0
        """The user's account actions under way: the end check waits for them, so that a
        deletion sent by the last step is judged too."""
        self._tasks: list[SimTask[None]] = []

    def tracked(
        self, action: Callable[[KubeClient], Awaitable[str]]
    ) -> Callable[[KubeClient], Awaitable[str]]:
        """``action`` (a user's account action), counted in :attr:`in_flight` while it runs."""

        async def run(client: KubeClient) -> str:
            self.in_flight += 1
            try:
                return await action(client)
            finally:
                self.in_flight -= 1

        return run

    def keep(self, kept: KeptToken) -> None:
        self.tokens.append(Judged(kept))
        if len(self.tokens) > MAX_KEPT:
            settled = [j for j in self.tokens if j.settled and not j.probing]
            self.tokens.remove(settled[0] if settled else self.tokens[0])

    # --- judging -------------------------------------------------------------------------------

    def _basis(self, judged: Judged, view: APIView) -> str | None:
        """What a probe sent now would show: ``dead`` (must be refused), ``live`` (must be
        accepted), or None (nothing, or nothing not already shown)."""
        kept = judged.kept
        life = self.log.by_uid.get(kept.uid)
        if life is None:
            return None
        if life.deleted is not None:
            if judged.refused_dead or view.cache_revision < life.deleted:
                return None
            if (
                judged.accepted_at is not None
                and view.clock < judged.accepted_at + SUCCESS_CACHE_TTL
            ):
                return None
            return "dead"
        if judged.accepted_live or life.deleting or view.cache_revision < life.created:
            return None
        return "live" if self._times_hold(kept, view.wall) else None

    @staticmethod
    def _times_hold(kept: KeptToken, wall: float) -> bool:
        return (
            wall + LEEWAY - CLOCK_MARGIN >= kept.issued_at
            and wall <= kept.expires + LEEWAY - CLOCK_MARGIN
        )

    def _still_live(self, kept: KeptToken, wall: float) -> bool:
        life = self.log.by_uid.get(kept.uid)
        return (
            life is not None
            and life.deleted is None
            and not life.deleting
            and self._times_hold(kept, wall)
        )

    async def probe(self, run: Run, judged: Judged) -> None:
        """Present ``judged``'s token once, if something can be shown now; record the
        verdict."""
        plane = _plane(run)
        client, view = _prober(plane), _view(plane)
        self.log.follow(run.written)
        basis = None if client is None or view is None else self._basis(judged, view)
        if basis is None or client is None or judged.probing:
            return
        judged.probing = True
        try:
            status, _, _ = await client.request(
                "POST",
                REVIEW,
                body=REVIEW_BODY,
                headers={"Authorization": f"Bearer {judged.kept.token}"},
            )
        except KubeConnectionError:
            return
        finally:
            judged.probing = False
        self.log.follow(run.written)
        self._verdict(run, judged, basis, status, _view_now(plane))

    def _verdict(self, run: Run, judged: Judged, basis: str, status: int, now: APIView) -> None:
        kept = judged.kept
        accepted = 200 <= status < 300
        if accepted:
            judged.accepted_at = now.clock
        text = ""
        if basis == "dead":
            deleted = self.log.by_uid[kept.uid].deleted
            if accepted:
                self._fail(
                    "DeletedAccountTokens",
                    f"{kept.describe()} still authenticates (HTTP {status}), though its account "
                    f"was deleted at revision {deleted} and the API server's ServiceAccount "
                    "cache had applied that revision when the request was sent",
                    kept,
                    deleted,
                )
            elif status == 401:
                judged.refused_dead = True
                text = f"{kept.describe()} refused (401): its account was deleted at {deleted}"
        elif accepted:
            judged.accepted_live = True
            text = f"{kept.describe()} authenticates (HTTP {status}): its account lives"
        elif status == 401 and self._still_live(kept, now.wall):
            self._fail(
                "LiveAccountTokens",
                f"{kept.describe()} was refused (401) while its account lived, with that uid, "
                "from before the request until its answer",
                kept,
                None,
            )
        if text:
            run.timeline.add(trio.current_time(), None, CHECK, text)

    def _fail(self, name: str, message: str, kept: KeptToken, deleted: int | None) -> None:
        if self.violation is None:
            evidence = {"token": kept.number, "account": kept.name, "uid": kept.uid,
                        "deleted_at_revision": deleted}  # fmt: skip
            self.violation = Violation(name, message, evidence)

    # --- the hooks -----------------------------------------------------------------------------

    def after_step(self, run: Run) -> None:
        """Raise a verdict (or a probe's own failure) found meanwhile, then start a probe for
        every token something can be shown of now."""
        for task in [t for t in self._tasks if t.done]:
            self._tasks.remove(task)
            # A probe cut off proves nothing (its token is tried again); anything else it
            # raised is the check's own failure.
            with contextlib.suppress(SimulationTimeout):
                task.result()
        if self.violation is not None:
            raise self.violation
        self.log.follow(run.written)
        plane = _plane(run)
        view = _view(plane)
        if view is None or _prober(plane) is None:
            return
        for judged in self.tokens:
            if not judged.probing and self._basis(judged, view) is not None:
                self._tasks.append(run.sim.spawn(self.probe, run, judged, limit=PROBE_LIMIT))

    def at_end(self, run: Run) -> None:
        """Once every fault healed and the user's account actions under way are done: judge
        every token not yet judged, within :data:`END_LIMIT`."""

        async def judge_all() -> None:
            deadline = trio.current_time() + END_LIMIT
            while trio.current_time() < deadline and self.violation is None:
                self.log.follow(run.written)
                plane = _plane(run)
                view = _view(plane)
                pending = [j for j in self.tokens if not j.settled]
                if view is not None:
                    pending = [j for j in pending if self._unjudged(j)]
                    for judged in pending:
                        if trio.current_time() >= deadline:
                            break
                        with CancelAfter(PROBE_LIMIT):
                            await self.probe(run, judged)
                if not pending and not self.in_flight:
                    return
                await sleep(END_POLL)

        run.sim.call(judge_all, limit=END_LIMIT + PROBE_LIMIT + 2.0)
        self.after_step(run)
        unjudged = [j.kept.describe() for j in self.tokens if self._unjudged(j)]
        if unjudged:
            text = f"not judged within {END_LIMIT:.0f} s of the end: {', '.join(unjudged)}"
            run.timeline.add(run.sim.now, None, CHECK, text)

    def _unjudged(self, judged: Judged) -> bool:
        """Whether something is still to be shown of ``judged``: its account is gone and no
        refusal was seen, or it lives and no acceptance was seen."""
        life = self.log.by_uid.get(judged.kept.uid)
        if life is None:
            return False
        if life.deleted is not None:
            return not judged.refused_dead
        return not judged.accepted_live and not life.deleting


def of(run: Run) -> AccountTokens:
    """The example's check, made at its first use."""
    check = run.extras.setdefault("account_tokens", AccountTokens())
    assert isinstance(check, AccountTokens)
    return check


def _plane(run: Run) -> ControlPlane:
    plane = run.extras["plane"]
    return plane  # type: ignore[no-any-return]


def _prober(plane: ControlPlane) -> KubeClient | None:
    process = plane.user.process
    return getattr(process, "prober", None)


def _view(plane: ControlPlane) -> APIView | None:
    """The API server's ServiceAccount cache revision and wall clock, if it is up and
    serving."""
    process = plane.apiserver.process
    if not isinstance(process, APIServerProcess) or process.running is None:
        return None
    cache = process.running.caches.get(CACHE)
    if cache is None or not cache.ready:
        return None
    return APIView(cache.revision, *_clocks(plane))


def _view_now(plane: ControlPlane) -> APIView:
    """The API server's clocks now (its cache as it is, or 0 if it is down)."""
    view = _view(plane)
    return view if view is not None else APIView(0, *_clocks(plane))


def _clocks(plane: ControlPlane) -> tuple[float, float]:
    clock = plane.apiserver.clock
    return clock.now(), wall_clock(clock)()
