"""Optimistic concurrency for content two people may edit at once.

A `Versioned` table's `version` starts at 1 and rises on every update (SQLAlchemy's
`version_id_col`: the UPDATE names the version it read, so a write racing another one fails
instead of overwriting it). A client that read version N and sends it back (`If-Match: "N"`, or
`version` in the body) is refused with 409 VERSION_CONFLICT when the row has moved on.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from creativeflow.shared.core.exceptions import ConflictException


class VersionConflict(ConflictException):
    code = "VERSION_CONFLICT"


class Versioned:
    """Mixin for an `Entity` whose updates are versioned."""

    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


def ensure_version(entity: Versioned, expected: int | None, what: str) -> None:
    """Refuse a change made from a stale read; None: the client did not say (last write wins)."""
    if expected is not None and expected != entity.version:
        raise VersionConflict(
            f"The {what} is at version {entity.version}, not {expected}: someone changed it "
            "since you read it; reload and apply your change again",
            data={"current_version": entity.version},
        )
