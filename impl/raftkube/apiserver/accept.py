"""The ``Accept`` header, parsed and negotiated as kube-apiserver does.

Clients ask for more than a media type: ``application/json;as=Table;v=v1;g=meta.k8s.io`` asks
for the answer *converted* to a ``meta.k8s.io/v1 Table``, and
``application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`` asks ``/api`` and
``/apis`` for aggregated discovery. Upstream parses the header with goautoneg (clauses ordered
by ``q``, then concrete types before wildcards, ties kept in the client's order) and takes the
first clause that both names a media type it can write and asks for a conversion the endpoint
allows; a clause asking for a conversion the endpoint does not offer is skipped, not failed.
The functions here do the same for the two kinds of endpoint that convert:

* :func:`negotiate_discovery` for ``/api`` and ``/apis``;
* :func:`negotiate_object` for resource reads (Table, PartialObjectMetadata(List), or the
  object itself).

Only JSON and YAML are written (see :mod:`raftkube.apiserver.encoding`), so a clause that names
protobuf alone is skipped like any other media type the server lacks.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

from raftkube.apiserver import errors

JSON = "application/json"
YAML = "application/yaml"
# What ``negotiate_object`` can write, in upstream's order of preference for ``*/*``.
SERVED_MEDIA_TYPES = (JSON, YAML)
_NOT_ACCEPTABLE = "only the following media types are accepted: " + ", ".join(SERVED_MEDIA_TYPES)


@attrs.frozen
class MediaRange:
    """One clause of an ``Accept`` header: ``type/subtype`` with its parameters (``q``
    removed)."""

    type: str
    subtype: str
    params: Mapping[str, str] = attrs.field(factory=dict)
    q: float = 1.0

    @property
    def media_type(self) -> str:
        return f"{self.type}/{self.subtype}"

    def matches(self, media_type: str) -> bool:
        """Whether this clause accepts the concrete ``media_type`` (wildcards allowed)."""
        typ, _, sub = media_type.partition("/")
        if self.type == "*" and self.subtype == "*":
            return True
        return self.type == typ and self.subtype in ("*", sub)


def parse_accept(header: str) -> list[MediaRange]:
    """The clauses of ``header`` in the order a server should try them.

    As goautoneg: a clause's ``q`` parameter (default 1) orders the clauses, highest first;
    at equal ``q`` a concrete type or subtype comes before a wildcard; otherwise the header's
    order stands. Clauses with ``q=0`` or without a ``/`` are dropped. An empty header means
    ``*/*``.
    """
    if not header.strip():
        return [MediaRange("*", "*")]
    clauses: list[MediaRange] = []
    for part in header.split(","):
        pieces = [p.strip() for p in part.split(";")]
        typ, slash, sub = pieces[0].partition("/")
        if not slash or not typ.strip() or not sub.strip():
            continue
        params: dict[str, str] = {}
        q = 1.0
        for piece in pieces[1:]:
            key, eq, value = piece.partition("=")
            key = key.strip()
            if not eq or not key:
                continue
            value = value.strip().strip('"')
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
            else:
                params[key] = value
        if q <= 0:
            continue
        clauses.append(MediaRange(typ.strip().lower(), sub.strip().lower(), params, q))
    clauses.sort(key=lambda c: (-c.q, c.type == "*", c.subtype == "*"))
    return clauses


def _target(clause: MediaRange) -> tuple[str, str, str] | None:
    """The ``(group, version, kind)`` a clause asks to convert to, or None for no conversion."""
    p = clause.params
    if "as" not in p and "g" not in p and "v" not in p:
        return None
    return (p.get("g", ""), p.get("v", ""), p.get("as", ""))


class DiscoveryFormat(enum.Enum):
    """What ``/api`` and ``/apis`` answer with."""

    LEGACY = "legacy"  # APIVersions / APIGroupList
    AGGREGATED_V2 = "v2"  # apidiscovery.k8s.io/v2 APIGroupDiscoveryList
    AGGREGATED_V2BETA1 = "v2beta1"  # the same document as apidiscovery.k8s.io/v2beta1

    @property
    def content_type(self) -> str:
        """The response's ``Content-Type``: client-go decides between the aggregated and the
        legacy document by its ``g``/``v``/``as`` parameters alone (``ContentTypeIsGVK``)."""
        if self is DiscoveryFormat.LEGACY:
            return JSON
        return f"{JSON};g=apidiscovery.k8s.io;v={self.value};as=APIGroupDiscoveryList"


def negotiate_discovery(accept_header: str) -> DiscoveryFormat:
    """The discovery document ``accept_header`` asks ``/api`` or ``/apis`` for.

    kubectl 1.32 (client-go 0.32) sends ``application/json;g=apidiscovery.k8s.io;v=v2;as=
    APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=
    APIGroupDiscoveryList,application/json``. As upstream's wrapper, the first clause that names
    JSON (or a wildcard) and asks for an aggregated ``APIGroupDiscoveryList`` wins; a clause
    without a conversion cannot select the aggregated document, and when no clause selects it
    the legacy document is served (never a 406: legacy discovery answers any ``Accept``).
    """
    for clause in parse_accept(accept_header):
        target = _target(clause)
        if target is None or not clause.matches(JSON):
            continue
        group, version, kind = target
        if group != "apidiscovery.k8s.io" or kind != "APIGroupDiscoveryList":
            continue
        if version == "v2":
            return DiscoveryFormat.AGGREGATED_V2
        if version == "v2beta1":
            return DiscoveryFormat.AGGREGATED_V2BETA1
    return DiscoveryFormat.LEGACY


class Transform(enum.Enum):
    """What a resource read answers with."""

    OBJECT = "Object"  # the object or list itself
    TABLE = "Table"
    PARTIAL_OBJECT_METADATA = "PartialObjectMetadata"
    PARTIAL_OBJECT_METADATA_LIST = "PartialObjectMetadataList"


_META_VERSIONS = ("v1", "v1beta1")


@attrs.frozen
class Negotiated:
    """The outcome of :func:`negotiate_object`: the media type to write, the conversion, and
    for a conversion the ``meta.k8s.io`` version its ``apiVersion`` names."""

    media_type: str
    transform: Transform = Transform.OBJECT
    version: str = "v1"
    pretty: bool = False

    @property
    def api_version(self) -> str:
        """``meta.k8s.io/v1`` (or ``v1beta1``) for a conversion."""
        return f"meta.k8s.io/{self.version}"


def negotiate_object(accept_header: str) -> Negotiated:
    """What a get, list or watch of a resource should answer, given ``accept_header``.

    As upstream's ``RequestScope.AllowsMediaTypeTransform``: a Table may be asked for as JSON
    or YAML, PartialObjectMetadata(List) in any media type we write, both only in
    ``meta.k8s.io`` ``v1`` or ``v1beta1``; any other conversion makes the clause be skipped.
    Raises the 406 ``NotAcceptable`` error when no clause can be served, worded as upstream.
    Whether a Table or PartialObjectMetadata fits the request (a list or a single object) is
    the handler's call: :func:`check_list_transform` says it as upstream does.
    """
    for clause in parse_accept(accept_header):
        media = next((m for m in SERVED_MEDIA_TYPES if clause.matches(m)), None)
        if media is None:
            continue
        pretty = clause.params.get("pretty") == "1"
        target = _target(clause)
        if target is None:
            return Negotiated(media, pretty=pretty)
        group, version, kind = target
        if group != "meta.k8s.io" or version not in _META_VERSIONS:
            continue
        try:
            transform = Transform(kind)
        except ValueError:
            continue
        if transform is Transform.OBJECT:
            continue
        return Negotiated(media, transform, version, pretty)
    raise errors.not_acceptable(_NOT_ACCEPTABLE)


def check_list_transform(negotiated: Negotiated, *, is_list: bool) -> None:
    """Refuse, with upstream's 406 messages (less the Go type name upstream appends),
    PartialObjectMetadata for a list and PartialObjectMetadataList for a single object (a
    Table fits both)."""
    if negotiated.transform is Transform.PARTIAL_OBJECT_METADATA and is_list:
        raise errors.not_acceptable(
            "you requested PartialObjectMetadata, but the requested object is a list"
        )
    if negotiated.transform is Transform.PARTIAL_OBJECT_METADATA_LIST and not is_list:
        raise errors.not_acceptable(
            "you requested PartialObjectMetadataList, but the requested object is not a list"
        )
