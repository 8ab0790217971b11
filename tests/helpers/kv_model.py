"""Driving the pure KV model in tests: apply requests in order, read a key back, unwrap an
error code."""

from __future__ import annotations

from raftkube_spec.kv import (
    ErrorCode,
    KeyValue,
    KVError,
    KVState,
    RangeRequest,
    RangeResponse,
    Request,
    Result,
    apply,
    initial_state,
)


def run(*requests: Request, state: KVState | None = None) -> tuple[KVState, list[Result]]:
    s = initial_state() if state is None else state
    results = []
    for req in requests:
        s, r = apply(s, req)
        results.append(r)
    return s, results


def get(state: KVState, key: bytes, **kw: object) -> RangeResponse:
    _, r = apply(state, RangeRequest(key, **kw))  # type: ignore[arg-type]
    assert isinstance(r, RangeResponse), r
    return r


def kv_of(state: KVState, key: bytes, revision: int = 0) -> KeyValue | None:
    r = get(state, key, revision=revision)
    return r.kvs[0] if r.kvs else None


def err(result: Result) -> ErrorCode:
    assert isinstance(result, KVError), result
    return result.code
