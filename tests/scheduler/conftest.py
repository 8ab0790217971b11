"""The API server harness of ``tests/apiserver`` (a real API server on a real one-member store
in the test's Trio run) for the scheduler's process tests."""

from __future__ import annotations

from tests.apiserver.conftest import APIHarness, api

__all__ = ["APIHarness", "api"]
