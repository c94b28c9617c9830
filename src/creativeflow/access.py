"""Who may read or write a *subject*: the project, brand or workspace that jobs, images and data
sources belong to (DESIGN.md "Who owns what").

The module that owns a subject type registers it once, with two functions that give, for a
principal, a SELECT of the subject ids they may read and may write. Engines compose those
selects into their own queries, so a list is one statement and nothing is checked in Python row
by row. A subject type nobody registered is unknown: naming it is a validation error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.identity.principal import Principal
from creativeflow.shared.core.exceptions import NotFoundException, ValidationException

SubjectIds = Callable[[Principal], Select[Any]]


@dataclass(frozen=True, slots=True)
class SubjectType:
    name: str
    readable: SubjectIds
    writable: SubjectIds


_registered: dict[str, SubjectType] = {}


def register_subject_type(name: str, *, readable: SubjectIds, writable: SubjectIds) -> None:
    _registered[name] = SubjectType(name, readable, writable)


def unregister_subject_type(name: str) -> None:
    _registered.pop(name, None)


def subject_types() -> dict[str, SubjectType]:
    return dict(_registered)


def subject_type(name: str, *, field: str = "subject_type") -> SubjectType:
    try:
        return _registered[name]
    except KeyError:
        known = ", ".join(sorted(_registered)) or "none yet"
        raise ValidationException.for_field(
            field, f"unknown subject type {name!r} (known: {known})"
        ) from None


async def ensure_writable(
    session: AsyncSession, principal: Principal, name: str, subject_id: uuid.UUID
) -> None:
    """Refuse (404, as if it did not exist) a subject the principal may not write."""
    kind = subject_type(name)
    if principal.is_admin:
        return
    ids = kind.writable(principal).subquery()
    allowed = await session.scalar(select(exists().where(ids.c[0] == subject_id)))
    if not allowed:
        raise NotFoundException(f"{name} not found", code="SUBJECT_NOT_FOUND")
