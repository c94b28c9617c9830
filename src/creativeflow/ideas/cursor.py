"""Opaque keyset cursors for idea lists.

A cursor is base64url (unpadded) of the JSON `["v1", sort, order, [key values...]]`: the sort
key of the last row of a page, ending with its id, e.g. for `sort=priority&order=desc`
`["v1", "priority", "desc", ["high", "2026-01-05T10:30:00.123456+00:00", "0193..."]]`.
It carries no secret and positions only within the caller's own ideas, so it is not signed;
it is validated strictly, and a cursor made for another sort or order is refused (422).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson

from creativeflow.ideas.models import IdeaPriority, IdeaStage
from creativeflow.ideas.schemas import TITLE_MAX_LENGTH
from creativeflow.shared.core.exceptions import ValidationException

VERSION = "v1"


def _datetime(value: Any) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("naive datetime")
    return parsed


def _title(value: Any) -> str:
    if not isinstance(value, str) or len(value) > TITLE_MAX_LENGTH:
        raise ValueError("bad title")
    return value


def _uuid(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise ValueError("bad id")
    return uuid.UUID(value)


# How each sort-key column is read back from JSON (written with `_dump`).
_PARSERS: dict[str, Callable[[Any], Any]] = {
    "created_at": _datetime,
    "updated_at": _datetime,
    "title": _title,
    "priority": IdeaPriority,
    "stage": IdeaStage,
    "id": _uuid,
}


def _dump(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def encode_cursor(sort: str, order: str, values: Sequence[Any]) -> str:
    payload = orjson.dumps([VERSION, sort, order, [_dump(v) for v in values]])
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, sort: str, order: str, columns: Sequence[str]) -> tuple[Any, ...]:
    """The key values in `cursor`, typed for `columns`; 422 naming `cursor` otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, cursor_sort, cursor_order, values = json.loads(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise _invalid("is not a cursor returned by this list") from None
    if version != VERSION or not isinstance(values, list):
        raise _invalid("is not a cursor returned by this list")
    if (cursor_sort, cursor_order) != (sort, order):
        raise _invalid(
            f"was made for sort={cursor_sort}&order={cursor_order}; "
            f"send the same sort and order, or start again without a cursor"
        )
    if len(values) != len(columns):
        raise _invalid("is not a cursor returned by this list")
    try:
        return tuple(_PARSERS[name](value) for name, value in zip(columns, values, strict=True))
    except (KeyError, ValueError, TypeError):
        raise _invalid("is not a cursor returned by this list") from None


def _invalid(message: str) -> ValidationException:
    return ValidationException.for_field("cursor", message)
