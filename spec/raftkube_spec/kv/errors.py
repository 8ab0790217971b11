"""Client-visible failures, as values.

A checker compares what a server answered with what the model predicts, so an
error has to be an ordinary comparable result rather than an exception. Each
code carries exactly the text etcd's gRPC layer puts on the wire, because that
text is the only thing a client can actually observe and match on.
"""

from __future__ import annotations

import enum

import attrs

from raftkube_spec.kv.types import ResponseHeader


class ErrorCode(enum.Enum):
    """The etcd v3 KV and lease errors this model can produce; values are etcd's wire text."""

    EMPTY_KEY = "etcdserver: key is not provided"
    KEY_NOT_FOUND = "etcdserver: key not found"
    VALUE_PROVIDED = "etcdserver: value is provided"
    LEASE_PROVIDED = "etcdserver: lease is provided"
    DUPLICATE_KEY = "etcdserver: duplicate key given in txn request"
    COMPACTED = "etcdserver: mvcc: required revision has been compacted"
    FUTURE_REVISION = "etcdserver: mvcc: required revision is a future revision"
    LEASE_NOT_FOUND = "etcdserver: requested lease not found"
    LEASE_EXISTS = "etcdserver: lease already exists"
    LEASE_TTL_TOO_LARGE = "etcdserver: too large lease TTL"


@attrs.frozen
class KVError:
    """A rejected request; the header is the (unchanged) revision, so callers can tell when."""

    code: ErrorCode
    header: ResponseHeader

    @property
    def message(self) -> str:
        # Derived so that a code and its text can never disagree.
        return self.code.value


def error(code: ErrorCode, revision: int) -> KVError:
    """Build an error stamped with the store revision it was judged against."""
    return KVError(code=code, header=ResponseHeader(revision=revision))
