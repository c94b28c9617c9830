"""Columns read as the text the API writes, formatted by the database.

A hot read that hands rows straight to JSON gains most from values that need no conversion in
Python: SQLAlchemy's result processing (parsing SQLite's datetime strings, building `UUID`
objects, mapping enums) cost ~280 us of the ~340 us a page of 21 ideas took on SQLite, and
formatting them back into JSON text again as much as the rendering itself. The database does
both in C. Each construct keeps the API's spelling on every backend:

- `uuid_text(column)`: `0193a5f2-7c1e-7d3a-9b1c-2f4e5a6b7c8d` on PostgreSQL; on SQLite the
  stored 32 hex digits, which `uuid_spelling` finishes in Python (SQLite's `substr` costs
  ~1 us a call: the ids of a page of 21 took 90 us of its 157 us);
- `utc_text(column)`: `2026-01-05T10:30:00.123456Z`, always six digits of fraction (the width
  of `Timestamp` in the schemas: comparing the strings compares the times);
- `json_text(column)`: the JSON document as text.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class _TextOf(FunctionElement[str]):
    type = String()
    inherit_cache = True


class uuid_text(_TextOf):  # lower case, like `func.lower`: they read as SQL functions
    name = "uuid_text"
    inherit_cache = True


class utc_text(_TextOf):
    name = "utc_text"
    inherit_cache = True


class json_text(_TextOf):
    name = "json_text"
    inherit_cache = True


def _argument(element: _TextOf, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(uuid_text, "postgresql")
@compiles(json_text, "postgresql")
def _cast_to_text(element: _TextOf, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({_argument(element, compiler, **kw)} AS TEXT)"


@compiles(utc_text, "postgresql")
def _pg_utc_text(element: _TextOf, compiler: SQLCompiler, **kw: Any) -> str:
    column = _argument(element, compiler, **kw)
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


@compiles(uuid_text, "sqlite")
@compiles(json_text, "sqlite")
def _as_stored(element: _TextOf, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLAlchemy's `Uuid` keeps 32 lower-case hex digits on SQLite; JSON is kept as text.
    return _argument(element, compiler, **kw)


@lru_cache(maxsize=1024)  # the owner's id comes three times a row (owner, creator, updater)
def uuid_spelling(value: str | None) -> str | None:
    """A `uuid_text` value as the API writes it, whichever backend read it."""
    if value is None or len(value) != 32:
        return value
    return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"


@compiles(utc_text, "sqlite")
def _sqlite_utc_text(element: _TextOf, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLAlchemy's `DateTime` keeps `YYYY-MM-DD HH:MM:SS.ffffff` (UTC, see `UTCDateTime`).
    return f"replace({_argument(element, compiler, **kw)}, ' ', 'T') || 'Z'"


__all__ = ["json_text", "utc_text", "uuid_spelling", "uuid_text"]
