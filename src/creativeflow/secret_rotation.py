"""`creativeflow secrets rotate`: every secret kept at rest re-encrypted under the active key.

Each module that stores secrets offers a batch function (`reencrypt_*_secrets`); this walks
each table in id order, one short write transaction per batch, so a running platform keeps
serving (a value is readable under either key throughout: old keys stay configured)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.encryption import FieldCipher
from creativeflow.settings import Settings

Reencrypt = Callable[..., Awaitable[tuple[uuid.UUID | None, int]]]


def _tables() -> dict[str, Reencrypt]:
    from creativeflow.datasources.service import (
        reencrypt_credential_secrets,
        reencrypt_source_secrets,
    )
    from creativeflow.webhooks.service import reencrypt_secrets as reencrypt_webhook_secrets

    return {
        "data source secrets": reencrypt_source_secrets,
        "credentials": reencrypt_credential_secrets,
        "webhook signing secrets": reencrypt_webhook_secrets,
    }


async def _rotate_table(
    reencrypt: Reencrypt,
    write_transaction: Callable[[], AbstractAsyncContextManager[AsyncSession]],
    cipher: FieldCipher,
    batch: int,
) -> int:
    changed = 0
    after: uuid.UUID | None = None
    while True:
        async with write_transaction() as session:
            after, done = await reencrypt(session, cipher, after=after, limit=batch)
        changed += done
        if after is None:
            return changed


async def rotate_all(settings: Settings, *, batch: int = 200) -> dict[str, int]:
    """How many values each table had re-encrypted."""
    from creativeflow.platform import build_platform

    platform = build_platform(settings, role="maintenance")
    try:
        return {
            label: await _rotate_table(
                reencrypt, platform.write_transaction, platform.field_cipher, batch
            )
            for label, reencrypt in _tables().items()
        }
    finally:
        await platform.close()
