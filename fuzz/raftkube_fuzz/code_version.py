"""Which code a trace was recorded by: the digest of every source file a run can execute.

A trace replays event for event only on the code that recorded it: any change to the
members, the components, the world or the checkers moves the schedule. A replay that "passes
now" or whose timeline digest differs should say whether that is because the bug is gone or
because the code under the trace changed, so a trace records :func:`code_digest` and a replay
compares it with its own. The digest covers the three packages' Python sources (names and
bytes, in sorted order), not the installed dependencies: a trace names the Trio and
Hypothesis versions beside it (:func:`code_stamp`) for a person to compare, since a dependency
upgrade changes a replay too but is not this project's code.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from importlib import metadata
from pathlib import Path

import raftkube
import raftkube_fuzz
import raftkube_spec

PACKAGES = (raftkube_spec, raftkube, raftkube_fuzz)

DEPENDENCIES = ("trio", "hypothesis", "attrs")
"""Named in the stamp: their versions move a replay too."""


@functools.cache
def code_digest() -> str:
    """SHA-256 (hex, first 16 digits) of the packages' sources, read once per process."""
    h = hashlib.sha256()
    for package in PACKAGES:
        assert package.__file__ is not None  # regular packages, not namespace ones
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            h.update(f"{package.__name__}/{path.relative_to(root).as_posix()}\0".encode())
            h.update(path.read_bytes())
            h.update(b"\0")
    return h.hexdigest()[:16]


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.cache
def code_stamp() -> dict[str, str]:
    """What a trace records of the code that wrote it."""
    stamp = {"source": code_digest(), "raftkube": _version("raftkube")}
    stamp.update({name: _version(name) for name in DEPENDENCIES})
    stamp["python"] = ".".join(str(part) for part in sys.version_info[:3])
    return stamp


def differences(recorded: dict[str, str]) -> list[str]:
    """How the code that recorded a trace differs from this one, one phrase per item (empty:
    the same, as far as the stamp can tell)."""
    here = code_stamp()
    return [
        f"{key} {recorded[key]} then, {here.get(key, 'absent')} now"
        for key in sorted(recorded)
        if recorded[key] != here.get(key)
    ]
