"""Fixtures for the proxy's tests: the API server harness of ``tests/apiserver`` (a real API
server on a real one-member store in the test's Trio run)."""

from __future__ import annotations

from tests.apiserver.conftest import APIHarness, api

__all__ = ["APIHarness", "api"]
