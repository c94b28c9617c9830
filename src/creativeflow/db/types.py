"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import JSON, DateTime, SmallInteger
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# JSON documents: JSONB on PostgreSQL (indexable, containment operators), JSON text elsewhere.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no time zones and hands back naive values; this stores UTC and always returns
    aware datetimes, and refuses naive input rather than guessing its zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


EnumT = TypeVar("EnumT", bound=StrEnum)


class OrderedEnum(TypeDecorator[EnumT], Generic[EnumT]):
    """A StrEnum stored as a small integer in declaration order, so ORDER BY and range filters
    follow the enum's meaning (low < medium < high) and indexes stay small."""

    impl = SmallInteger
    cache_ok = True

    def __init__(self, enum_class: type[EnumT]) -> None:
        super().__init__()
        self.enum_class = enum_class
        self._rank = {member: index for index, member in enumerate(enum_class, start=1)}
        self._member = {index: member for member, index in self._rank.items()}

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return self._rank[self.enum_class(value)]

    def process_result_value(self, value: Any, dialect: Dialect) -> EnumT | None:
        if value is None:
            return None
        return self._member[int(value)]

    def rank(self, value: EnumT) -> int:
        return self._rank[value]

    def __repr__(self) -> str:
        return f"OrderedEnum({self.enum_class.__name__})"


def sql_values(enum: type[StrEnum]) -> str:
    """An enum's values as a SQL list, for CHECK constraints (`'a', 'b'`)."""
    return ", ".join(f"'{member.value}'" for member in enum)
