"""Personal API keys: create (the key is shown once), list, revoke.

Authenticating with a key lives in `AuthService.authenticate_api_key`; this module only manages
them. Rules:
- A key's scopes are a subset of its owner's permissions when it is made (403 otherwise), and
  at every use it can do only what both its scopes and its owner's current roles allow.
- A key cannot create keys (403 SESSION_REQUIRED): a leaked key must not be able to outlive its
  own revocation or expiry by minting a successor. It may list keys and revoke them, which only
  ever reduces access.
- Every key expires: after `expires_in_days` (default 90) or at `expires_at`, at most 365 days
  ahead.
- Only a SHA-256 of the key is stored; revoking keeps the row (with `revoked_at`) so the list can
  show what existed.

Services flush, never commit: the route boundary commits the request's unit of work.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.db.ids import uuid7
from creativeflow.db.types import utcnow
from creativeflow.identity.admin_service import ensure_holds, ensure_interactive
from creativeflow.identity.models import ApiKey
from creativeflow.identity.principal import Principal
from creativeflow.identity.repository import ApiKeyRepository
from creativeflow.identity.schemas import API_KEY_DEFAULT_DAYS, API_KEY_MAX_DAYS, ApiKeyCreate
from creativeflow.identity.service import hash_api_key, new_api_key
from creativeflow.shared.core.exceptions import NotFoundException, ValidationException


class ApiKeyService:
    def __init__(self, session: AsyncSession) -> None:
        self.keys = ApiKeyRepository(session)

    async def create(self, actor: Principal, data: ApiKeyCreate) -> tuple[ApiKey, str]:
        """The stored key and the full key, which is never available again."""
        ensure_interactive(actor, "Creating an API key")
        scopes = sorted(actor.permissions) if data.scopes is None else list(data.scopes)
        ensure_holds(actor, scopes, what="create a key with these scopes")
        now = utcnow()
        raw_key, prefix = new_api_key()
        key = ApiKey(
            id=uuid7(),
            user_id=actor.user_id,
            name=data.name,
            prefix=prefix,
            key_hash=hash_api_key(raw_key),
            scopes=scopes,
            expires_at=self._expiry(data, now),
            created_by=actor.user_id,
            updated_by=actor.user_id,
        )
        await self.keys.add(key)
        return key, raw_key

    async def list_page(
        self, actor: Principal, *, include_revoked: bool, limit: int, offset: int
    ) -> tuple[Sequence[ApiKey], int]:
        return await self.keys.list_for_user(
            actor.user_id, include_revoked=include_revoked, limit=limit, offset=offset
        )

    async def get(self, actor: Principal, key_id: uuid.UUID) -> ApiKey:
        """One of the actor's keys; another user's key is 404, as if it did not exist."""
        key = await self.keys.owned(actor.user_id, key_id)
        if key is None:
            raise NotFoundException("API key not found", code="API_KEY_NOT_FOUND")
        return key

    async def revoke(self, actor: Principal, key_id: uuid.UUID) -> None:
        """Idempotent: revoking a revoked key keeps its first `revoked_at`."""
        key = await self.get(actor, key_id)
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            key.touch(actor.user_id)
            await self.keys.flush()

    @staticmethod
    def _expiry(data: ApiKeyCreate, now: datetime) -> datetime:
        if data.expires_at is None:
            return now + timedelta(days=data.expires_in_days or API_KEY_DEFAULT_DAYS)
        if data.expires_at <= now:
            raise ValidationException.for_field("expires_at", "must be in the future")
        if data.expires_at > now + timedelta(days=API_KEY_MAX_DAYS):
            raise ValidationException.for_field(
                "expires_at", f"must be at most {API_KEY_MAX_DAYS} days away"
            )
        return data.expires_at.astimezone(UTC)
