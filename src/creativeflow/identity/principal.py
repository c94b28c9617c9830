"""Who is making a request, resolved once per request by the auth dependency."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    username: str
    roles: frozenset[str]
    permissions: frozenset[str]
    external_subject: str | None = None
    session_id: uuid.UUID | None = None  # set for session tokens
    api_key_id: uuid.UUID | None = None  # set when authenticated by an API key

    def has(self, permission: str) -> bool:
        return permission in self.permissions

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def owns_path_user(self, path_user_id: str) -> bool:
        """True when a `{user_id}` path segment names this principal: our id, or the subject
        an external identity provider knows them by (creatorvault.md paths)."""
        return path_user_id == str(self.user_id) or (
            self.external_subject is not None and path_user_id == self.external_subject
        )
