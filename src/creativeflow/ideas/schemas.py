"""Request and response models of the ideas API (creatorvault.md), with its limits.

Normalisation rules (documented in the OpenAPI descriptions as well):

- Text is trimmed. A title must keep at least one character; empty notes become null.
  NUL characters and unpaired surrogates are refused everywhere (neither database can store
  them); titles and tags refuse every control character, notes allow tabs and line breaks.
- Tags are trimmed and de-duplicated case-insensitively (`casefold`), keeping the first
  spelling and the order given: `["AI", "blog", "ai"]` is stored as `["AI", "blog"]`. A blank
  tag is refused rather than silently dropped. At most 20 distinct tags of 1-50 characters.
  The tag filter matches case-insensitively too, so `tags=ai` finds an idea tagged `AI`.
- `due_date` must carry a time zone (`2026-01-05T10:00:00Z`, `...+09:00`); a naive datetime is
  refused instead of guessed. It is stored and returned in UTC.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
)

from creativeflow.ideas.models import IdeaPriority, IdeaStage, tag_key
from creativeflow.shared.api.dtos.base import AuditedEntityResponse, BaseModel

TITLE_MAX_LENGTH = 200
NOTES_MAX_LENGTH = 5000
TAG_MAX_LENGTH = 50
MAX_TAGS = 20
SEARCH_MAX_LENGTH = 200
CURSOR_MAX_LENGTH = 2048
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_OFFSET = 10_000_000


def _storable(value: str) -> str:
    """Refuse what neither PostgreSQL nor SQLite can store: NUL and unpaired surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def _single_line(value: str) -> str:
    _storable(value)
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _title(value: str) -> str:
    if not value:
        raise ValueError("must not be blank")
    return _single_line(value)


def _notes(value: str | None) -> str | None:
    if value is None:
        return None
    _storable(value)
    if any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" for ch in value):
        raise ValueError("must not contain control characters other than tabs and line breaks")
    return value or None


def _tag(value: str) -> str:
    if not value:
        raise ValueError("tag must not be blank")
    return _single_line(value)


def _unique_tags(tags: list[str]) -> list[str]:
    seen: set[str] = set()
    unique: list[str] = []
    for tag in tags:
        key = tag_key(tag)
        if key not in seen:
            seen.add(key)
            unique.append(tag)
    if len(unique) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} distinct tags are allowed")
    return unique


Title = Annotated[
    str,
    Field(max_length=TITLE_MAX_LENGTH, description="1-200 characters, trimmed"),
    AfterValidator(_title),
]
Notes = Annotated[
    str | None,
    Field(max_length=NOTES_MAX_LENGTH, description="Up to 5000 characters; empty means none"),
    AfterValidator(_notes),
]
Tag = Annotated[str, Field(max_length=TAG_MAX_LENGTH), AfterValidator(_tag)]
Tags = Annotated[
    list[Tag],
    # The raw list may hold duplicates that collapse; beyond this it is abuse, not duplicates.
    Field(
        max_length=MAX_TAGS * 5,
        description="Up to 20 distinct tags of 1-50 characters, trimmed; duplicates "
        "(case-insensitive) are dropped keeping the first spelling",
    ),
    AfterValidator(_unique_tags),
]


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


DueDate = Annotated[
    AwareDatetime | None,
    Field(
        description="Optional deadline with a time zone (naive datetimes are refused); "
        "returned in UTC"
    ),
    AfterValidator(_utc),
]


class _IdeaFields(BaseModel):
    """Every writable field with its default: the body of POST and of PUT."""

    title: Title
    notes: Notes = None
    stage: IdeaStage = IdeaStage.IDEA
    priority: IdeaPriority = IdeaPriority.MEDIUM
    tags: Tags = Field(default_factory=list)
    due_date: DueDate = None


class IdeaCreate(_IdeaFields):
    """A new idea. Only `title` is required."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "Top 5 AI Writing Tools",
                    "notes": "Compare leading AI writing assistants",
                    "stage": "idea",
                    "priority": "high",
                    "tags": ["blog", "ai", "tools"],
                    "due_date": "2026-02-01T09:00:00Z",
                }
            ]
        }
    )


class IdeaReplace(_IdeaFields):
    """PUT: the idea's full new state. Omitted optional fields take their defaults (notes and
    due_date cleared, stage `idea`, priority `medium`, no tags)."""


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("must not be null")
    return value


class IdeaUpdate(BaseModel):
    """PATCH: only the fields sent change. `notes` and `due_date` may be set to null to clear
    them; the other fields may not be null."""

    title: Annotated[Title | None, BeforeValidator(_not_null)] = None
    notes: Notes = None
    stage: Annotated[IdeaStage | None, BeforeValidator(_not_null)] = None
    priority: Annotated[IdeaPriority | None, BeforeValidator(_not_null)] = None
    tags: Annotated[Tags | None, BeforeValidator(_not_null)] = None
    due_date: DueDate = None

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, with their validated values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


def _timestamp(value: datetime) -> str:
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    return utc.isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00" -> "Z"


# Always `YYYY-MM-DDTHH:MM:SS.ffffffZ`: fixed width, so comparing the strings compares the
# times (by default a whole second would print as `...:55Z`, which sorts after `...:55.47Z`).
Timestamp = Annotated[datetime, PlainSerializer(_timestamp, return_type=str, when_used="json")]


class IdeaRead(AuditedEntityResponse):
    """An idea as the API returns it. Times are UTC with microseconds, always the same width."""

    user_id: uuid.UUID
    title: str
    notes: str | None
    stage: IdeaStage
    priority: IdeaPriority
    tags: list[str]
    due_date: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp


def render_idea(document: dict[str, Any]) -> bytes:
    """`IdeaRead`'s JSON for an idea read as a document (`ideas.queries.document`).

    The documents come from our own table, already in the API's spelling, so validating them
    into models first (and FastAPI validating the models again against the response model)
    would only spend time: on a page of 20 that was most of a request's CPU. Tests hold this
    output equal to `IdeaRead`'s."""
    return orjson.dumps(document)


def render_idea_page(
    documents: Sequence[dict[str, Any]],
    *,
    total: int,
    limit: int,
    offset: int,
    has_more: bool,
    next_cursor: str | None,
) -> bytes:
    """`Page[IdeaRead]`'s JSON for ideas read as documents (see `render_idea`)."""
    return orjson.dumps(
        {
            "items": documents,
            "total": total,
            "limit": limit,
            "offset": offset,
            "has_more": has_more,
            "next_cursor": next_cursor,
        }
    )


class IdeaSort(StrEnum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    TITLE = "title"
    PRIORITY = "priority"
    STAGE = "stage"


class SortOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"


def _search(value: str | None) -> str | None:
    if value is None:
        return None
    _storable(value)
    return value or None


def _tag_filter(value: Any) -> list[str] | None:
    """`tags=blog,Video` (or `tags=blog&tags=Video`) -> ["blog", "video"]: case-insensitive
    keys, blanks ignored."""
    if value is None:
        return None
    raw_values = [value] if isinstance(value, str) else value
    if not isinstance(raw_values, list) or not all(isinstance(v, str) for v in raw_values):
        raise ValueError("must be comma-separated tags")
    keys: list[str] = []
    for raw in ",".join(raw_values).split(","):
        tag = raw.strip()
        if not tag:
            continue
        if len(tag) > TAG_MAX_LENGTH:
            raise ValueError(f"each tag must be at most {TAG_MAX_LENGTH} characters")
        _storable(tag)
        key = tag_key(tag)
        if key not in keys:
            keys.append(key)
    if len(keys) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags may be given")
    return keys or None


class IdeaListParams(BaseModel):
    """Query parameters of GET /{user_id}/ideas. Unknown parameters are ignored (caches and
    clients add their own)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    search: Annotated[
        str | None,
        Field(
            max_length=SEARCH_MAX_LENGTH,
            description="Case-insensitive substring of the title or the notes",
        ),
        AfterValidator(_search),
    ] = None
    stage: IdeaStage | None = Field(default=None, description="Only ideas in this stage")
    priority: IdeaPriority | None = Field(default=None, description="Only this priority")
    tags: Annotated[
        list[str] | None,
        BeforeValidator(_tag_filter, json_schema_input_type=list[str] | None),
        Field(
            description="Comma-separated tags (`tags=blog,video`, or the parameter repeated): "
            "ideas carrying any of them, compared case-insensitively",
        ),
    ] = None
    sort: IdeaSort = Field(
        default=IdeaSort.CREATED_AT,
        description="created_at, updated_at, title, priority (low < medium < high) or stage "
        "(idea < outline < draft < published); ties newest first, then by id",
    )
    order: SortOrder = Field(default=SortOrder.DESC, description="asc or desc")
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size (1-100)")
    offset: int = Field(
        default=0, ge=0, le=MAX_OFFSET, description="Items to skip; ignored with a cursor"
    )
    cursor: str | None = Field(
        default=None,
        max_length=CURSOR_MAX_LENGTH,
        description="Opaque `next_cursor` of the previous page (same sort and order): "
        "keyset paging, as fast on the last page as on the first",
    )

    @property
    def is_filtered(self) -> bool:
        return any(
            value is not None for value in (self.search, self.stage, self.priority, self.tags)
        )


__all__ = [
    "IdeaCreate",
    "IdeaListParams",
    "IdeaRead",
    "IdeaReplace",
    "IdeaSort",
    "IdeaUpdate",
    "SortOrder",
    "render_idea",
    "render_idea_page",
    "tag_key",
]
