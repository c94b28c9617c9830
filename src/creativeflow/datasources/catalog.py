"""The 18 source types, by family (each family a sub-package exporting SOURCE_TYPES)."""

from __future__ import annotations

from functools import cache

from creativeflow.datasources import files, google, messaging, sql, stores, web
from creativeflow.datasources.base import SourceType

_FAMILIES = (sql, stores, files, web, google, messaging)


@cache
def source_types() -> dict[str, SourceType]:
    """Every type by name, in the order the API lists them."""
    types: dict[str, SourceType] = {}
    for family in _FAMILIES:
        for source_type in family.SOURCE_TYPES:
            if source_type.name in types:
                raise ValueError(f"source type {source_type.name!r} is defined twice")
            types[source_type.name] = source_type
    return types


def find_source_type(name: object) -> SourceType | None:
    return source_types().get(name) if isinstance(name, str) else None
