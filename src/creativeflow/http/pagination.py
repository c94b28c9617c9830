"""The list shape every collection returns, and its query parameters."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

ItemT = TypeVar("ItemT")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    total: int = Field(description="Items matching the filters, across all pages")
    limit: int
    offset: int
    has_more: bool
    next_cursor: str | None = Field(
        default=None, description="Opaque keyset cursor for the next page, when supported"
    )

    @classmethod
    def of(cls, items: list[ItemT], *, total: int, limit: int, offset: int) -> Page[ItemT]:
        """An offset page: whether more follow is derived from where it ends."""
        return cls(
            items=items,
            total=total,
            limit=limit,
            offset=offset,
            has_more=offset + len(items) < total,
        )


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (1-100)")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip")]
