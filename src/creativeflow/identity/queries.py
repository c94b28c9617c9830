"""The read side of identity: what authenticating a session token needs, in one statement run
on a read connection (`creativeflow.db.reads`), outside the request's session."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, select

from creativeflow.identity.models import AuthSession, Role, User, UserRole

# A login session with its user and the user's roles: one row per role (one row with no role
# for a user holding none).
_SESSION_OWNER = (
    select(
        AuthSession.user_id,
        AuthSession.revoked_at,
        User.username,
        User.is_active,
        User.external_subject,
        Role.name,
        Role.permissions,
    )
    .select_from(AuthSession)
    .join(User, User.id == AuthSession.user_id)
    .outerjoin(UserRole, UserRole.user_id == User.id)
    .outerjoin(Role, Role.id == UserRole.role_id)
    .where(AuthSession.id == bindparam("session_id"))
)


@dataclass(frozen=True, slots=True)
class SessionOwner:
    """A login session and who holds it, as stored."""

    user_id: uuid.UUID
    revoked_at: datetime | None
    username: str
    is_active: bool
    external_subject: str | None
    roles: frozenset[str]
    permissions: frozenset[str]


def session_owner(connection: Connection, session_id: uuid.UUID) -> SessionOwner | None:
    """The session `session_id` and its user with their roles; None if no such session."""
    rows = connection.execute(_SESSION_OWNER, {"session_id": session_id}).all()
    if not rows:
        return None
    first = rows[0]
    return SessionOwner(
        user_id=first.user_id,
        revoked_at=first.revoked_at,
        username=first.username,
        is_active=first.is_active,
        external_subject=first.external_subject,
        roles=frozenset(row.name for row in rows if row.name is not None),
        permissions=frozenset(p for row in rows if row.permissions for p in row.permissions),
    )


__all__ = ["SessionOwner", "session_owner"]
