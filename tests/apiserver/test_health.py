"""Health endpoints worded as upstream's ``healthz`` package words them."""

from __future__ import annotations

from raftkube.apiserver.health import CheckResult, health, serve_health, single_check
from raftkube.apiserver.request import Request

CHECKS = [CheckResult("ping"), CheckResult("log"), CheckResult("etcd")]
FAILING = [CheckResult("ping"), CheckResult("etcd", "context deadline exceeded")]


def test_passing_checks() -> None:
    assert health("livez", CHECKS) == (200, "ok")
    assert health("livez", CHECKS, verbose=True) == (
        200,
        "[+]ping ok\n[+]log ok\n[+]etcd ok\nlivez check passed\n",
    )
    assert health("readyz", [], verbose=True) == (200, "readyz check passed\n")


def test_a_failing_check_is_listed_without_its_reason() -> None:
    status, body = health("readyz", FAILING)
    assert status == 500
    assert body == "[+]ping ok\n[-]etcd failed: reason withheld\nreadyz check failed\n"
    assert "deadline" not in body


def test_excluded_checks() -> None:
    status, body = health("healthz", FAILING, verbose=True, exclude=["etcd", "nope", "nope"])
    assert status == 200
    assert body == (
        "[+]ping ok\n[+]etcd excluded: ok\n"
        'warn: some health checks cannot be excluded: no matches for "nope"\n'
        "healthz check passed\n"
    )


def test_single_checks() -> None:
    assert single_check(CheckResult("etcd")) == (200, "ok")
    assert single_check(FAILING[1]) == (500, "internal server error: context deadline exceeded\n")


def _get(path: str, **query: tuple[str, ...]) -> Request:
    return Request("GET", path, query, {})


def test_served_health() -> None:
    checks = {"livez": CHECKS, "readyz": FAILING}
    live = serve_health(_get("/livez"), checks)
    assert live is not None and (live.status, live.body) == (200, b"ok")
    assert dict(live.headers)["content-type"] == "text/plain; charset=utf-8"
    verbose = serve_health(_get("/livez", verbose=("",)), checks)
    assert verbose is not None and verbose.body.endswith(b"livez check passed\n")
    ready = serve_health(_get("/readyz"), checks)
    assert ready is not None and ready.status == 500
    excluded = serve_health(_get("/readyz", exclude=("etcd",)), checks)
    assert excluded is not None and excluded.status == 200
    one = serve_health(_get("/readyz/etcd"), checks)
    assert one is not None and one.status == 500
    assert one.body == b"internal server error: context deadline exceeded\n"
    slashed = {"readyz": [CheckResult("poststarthook/start-informers")]}
    hook = serve_health(_get("/readyz/poststarthook/start-informers"), slashed)
    assert hook is not None and hook.body == b"ok"
    assert serve_health(_get("/readyz/nope"), checks) is None
    assert serve_health(_get("/version"), checks) is None
    empty = serve_health(_get("/healthz"), checks)
    assert empty is not None and empty.body == b"ok"
