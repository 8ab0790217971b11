"""Trace files: one self-contained JSON document per failure.

A trace holds everything needed to re-run a failing example without Hypothesis and without the
code that found it: the suite, its configuration, the seed, the mutant (if any), the exact step
list, and what went wrong (the property, the step after which it was detected, the checker's
evidence). It also holds the event timeline and its digest, so a replay can prove that it
re-ran the *same* execution, event for event, and not merely one that fails the same way.

Layout (``version`` 1)::

    {
      "format": "raftkube-fuzz-trace", "version": 1,
      "suite": "kv", "mutant": null, "seed": 1234, "config": {...},
      "code": {"source": "<digest of the sources>", "raftkube": "...", "trio": "...", ...},
      "steps": [{"kind": "put", "member": 0, "key": "k1", ...}, ...],
      "violation": {"property": "Linearizability", "message": "...", "step": 7,
                    "evidence": {...}},
      "timeline": [[virtual_time, member_or_null, kind, text, info?], ...],
      "digest": "<sha256 of the timeline>"
    }

The timeline runs up to the end of the failing step; ``digest`` covers exactly those lines.
``code`` (:mod:`raftkube_fuzz.code_version`) says which code recorded the trace, so a replay can
tell a fixed bug from a changed schedule; traces from before it have none and still load.
A line's optional ``info`` object (hosts, message flows, fault kinds) is described in
:mod:`raftkube_fuzz.timeline` and docs/trace-format.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from raftkube_fuzz.steps import Step
from raftkube_fuzz.timeline import Line, digest_lines

FORMAT = "raftkube-fuzz-trace"
VERSION = 1


class TraceError(Exception):
    """A file that is not a trace this version can replay; the message says what is wrong."""


@attrs.frozen
class ViolationRecord:
    prop: str
    message: str
    step: int
    evidence: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "property": self.prop,
            "message": self.message,
            "step": self.step,
            "evidence": self.evidence,
        }


@attrs.frozen
class Trace:
    suite: str
    seed: int
    config: dict[str, Any]
    steps: tuple[Step, ...]
    violation: ViolationRecord | None
    timeline: tuple[Line, ...]
    mutant: str | None = None
    code: dict[str, str] | None = None
    """The stamp of the code that recorded it (:func:`~.code_version.code_stamp`)."""

    @property
    def digest(self) -> str:
        return digest_lines(list(self.timeline))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "suite": self.suite,
            "mutant": self.mutant,
            "seed": self.seed,
            "config": self.config,
            "code": self.code,
            "steps": [s.to_json() for s in self.steps],
            "violation": None if self.violation is None else self.violation.to_json(),
            "timeline": [line.to_json() for line in self.timeline],
            "digest": self.digest,
        }

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=False) + "\n")
        tmp.replace(path)
        return path


def _require(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: Path) -> Any:
    if key not in data:
        raise TraceError(f"{where}: missing field {key!r}")
    value = data[key]
    if not isinstance(value, kind):
        raise TraceError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def load_trace(path: Path) -> Trace:
    """Read and validate a trace file; raises :class:`TraceError` naming the problem."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise TraceError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TraceError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TraceError(f"{path}: not a raftkube fuzz trace (no 'format': {FORMAT!r})")
    if data.get("version") != VERSION:
        raise TraceError(
            f"{path}: trace format version {data.get('version')!r}; this raftkube reads {VERSION}"
        )
    try:
        steps = tuple(Step.from_json(s) for s in _require(data, "steps", list, path))
        timeline = tuple(Line.from_json(x) for x in _require(data, "timeline", list, path))
    except (TypeError, ValueError) as exc:
        raise TraceError(f"{path}: malformed step or timeline entry ({exc})") from None
    raw_violation = data.get("violation")
    violation = None
    if raw_violation is not None:
        if not isinstance(raw_violation, dict):
            raise TraceError(f"{path}: 'violation' must be an object or null")
        violation = ViolationRecord(
            prop=_require(raw_violation, "property", str, path),
            message=_require(raw_violation, "message", str, path),
            step=_require(raw_violation, "step", int, path),
            evidence=_require(raw_violation, "evidence", dict, path),
        )
    code = data.get("code")
    if code is not None and not (
        isinstance(code, dict) and all(isinstance(v, str) for v in code.values())
    ):
        raise TraceError(f"{path}: 'code' must be an object of strings or null")
    trace = Trace(
        suite=_require(data, "suite", str, path),
        seed=_require(data, "seed", int, path),
        config=_require(data, "config", dict, path),
        steps=steps,
        violation=violation,
        timeline=timeline,
        mutant=data.get("mutant"),
        code=code,
    )
    recorded = data.get("digest")
    if recorded is not None and recorded != trace.digest:
        raise TraceError(f"{path}: the timeline does not match its digest (edited by hand?)")
    return trace
