"""Server-side Tables: the envelope (list metadata, column definitions, the row object per
``includeObject``), one cell per column for every kind, PartialObjectMetadata, and the Accept
negotiation of these conversions. The cells of each kind are tested in ``test_printers``.
"""

from __future__ import annotations

from typing import Any

import pytest

from raftkube.apiserver import resources
from raftkube.apiserver.accept import (
    Transform,
    check_list_transform,
    negotiate_object,
)
from raftkube.apiserver.errors import APIError
from raftkube.apiserver.tables import (
    include_object_option,
    partial_object_metadata_list,
    to_table,
)
from tests.helpers.tables import NOW, info, obj


def _sample(r: resources.ResourceInfo) -> dict[str, Any]:
    return obj({"name": f"a-{r.resource}"}, spec={}, status={})


@pytest.mark.parametrize("r", resources.RESOURCES, ids=lambda r: r.qualified)
def test_every_kind_prints_one_cell_per_column(r: resources.ResourceInfo) -> None:
    table = to_table(r, [_sample(r), _sample(r)], now=NOW, list_rv="42")
    columns = table["columnDefinitions"]
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "42"}
    assert sum(1 for c in columns if c["format"] == "name") == 1
    for c in columns:
        assert set(c) == {"name", "type", "format", "description", "priority"}
        assert c["type"] in ("string", "integer", "date") and c["description"]
    for row in table["rows"]:
        assert len(row["cells"]) == len(columns)
        name_at = next(i for i, c in enumerate(columns) if c["format"] == "name")
        assert row["cells"][name_at] == f"a-{r.resource}"


# ---- the Table envelope ---------------------------------------------------------------------


def test_row_object_per_include_object_and_headers() -> None:
    o = obj(status={"phase": "Active"})
    ns = info("", "Namespace")
    default = to_table(ns, [o], now=NOW, list_rv="9", continue_token="c1", remaining_item_count=3)
    assert default["metadata"] == {
        "resourceVersion": "9",
        "continue": "c1",
        "remainingItemCount": 3,
    }
    assert default["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": o["metadata"],
    }
    assert to_table(ns, [o], now=NOW, include_object="Object")["rows"][0]["object"] == o
    none = to_table(ns, [o], now=NOW, include_object="None", include_headers=False)
    assert none["rows"][0]["object"] is None and none["columnDefinitions"] is None
    beta = to_table(ns, [o], now=NOW, version="v1beta1")
    assert beta["apiVersion"] == "meta.k8s.io/v1beta1"
    assert beta["rows"][0]["object"]["apiVersion"] == "meta.k8s.io/v1beta1"
    assert to_table(ns, [], now=NOW)["rows"] == []


def test_include_object_option() -> None:
    assert include_object_option("") == "Metadata"
    assert include_object_option("Object") == "Object"
    with pytest.raises(APIError) as exc:
        include_object_option("Everything")
    assert exc.value.code == 400
    assert exc.value.message == (
        'Unable to convert to Table as requested: includeObject: Invalid value: "Everything": '
        "must be 'Metadata', 'Object', 'None', or empty"
    )


def test_partial_object_metadata_list() -> None:
    doc = partial_object_metadata_list([obj(), obj({"name": "y"})], list_rv="5")
    assert doc["kind"] == "PartialObjectMetadataList" and doc["metadata"] == {
        "resourceVersion": "5"
    }
    assert [i["metadata"]["name"] for i in doc["items"]] == ["x", "y"]
    assert doc["items"][0]["kind"] == "PartialObjectMetadata"


# ---- Accept -----------------------------------------------------------------------------------

KUBECTL_GET = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)


@pytest.mark.parametrize(
    ("header", "media", "transform", "version"),
    [
        (KUBECTL_GET, "application/json", Transform.TABLE, "v1"),
        (
            "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
            "application/json",
            Transform.TABLE,
            "v1beta1",
        ),
        ("application/json", "application/json", Transform.OBJECT, "v1"),
        ("", "application/json", Transform.OBJECT, "v1"),
        ("*/*", "application/json", Transform.OBJECT, "v1"),
        ("application/yaml", "application/yaml", Transform.OBJECT, "v1"),
        ("application/yaml;as=Table;v=v1;g=meta.k8s.io", "application/yaml", Transform.TABLE, "v1"),
        (
            "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json",
            "application/json",
            Transform.PARTIAL_OBJECT_METADATA_LIST,
            "v1",
        ),
        (
            "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json",
            "application/json",
            Transform.OBJECT,
            "v1",
        ),
        (
            "application/json;as=Table;v=v1;g=example.com,application/json",
            "application/json",
            Transform.OBJECT,
            "v1",
        ),
        (
            "application/json;q=0.5,application/json;as=Table;v=v1;g=meta.k8s.io",
            "application/json",
            Transform.TABLE,
            "v1",
        ),
    ],
)
def test_negotiate_object(header: str, media: str, transform: Transform, version: str) -> None:
    result = negotiate_object(header)
    assert (result.media_type, result.transform, result.version) == (media, transform, version)


@pytest.mark.parametrize(
    "header",
    [
        "application/vnd.kubernetes.protobuf",
        "text/html",
        "application/json;as=Table;v=v1;g=example.com",
        "application/json;as=Status;v=v1;g=meta.k8s.io",
    ],
)
def test_negotiate_object_refuses_with_406(header: str) -> None:
    with pytest.raises(APIError) as exc:
        negotiate_object(header)
    assert (exc.value.code, exc.value.reason) == (406, "NotAcceptable")


def test_partial_object_metadata_must_fit_the_request() -> None:
    single = negotiate_object("application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io")
    check_list_transform(single, is_list=False)
    with pytest.raises(APIError) as exc:
        check_list_transform(single, is_list=True)
    assert exc.value.code == 406
    many = negotiate_object("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io")
    check_list_transform(many, is_list=True)
    with pytest.raises(APIError):
        check_list_transform(many, is_list=False)
    check_list_transform(negotiate_object(KUBECTL_GET), is_list=False)
