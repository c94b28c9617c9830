"""`creativeflow secrets rotate`: after a new key is put first in FIELD_ENCRYPTION_KEYS, every
stored secret (source secrets, shared credentials, webhook signing secrets) is re-encrypted
under it, so the old key can be retired; a second run finds nothing left to do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from creativeflow.app import create_app
from creativeflow.db import migrate
from creativeflow.encryption import FieldCipher, key_id, parse_key
from creativeflow.identity.bootstrap import sync_builtin_roles
from creativeflow.platform import build_platform
from creativeflow.secret_rotation import rotate_all
from tests.conftest import BACKENDS, _settings
from tests.databases import empty_database
from tests.factories import UserFactory


@pytest.fixture(params=BACKENDS)
def live_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with empty_database(request.param, tmp_path) as url:
        migrate.upgrade(url)
        yield url


async def test_rotation_re_encrypts_every_secret_under_the_new_key(
    live_url: str, tmp_path: Path
) -> None:
    common = {"datasource_allow_private_hosts": True, "webhook_allow_private_targets": True}
    before = _settings(live_url, tmp_path, **common)
    platform = build_platform(before)
    await sync_builtin_roles(platform)
    app = create_app(before, platform=platform)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        user = await UserFactory(client, platform).create()
        credential = await user.post(
            "/api/v1/credentials", json={"name": "token", "kind": "token", "secret": "tok-123"}
        )
        assert credential.status_code == 201
        source = await user.post(
            "/api/v1/datasources",
            json={
                "name": "db",
                "config": {
                    "type": "postgresql",
                    "host": "db.example.com",
                    "database": "app",
                    "username": "app",
                    "password": "pw-123",
                },
            },
        )
        assert source.status_code == 201
        hook = await user.post(
            "/api/v1/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "event_types": ["*"]},
        )
        assert hook.status_code == 201
    await platform.close()

    new_key = FieldCipher.new_key()
    after = _settings(live_url, tmp_path, field_encryption_keys=new_key, **common)
    assert await rotate_all(after) == {
        "data source secrets": 1,
        "credentials": 1,
        "webhook signing secrets": 1,
    }
    assert await rotate_all(after) == {
        "data source secrets": 0,
        "credentials": 0,
        "webhook signing secrets": 0,
    }

    # Only the new key is needed now: the old one can go.
    only_new = FieldCipher([parse_key(new_key)])
    check = build_platform(after)
    try:
        async with check.read_sessions() as session:
            secrets = (await session.execute(text("SELECT id, secrets FROM data_sources"))).one()
            credential_row = (
                await session.execute(text("SELECT secret_ciphertext FROM credentials"))
            ).scalar_one()
            webhook_row = (
                await session.execute(text("SELECT secret_ciphertext FROM webhook_endpoints"))
            ).scalar_one()
    finally:
        await check.close()
    stored = secrets[1] if isinstance(secrets[1], dict) else json.loads(secrets[1])
    new_id = key_id(parse_key(new_key))
    for value in (stored["password"], credential_row, webhook_row):
        assert only_new.key_id_of(value) == new_id
    assert "pw-123" not in repr(secrets) and "tok-123" not in credential_row
