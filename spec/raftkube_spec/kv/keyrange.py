"""etcd's encoding of key intervals as ``(key, range_end)`` pairs.

Every range-taking request (Range, DeleteRange, Compare, Watch) uses the same
three-way convention, so it is decoded in exactly one place:

* ``range_end == b""``      — the single key ``key``;
* ``range_end == b"\\x00"`` — every key ``>= key`` (etcd's "from key");
* otherwise                 — the half-open interval ``[key, range_end)``, empty
  when ``range_end <= key``.
"""

from __future__ import annotations

import attrs

FROM_KEY = b"\x00"
"""The ``range_end`` sentinel meaning "no upper bound"."""


def prefix_range_end(prefix: bytes) -> bytes:
    """The ``range_end`` that selects every key starting with ``prefix``.

    The smallest key greater than all keys with the prefix is the prefix with
    its last incrementable byte bumped; trailing ``0xff`` bytes cannot be
    bumped and are dropped. When nothing can be bumped (empty or all-``0xff``
    prefix) no finite bound exists, so etcd falls back to "from key".
    """
    end = bytearray(prefix)
    while end and end[-1] == 0xFF:
        end.pop()
    if not end:
        return FROM_KEY
    end[-1] += 1
    return bytes(end)


@attrs.frozen
class KeyRange:
    """A decoded key interval: ``[start, end)``, ``end=None`` meaning unbounded."""

    start: bytes
    end: bytes | None

    @classmethod
    def of(cls, key: bytes, range_end: bytes = b"") -> KeyRange:
        if range_end == b"":
            # The successor of ``key`` in byte order is ``key + b"\x00"``.
            return cls(key, key + b"\x00")
        if range_end == FROM_KEY:
            return cls(key, None)
        return cls(key, range_end)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, bytes):
            return False
        return self.start <= key and (self.end is None or key < self.end)

    def is_below_end(self, key: bytes) -> bool:
        """Whether a scan that reached ``key`` (already ``>= start``) should continue."""
        return self.end is None or key < self.end
