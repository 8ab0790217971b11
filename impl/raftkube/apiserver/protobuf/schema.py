"""The message table: for each Kubernetes protobuf message, its fields by number.

The facts (field numbers, wire types, JSON names) are those of upstream's ``generated.proto``
files (``k8s.io/api`` and ``k8s.io/apimachinery``); which scalars keep a zero value in JSON is
read off the Go types. The table modules write each message in a compact text form, parsed
once at import::

    Container:
      1 name string!; 2 image string; 3 command string*; 8 resources ResourceRequirements
    ConfigMapEnvSource:
      1 - LocalObjectReference; 2 optional bool!

A field is ``number json-name type``, several to a line separated by ``;``. The type is a
scalar (``string``, ``bool``, ``int32``, ``int64``, ``bytes``, ``double``) or a message name;
``type*`` is a repeated field, ``{type}`` a ``map<string, type>``. A ``!`` after the type keeps
a zero value in the JSON (a Go pointer field, which the wire carries only when set, or a field
without ``omitempty``); other scalars equal to their zero value are left out, as Go's
``omitempty`` leaves them out. The JSON name ``-`` marks a Go embedded struct, whose fields
are inlined into the parent object (``Volume``'s ``VolumeSource``, ``Probe``'s handler).

Fields are listed in the Go struct's order, which is the order of the JSON keys produced.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import attrs

SCALARS = frozenset({"string", "bool", "int32", "int64", "bytes", "double"})

_FIELD = re.compile(r"(\d+)\s+(-|\w+)\s+(\{\w+\}|\w+\*?)(!?)")


@attrs.frozen
class Field:
    """One field of a message: ``json_name`` is empty for an inlined (embedded) struct."""

    number: int
    json_name: str
    type: str
    repeated: bool = False
    is_map: bool = False
    keep_zero: bool = False

    @property
    def is_message(self) -> bool:
        return self.type not in SCALARS


@attrs.frozen
class Message:
    """A message: its fields in declaration (JSON key) order and by number."""

    name: str
    fields: tuple[Field, ...]
    by_number: Mapping[int, Field]


def parse_field(spec: str) -> Field:
    """One ``number json-name type`` spec; ValueError for anything else."""
    match = _FIELD.fullmatch(spec.strip())
    if match is None:
        raise ValueError(f"bad field spec {spec!r}")
    number, name, typ, bang = match.groups()
    repeated = typ.endswith("*")
    is_map = typ.startswith("{")
    typ = typ.strip("{}*")
    return Field(
        number=int(number),
        json_name="" if name == "-" else name,
        type=typ,
        repeated=repeated,
        is_map=is_map,
        keep_zero=bool(bang),
    )


def parse_table(text: str) -> dict[str, Message]:
    """The messages of one table text (see the module docstring for its form)."""
    messages: dict[str, Message] = {}
    name = ""
    specs: list[Field] = []

    def close() -> None:
        if name:
            by_number = {f.number: f for f in specs}
            if len(by_number) != len(specs):
                raise ValueError(f"{name}: a field number appears twice")
            messages[name] = Message(name, tuple(specs), by_number)

    for line in text.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            close()
            name, specs = line.strip().rstrip(":"), []
            if name in messages:
                raise ValueError(f"{name} is defined twice")
            continue
        specs.extend(parse_field(spec) for spec in line.split(";") if spec.strip())
    close()
    return messages


def merge_tables(tables: Iterable[Mapping[str, Message]]) -> dict[str, Message]:
    """One registry from several table modules; every referenced message must be defined."""
    merged: dict[str, Message] = {}
    for table in tables:
        for name, message in table.items():
            if name in merged:
                raise ValueError(f"{name} is defined in two tables")
            merged[name] = message
    for message in merged.values():
        for field in message.fields:
            if field.is_message and field.type not in merged:
                raise ValueError(f"{message.name}.{field.number} refers to unknown {field.type}")
            if field.is_map and field.repeated:
                raise ValueError(f"{message.name}.{field.number}: a map cannot be repeated")
            if not field.json_name and (not field.is_message or field.repeated or field.is_map):
                raise ValueError(f"{message.name}.{field.number}: only a message can be inlined")
    return merged
