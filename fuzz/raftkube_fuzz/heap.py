"""Handing the heap an example freed back to the operating system.

A fuzz process's resident memory is the high-water mark of its examples, not what it holds:
after a cluster example's full collection nothing of it is left (the objects the collector
tracks, and Python's allocated blocks, come back to where they were), but the C allocator
keeps the pages it freed for later use. Python's own allocator hands an arena back once it
is empty; what it asks of ``malloc`` (every object over 512 bytes: the tables of large dicts
and lists, bytes, the TLS library's buffers) goes to glibc's heap, which returns memory to
the system only from its top, so one live chunk above a freed megabyte keeps it resident.
``malloc_trim(0)`` (glibc, malloc_trim(3)) gives back the free pages anywhere in its arenas.

Measured on the cluster suite (``--seed 2027``, 44 examples, docs/performance.md): after
each example's collection, trimming took the process from 130-136 MB to 119-123 MB.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

_trim: Callable[[int], int] | None = None
_looked = False


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    global _trim, _looked
    if not _looked:
        _looked = True
        if sys.platform.startswith("linux"):
            try:
                found = getattr(ctypes.CDLL(None), "malloc_trim", None)
            except OSError:
                found = None
            if found is not None:
                found.argtypes = [ctypes.c_size_t]
                found.restype = ctypes.c_int
                _trim = found
    return _trim


def can_release_free_heap() -> bool:
    """Whether :func:`release_free_heap` can do anything here (glibc's ``malloc_trim``)."""
    return _malloc_trim() is not None


def release_free_heap() -> bool | None:
    """Return the C heap's free pages to the system: True if some were, False if none
    could be, None where the C library offers no way to (then nothing happens). Call it
    after a full collection, when the most is free; it walks the heap once (milliseconds)."""
    trim = _malloc_trim()
    if trim is None:
        return None
    return bool(trim(0))
