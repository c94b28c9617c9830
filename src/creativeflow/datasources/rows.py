"""Rows as the API answers them: values made JSON-safe, and column types inferred from them."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from creativeflow.datasources.base import Column, ColumnType

MAX_TEXT = 2000  # characters of one value shown in a preview


def jsonable(value: Any) -> Any:
    """A value as JSON can carry it: dates in ISO 8601, decimals and UUIDs as text, bytes as
    base64, long text cut at MAX_TEXT characters."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)[:MAX_TEXT]).decode()
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    return str(value)


def value_type(value: Any) -> ColumnType:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float | decimal.Decimal):
        return "number"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, dt.time):
        return "time"
    if isinstance(value, bytes | bytearray | memoryview):
        return "binary"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return "string"


def text_type(text: str) -> ColumnType:
    """The type a text cell (CSV, a spreadsheet) holds: integer, number, boolean, date,
    datetime or string."""
    stripped = text.strip()
    if not stripped:
        return "null"
    lowered = stripped.lower()
    if lowered in ("true", "false"):
        return "boolean"
    try:
        int(stripped)
        return "integer"
    except ValueError:
        pass
    try:
        float(stripped)
        return "number"
    except ValueError:
        pass
    try:
        dt.date.fromisoformat(stripped)
        return "date"
    except ValueError:
        pass
    try:
        dt.datetime.fromisoformat(stripped)
        return "datetime"
    except ValueError:
        return "string"


def _merge(left: ColumnType, right: ColumnType) -> ColumnType:
    if left == right or right == "null":
        return left
    if left == "null":
        return right
    if {left, right} == {"integer", "number"}:
        return "number"
    if {left, right} == {"date", "datetime"}:
        return "datetime"
    return "string"


def infer_columns(
    rows: Sequence[Mapping[str, Any]], *, from_text: bool = False, order: Iterable[str] = ()
) -> list[Column]:
    """Each column's type over every row (integer+number is number, mixed is string); a column
    with no value in any row is `null`. `from_text` reads string cells as CSV text."""
    names: list[str] = list(order)
    types: dict[str, ColumnType] = dict.fromkeys(names, "null")
    nullable: dict[str, bool] = dict.fromkeys(names, False)
    for row in rows:
        for name in names:
            if name not in row:
                nullable[name] = True
        for name, value in row.items():
            if name not in types:
                names.append(name)
                types[name] = "null"
                nullable[name] = False
            kind = text_type(value) if from_text and isinstance(value, str) else value_type(value)
            if kind == "null":
                nullable[name] = True
            types[name] = _merge(types[name], kind)
    return [Column(name=name, type=types[name], nullable=nullable[name]) for name in names]


def typed_text(text: str, kind: ColumnType) -> Any:
    """A text cell as its column's type (CSV previews answer numbers as numbers)."""
    stripped = text.strip()
    if not stripped:
        return None
    if kind == "integer":
        return int(stripped)
    if kind == "number":
        return float(stripped)
    if kind == "boolean":
        return stripped.lower() == "true"
    return text
