"""Behaviour scenario of the API server read mutant (:mod:`raftkube_fuzz.mutants.reads`): the
patch changes what a small deterministic scenario does, and is fully undone on exit. The
marker diff of every mutant is in ``test_mutants.py``."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from raftkube.apiserver.handlers import dispatch
from raftkube.apiserver.listing import ListResult
from raftkube.apiserver.request import Request, Response
from raftkube.apiserver.resources import lookup
from tests.helpers.mutant_scenarios import Scenario, check_scenario


def a_consistent_list_while_the_cache_lags() -> str:
    """The store is at revision 10; the pods' watch cache has only reached 5. The
    resourceVersion a LIST without one is answered with."""
    pods = lookup("", "v1", "pods")

    async def store_list(*args: Any, **kwargs: Any) -> ListResult:
        return ListResult([], 10)

    def cache_list(*args: Any, **kwargs: Any) -> ListResult:
        return ListResult([], 5)

    request = Request("GET", "/api/v1/pods", {}, {})
    call: Any = SimpleNamespace(
        param=request.param,
        request=request,
        resource=pods,
        namespace="",
        services=SimpleNamespace(
            store=SimpleNamespace(list=store_list),
            cache=lambda info: SimpleNamespace(list=cache_list),
        ),
    )
    response = trio.run(dispatch._MAIN["list"], call)
    assert isinstance(response, Response)
    return str(json.loads(response.body)["metadata"]["resourceVersion"])


SCENARIOS: dict[str, Scenario] = {
    "list-served-stale": (a_consistent_list_while_the_cache_lags, "10", "5"),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_patch_changes_behavior_and_is_undone(name: str) -> None:
    check_scenario(name, SCENARIOS[name])
