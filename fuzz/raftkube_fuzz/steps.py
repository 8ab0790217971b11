"""A suite step: the unit a Hypothesis rule produces, a trace file records and a replay re-runs.

A Hypothesis rule never touches the world directly: it builds a :class:`Step` and hands it to
:meth:`raftkube_fuzz.example.Run.apply`. That single funnel is what makes traces exact: the step
list in a trace file is the complete input of a run (the seed covers every other choice), so
replaying it needs no Hypothesis at all, and whatever a rule draws must therefore end up in the
step's arguments. Arguments are JSON scalars or lists of them, so a step survives a round trip
through a trace file unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

JsonScalar = str | int | float | bool | None


def _freeze(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    raise TypeError(f"step arguments must be JSON scalars or lists, got {type(value).__name__}")


def _thaw(value: Any) -> Any:
    return [_thaw(v) for v in value] if isinstance(value, tuple) else value


@attrs.frozen
class Step:
    """One action of a suite: ``kind`` names it, ``args`` are its inputs (sorted by name)."""

    kind: str
    args: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, kind: str, **args: Any) -> Step:
        return cls(kind, tuple(sorted((k, _freeze(v)) for k, v in args.items())))

    def with_args(self, **args: Any) -> Step:
        """This step with ``args`` added (or replaced)."""
        return Step.of(self.kind, **{**{k: _thaw(v) for k, v in self.args}, **args})

    def __getitem__(self, name: str) -> Any:
        for k, v in self.args:
            if k == name:
                return v
        raise KeyError(f"step {self.kind!r} has no argument {name!r}")

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **{k: _thaw(v) for k, v in self.args}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        if not isinstance(data, Mapping) or not isinstance(data.get("kind"), str):
            raise ValueError(f"a step must be an object with a string 'kind', got {data!r}")
        return cls.of(data["kind"], **{k: v for k, v in data.items() if k != "kind"})

    def describe(self) -> str:
        """The step as a user reads it in a timeline: ``crash(member=2, torn=0)``."""
        inner = ", ".join(f"{k}={_thaw(v)!r}" for k, v in self.args)
        return f"{self.kind}({inner})"
