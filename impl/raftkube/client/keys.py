"""Key-range helpers a client needs to spell etcd's ranges."""

from __future__ import annotations

FROM_KEY = b"\x00"
"""As a ``range_end``: every key at or after the start key."""


def prefix_end(prefix: bytes) -> bytes:
    """The ``range_end`` selecting every key that starts with ``prefix`` (etcd's
    ``clientv3.GetPrefixRangeEnd``): bump the last byte that can be bumped and cut what follows.
    A prefix of only 0xff bytes (or none) has no finite end, so it means "from the key"."""
    for n in range(len(prefix) - 1, -1, -1):
        if prefix[n] != 0xFF:
            return prefix[:n] + bytes((prefix[n] + 1,))
    return FROM_KEY
