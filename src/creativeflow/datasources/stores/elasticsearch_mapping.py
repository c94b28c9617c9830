"""Elasticsearch index names and mappings: a name from a user checked and quoted for a path,
names batched into `_mapping` requests, and mapped field types as columns."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from creativeflow.datasources.base import Column, ColumnType, SourceError, SourceErrorCode

MAPPING_PATH_BYTES = 3000  # of index names joined into one _mapping request's path

# Mapping types as column types; anything not listed is read as text.
_TYPES: dict[str, ColumnType] = {
    **dict.fromkeys(("long", "integer", "short", "byte", "unsigned_long"), "integer"),
    **dict.fromkeys(("double", "float", "half_float", "scaled_float"), "number"),
    "boolean": "boolean",
    "date": "datetime",
    "date_nanos": "datetime",
    "binary": "binary",
    "nested": "array",
    "dense_vector": "array",
    **dict.fromkeys(
        (
            "object",
            "flattened",
            "geo_point",
            "geo_shape",
            "point",
            "shape",
            "join",
            "percolator",
            "sparse_vector",
            "rank_features",
            "integer_range",
            "float_range",
            "long_range",
            "double_range",
            "date_range",
            "ip_range",
        ),
        "object",
    ),
}

_BAD_INDEX_CHARS = set('\\/*?"<>|,#: ')


def mapped_columns(properties: dict[str, Any]) -> list[Column]:
    """Top-level mapped fields (as `_source` holds them); objects are one `object` column."""
    columns = []
    for name, spec in properties.items():
        if not isinstance(spec, dict):
            continue
        kind = str(spec.get("type") or "object")
        if kind == "alias":  # not in _source
            continue
        columns.append(Column(name=name, type=_TYPES.get(kind, "string"), source_type=kind))
    return columns


def mapping_properties(index_mapping: Any) -> dict[str, Any]:
    """The top-level `properties` of one index's entry in a `_mapping` answer."""
    mappings = index_mapping.get("mappings", {}) if isinstance(index_mapping, dict) else {}
    if isinstance(mappings, dict) and "properties" not in mappings and len(mappings) == 1:
        mappings = next(iter(mappings.values()))  # Elasticsearch 6: one mapping type level
    properties = mappings.get("properties", {}) if isinstance(mappings, dict) else {}
    return properties if isinstance(properties, dict) else {}


def index_path(name: str) -> str:
    """A single index (or alias, or data stream) name, quoted for a path; INVALID_OBJECT when
    it breaks Elasticsearch's naming rules or is a pattern."""
    if (
        not name
        or len(name.encode()) > 255
        or name in (".", "..")
        or name[0] in "-_+"
        or any(char in _BAD_INDEX_CHARS for char in name)
        or name != name.lower()
    ):
        raise SourceError(
            SourceErrorCode.INVALID_OBJECT,
            "an index name is lowercase, at most 255 bytes, without wildcards, spaces or any "
            'of \\ / ? " < > | , # :, and does not start with -, _ or +',
        )
    return quote(name, safe="")


def name_batches(names: list[str]) -> list[str]:
    """Index names joined by commas into paths of at most MAPPING_PATH_BYTES each."""
    batches: list[str] = []
    current: list[str] = []
    for name in names:
        quoted = quote(name, safe="")
        if current and len(",".join([*current, quoted])) > MAPPING_PATH_BYTES:
            batches.append(",".join(current))
            current = []
        current.append(quoted)
    if current:
        batches.append(",".join(current))
    return batches


def declared_column(inferred: Column, mapped: Column | None) -> Column:
    if mapped is None:
        return inferred
    return Column(
        name=inferred.name,
        type=mapped.type,
        source_type=mapped.source_type,
        nullable=inferred.nullable,
    )
