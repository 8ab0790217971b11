"""``/healthz``, ``/livez`` and ``/readyz``: the API server's health, as upstream words it.

The caller runs its checks (can the store be reached, has the watch cache synced, ...) and
hands the results in; this module only words the answer the way
``k8s.io/apiserver/pkg/server/healthz`` does, because load balancers, kubeadm-style scripts and
``kubectl get --raw='/readyz?verbose'`` read it:

* all passing: ``200 ok`` (with ``?verbose``: one ``[+]name ok`` line per check, then
  ``livez check passed``);
* any failing: ``500`` and always the verbose listing, the failure's reason withheld
  (``[-]etcd failed: reason withheld``) since these endpoints are public, then
  ``livez check failed``;
* ``?exclude=name`` skips a check (``[+]name excluded: ok``) and warns about names that match
  no check;
* ``/livez/etcd`` answers one check: ``ok`` or ``500 internal server error: <reason>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from raftkube.apiserver.request import Request, Response

ENDPOINTS = ("healthz", "livez", "readyz")
_TEXT_HEADERS = (
    ("content-type", "text/plain; charset=utf-8"),
    ("x-content-type-options", "nosniff"),
)


@attrs.frozen
class CheckResult:
    """One check's outcome: ``error`` is None when it passed, else why it failed."""

    name: str
    error: str | None = None


def health(
    endpoint: str,
    checks: Sequence[CheckResult],
    *,
    verbose: bool = False,
    exclude: Sequence[str] = (),
) -> tuple[int, str]:
    """The status code and body of ``GET /{endpoint}`` given the checks' results."""
    excluded = list(dict.fromkeys(exclude))
    lines: list[str] = []
    failed = False
    for check in checks:
        if check.name in excluded:
            excluded.remove(check.name)
            lines.append(f"[+]{check.name} excluded: ok\n")
        elif check.error is not None:
            failed = True
            lines.append(f"[-]{check.name} failed: reason withheld\n")
        else:
            lines.append(f"[+]{check.name} ok\n")
    if excluded:
        quoted = ",".join(f'"{name}"' for name in excluded)
        lines.append(f"warn: some health checks cannot be excluded: no matches for {quoted}\n")
    if failed:
        return 500, "".join(lines) + f"{endpoint} check failed\n"
    if not verbose:
        return 200, "ok"
    return 200, "".join(lines) + f"{endpoint} check passed\n"


def single_check(check: CheckResult) -> tuple[int, str]:
    """The status code and body of ``GET /{endpoint}/{check}``."""
    if check.error is None:
        return 200, "ok"
    return 500, f"internal server error: {check.error}\n"


def serve_health(req: Request, checks: Mapping[str, Sequence[CheckResult]]) -> Response | None:
    """The answer to ``/healthz``, ``/livez``, ``/readyz`` or one of their checks, from the
    results ``checks`` holds per endpoint; None for another path or an unknown check."""
    endpoint, _, name = req.path.strip("/").partition("/")
    if endpoint not in ENDPOINTS:
        return None
    results = checks.get(endpoint, ())
    if name:  # check names may hold a slash: poststarthook/start-informers
        check = next((c for c in results if c.name == name), None)
        if check is None:
            return None
        status, body = single_check(check)
    else:
        status, body = health(
            endpoint,
            results,
            verbose="verbose" in req.query,
            exclude=req.query.get("exclude", ()),
        )
    return Response(status, _TEXT_HEADERS, body.encode())
