"""The cluster suite's ServiceAccount steps and the check that a kept token authenticates
exactly while its account lives (``fuzz/raftkube_fuzz/checks/account_tokens.py``): the lags
upstream allows are waited out, and a token that outlives its account is caught."""

from __future__ import annotations

import json

import pytest

from raftkube_fuzz.checks.account_tokens import (
    SUCCESS_CACHE_TTL,
    AccountLog,
    AccountTokens,
    APIView,
    Judged,
)
from raftkube_fuzz.cluster.accounts import KeptToken
from raftkube_fuzz.example import run_steps
from raftkube_fuzz.mutants import MUTANTS
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites import get_suite
from raftkube_spec.kv.types import KeyValue

KEY = b"/registry/serviceaccounts/default/sa-a"


def _account(uid: str, revision: int) -> KeyValue:
    value = json.dumps({"metadata": {"name": "sa-a", "namespace": "default", "uid": uid}})
    return KeyValue(KEY, revision, revision, 1, value.encode())


def _tombstone(revision: int) -> KeyValue:
    return KeyValue(KEY, mod_revision=revision)


def _judged(uid: str) -> Judged:
    kept = KeptToken(1, "default", "sa-a", uid, issued_at=100.0, expires=90_000.0, token="t")
    return Judged(kept)


def test_a_dead_token_is_judged_only_once_the_lags_upstream_allows_are_over() -> None:
    check = AccountTokens()
    check.log.follow({2: (_account("u1", 2),), 3: (_tombstone(3),), 4: (_account("u2", 4),)})
    judged = _judged("u1")
    assert check._basis(judged, APIView(cache_revision=2, clock=50.0, wall=200.0)) is None
    assert check._basis(judged, APIView(cache_revision=3, clock=50.0, wall=200.0)) == "dead"
    judged.accepted_at = 45.0
    assert check._basis(judged, APIView(3, 45.0 + SUCCESS_CACHE_TTL - 1, 200.0)) is None
    assert check._basis(judged, APIView(3, 45.0 + SUCCESS_CACHE_TTL, 200.0)) == "dead"
    judged.refused_dead = True
    assert check._basis(judged, APIView(4, 100.0, 200.0)) is None


def test_a_live_token_is_judged_once_the_cache_holds_its_account() -> None:
    check = AccountTokens()
    check.log.follow({2: (_account("u1", 2),), 3: (_tombstone(3),), 4: (_account("u2", 4),)})
    judged = _judged("u2")
    assert check._basis(judged, APIView(cache_revision=3, clock=50.0, wall=200.0)) is None
    assert check._basis(judged, APIView(cache_revision=4, clock=50.0, wall=200.0)) == "live"
    # The API server's wall clock stepped far behind the token's issue time: not judged.
    assert check._basis(judged, APIView(cache_revision=4, clock=50.0, wall=40.0)) is None
    judged.accepted_live = True
    assert check._basis(judged, APIView(cache_revision=4, clock=50.0, wall=200.0)) is None


def test_the_log_follows_each_account_by_uid() -> None:
    log = AccountLog()
    log.follow({2: (_account("u1", 2),), 3: (_tombstone(3),), 5: (_account("u2", 5),)})
    assert log.revision == 3 and log.by_uid["u1"].deleted == 3 and "u2" not in log.by_uid
    log.follow({4: (), 5: (_account("u2", 5),)})
    assert log.by_uid["u2"].created == 5 and log.by_uid["u2"].deleted is None


STEPS = [
    Step.of("create_account", name="sa-a"),
    Step.of("long_wait", seconds=2.0),
    Step.of("request_token", name="sa-a"),
    Step.of("long_wait", seconds=2.0),
    Step.of("delete_account", name="sa-a"),
    Step.of("long_wait", seconds=2.0),
]


@pytest.mark.parametrize("mutant", [None, "token-outlives-account"])
def test_a_token_that_outlives_its_account_is_caught(mutant: str | None) -> None:
    """On the real code the token is accepted while its account lives and refused after its
    deletion (at the end check, once the 10 s success-cache allowance is over); with the
    mutant it still authenticates then."""
    suite = get_suite("cluster")
    config = {**suite.default_config, "store_faults": "off"}
    if mutant is None:
        run = run_steps(suite, config, 3, STEPS)
    else:
        with MUTANTS[mutant].patch():
            run = run_steps(suite, config, 3, STEPS, mutant=mutant)
    checks = [line.text for line in run.trace().timeline if line.kind == "check"]
    assert any("token 1 of sa-a" in t and "authenticates (HTTP 201)" in t for t in checks)
    if mutant is None:
        assert run.violation is None, run.violation
        assert any("token 1 of sa-a" in t and "refused (401)" in t for t in checks)
    else:
        assert run.violation is not None and run.violation.prop == "DeletedAccountTokens"


@pytest.mark.parametrize("mutant", [None, "token-outlives-account"])
def test_with_accounts_tokens_one_deletion_reaches_the_bug(mutant: str | None) -> None:
    """``accounts=tokens``: the user holds a token of each account from the start, so a single
    deletion (sent by the last step: the end check waits for it) is judged."""
    suite = get_suite("cluster")
    config = {**suite.default_config, "store_faults": "off", "accounts": "tokens"}
    steps = [Step.of("delete_account", name="sa-a")]
    if mutant is None:
        run = run_steps(suite, config, 3, steps)
        assert run.violation is None, run.violation
        checks = [line.text for line in run.trace().timeline if line.kind == "check"]
        assert any("of sa-a" in t and "refused (401)" in t for t in checks)
    else:
        with MUTANTS[mutant].patch():
            run = run_steps(suite, config, 3, steps, mutant=mutant)
        assert run.violation is not None and run.violation.prop == "DeletedAccountTokens"
