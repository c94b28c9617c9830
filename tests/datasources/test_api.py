"""/api/v1/datasources through the HTTP API: types, validation, CRUD with owner scoping,
masked and encrypted secrets, real connection tests with their history, discovery, preview."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.platform import Platform
from tests.datasources.servers import closed_port
from tests.factories import TestUser as SignedInUser
from tests.factories import UserFactory

SECRET = "s3cr3t-Pa55word-that-must-never-show"
BASE = "/api/v1/datasources"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # The servers the tests reach live on this machine.
    return {"datasource_allow_private_hosts": True, "datasource_timeout_seconds": 3.0}


def file_root(platform: Platform) -> Path:
    root = platform.settings.resolved_datasource_file_root()
    root.mkdir(parents=True, exist_ok=True)
    return root


def sqlite_file(platform: Platform, name: str = "shop.db") -> str:
    with sqlite3.connect(file_root(platform) / name) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, total REAL, note TEXT)"
        )
        db.executemany(
            "INSERT INTO orders (total, note) VALUES (?, ?)", [(9.5, "first"), (12.0, "second")]
        )
    return name


def postgres_config(port: int = 5432, **fields: Any) -> dict[str, Any]:
    return {
        "type": "postgresql",
        "host": "127.0.0.1",
        "port": port,
        "database": "postgres",
        "username": "postgres",
        "password": SECRET,
        **fields,
    }


async def create(
    user: SignedInUser, name: str, config: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    response = await user.post(BASE, json={"name": name, "config": config, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def field_errors(response: Any) -> list[str]:
    return [error["field"] for error in response.json()["errors"]]


async def test_types_list_all_eighteen_with_schemas_and_drivers(users: UserFactory) -> None:
    user = await users.create()
    response = await user.get(f"{BASE}/types")
    assert response.status_code == 200
    types = {item["name"]: item for item in response.json()}
    assert list(types) == [
        "postgresql", "mysql", "sqlite", "mssql", "mongodb", "redis", "elasticsearch",
        "local_file", "s3", "http_api", "graphql", "gcs", "google_sheets", "youtube",
        "kafka", "rabbitmq", "mqtt", "nats",
    ]  # fmt: skip
    postgres = types["postgresql"]
    assert postgres["category"] == "database"
    assert "password" in postgres["secret_fields"]
    assert "host" in postgres["config_schema"]["properties"]
    assert postgres["can_test"] and postgres["can_discover"] and postgres["can_preview"]
    assert types["rabbitmq"]["can_preview"] is False
    for absent in ("mssql", "kafka"):  # their drivers are not installed here
        driver = types[absent]["driver"]
        if driver["installed"]:
            continue
        assert driver["extra"] == absent and absent in driver["install"]
        assert types[absent]["can_test"] is False


async def test_validate_names_each_bad_field(users: UserFactory) -> None:
    user = await users.create()
    ok = await user.post(f"{BASE}/validate", json={"config": postgres_config()})
    assert ok.json() == {
        "valid": True,
        "type": "postgresql",
        "errors": [],
        "reaches": ["127.0.0.1:5432"],
    }

    bad = await user.post(
        f"{BASE}/validate", json={"config": postgres_config(port=70000, host="not a host")}
    )
    assert bad.status_code == 200
    assert not bad.json()["valid"]
    assert {"config.port", "config.host"} <= {e["field"] for e in bad.json()["errors"]}

    unknown = await user.post(f"{BASE}/validate", json={"config": {"type": "oracle"}})
    assert [e["field"] for e in unknown.json()["errors"]] == ["config.type"]


async def test_create_masks_and_encrypts_secrets(
    users: UserFactory, platform: Platform, session: AsyncSession
) -> None:
    user = await users.create()
    source = await create(user, "Warehouse", postgres_config(), tags=["sales", "sales", "eu"])
    assert source["config"]["password"] == "********"
    assert source["secrets"] == [{"path": "password", "set": True, "credential_id": None}]
    assert source["tags"] == ["sales", "eu"]
    assert source["status"] == "unknown" and source["last_check"] is None
    assert source["created_by"] == str(user.id)

    # The raw rows hold no plaintext anywhere.
    rows = (await session.execute(text("SELECT * FROM data_sources"))).all()
    assert rows and SECRET not in repr(rows)

    fetched = await user.get(f"{BASE}/{source['id']}")
    assert SECRET not in fetched.text


async def test_bad_config_is_422_naming_the_field_and_writes_nothing(users: UserFactory) -> None:
    user = await users.create()
    response = await user.post(BASE, json={"name": "x", "config": postgres_config(port=0)})
    assert response.status_code == 422
    assert field_errors(response) == ["config.port"]
    listed = await user.get(BASE)
    assert listed.json()["total"] == 0


async def test_names_are_unique_per_owner(users: UserFactory) -> None:
    alice, bob = await users.create(), await users.create()
    await create(alice, "Shop", postgres_config())
    again = await alice.post(BASE, json={"name": "Shop", "config": postgres_config()})
    assert again.status_code == 409 and again.json()["code"] == "DATASOURCE_NAME_TAKEN"
    await create(bob, "Shop", postgres_config())  # another owner may


async def test_another_users_source_is_404_everywhere(users: UserFactory) -> None:
    alice, bob = await users.create(), await users.create()
    source = await create(alice, "Private", postgres_config())
    url = f"{BASE}/{source['id']}"
    for method, path in [
        ("get", url),
        ("patch", url),
        ("delete", url),
        ("post", f"{url}/test"),
        ("get", f"{url}/checks"),
        ("get", f"{url}/discover"),
        ("get", f"{url}/preview?object=x"),
    ]:
        kwargs = {"json": {"name": "taken"}} if method == "patch" else {}
        response = await getattr(bob, method)(path, **kwargs)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["code"] == "DATASOURCE_NOT_FOUND"
    assert (await bob.get(BASE)).json()["total"] == 0
    admin = await users.admin()
    assert (await admin.get(url)).status_code == 200


async def test_update_keeps_secrets_it_does_not_send(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    source = await create(user, "Keep", postgres_config())
    url = f"{BASE}/{source['id']}"

    renamed = await user.patch(url, json={"name": "Kept", "description": "main db"})
    assert renamed.status_code == 200
    assert renamed.json()["secrets"][0]["set"] is True

    config = postgres_config(database="app")
    del config["password"]
    moved = await user.patch(url, json={"config": config})
    assert moved.status_code == 200, moved.text
    assert moved.json()["config"]["database"] == "app"
    assert moved.json()["secrets"][0]["set"] is True
    masked = await user.patch(url, json={"config": postgres_config(password="********")})
    assert masked.json()["secrets"][0]["set"] is True

    cleared = await user.patch(url, json={"config": postgres_config(password=None)})
    assert cleared.status_code == 200
    assert cleared.json()["secrets"][0]["set"] is False
    # The mask with nothing stored behind it is refused, naming the field.
    refused = await user.patch(url, json={"config": postgres_config(password="********")})
    assert refused.status_code == 422 and field_errors(refused) == ["config.password"]


async def test_list_filters_sorts_and_pages(users: UserFactory, platform: Platform) -> None:
    user = await users.create()
    await create(user, "Beta warehouse", postgres_config())
    await create(user, "Alpha shop", {"type": "sqlite", "path": sqlite_file(platform)})
    await create(user, "Gamma", postgres_config(), description="the WAREHOUSE replica")

    by_name = await user.get(BASE, params={"sort": "name"})
    assert [s["name"] for s in by_name.json()["items"]] == ["Alpha shop", "Beta warehouse", "Gamma"]
    found = await user.get(BASE, params={"search": "warehouse"})
    assert {s["name"] for s in found.json()["items"]} == {"Beta warehouse", "Gamma"}
    sqlite_only = await user.get(BASE, params={"type": "sqlite"})
    assert [s["name"] for s in sqlite_only.json()["items"]] == ["Alpha shop"]
    databases = await user.get(BASE, params={"category": "database", "status": "unknown"})
    assert databases.json()["total"] == 3
    page = await user.get(BASE, params={"limit": 2, "offset": 2, "sort": "name"})
    assert page.json()["total"] == 3 and page.json()["has_more"] is False
    assert [s["name"] for s in page.json()["items"]] == ["Gamma"]
    bad = await user.get(BASE, params={"status": "sleepy"})
    assert bad.status_code == 422


async def test_delete(users: UserFactory) -> None:
    user = await users.create()
    source = await create(user, "Gone", postgres_config())
    assert (await user.delete(f"{BASE}/{source['id']}")).status_code == 204
    assert (await user.get(f"{BASE}/{source['id']}")).status_code == 404


async def test_testing_a_sqlite_source_records_health_and_history(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    source = await create(user, "Shop", {"type": "sqlite", "path": sqlite_file(platform)})
    url = f"{BASE}/{source['id']}"

    result = await user.post(f"{url}/test")
    assert result.status_code == 200, result.text
    body = result.json()
    assert body["ok"] is True and body["status"] == "ok"
    assert body["server_version"] and body["source_status"] == "healthy"
    # A changed config is untested: its status is unknown, the last check stays as it was.
    changed = (await user.patch(url, json={"config": {"type": "sqlite", "path": "shop.db"}})).json()
    assert changed["status"] == "unknown" and changed["last_check"]["ok"] is True

    (file_root(platform) / "shop.db").unlink()
    failed = (await user.post(f"{url}/test")).json()
    assert failed["ok"] is False and failed["error_code"] == "NOT_FOUND"
    assert failed["source_status"] == "unhealthy"

    shown = (await user.get(url)).json()
    assert shown["status"] == "unhealthy"
    assert shown["last_check"]["error_code"] == "NOT_FOUND"
    checks = (await user.get(f"{url}/checks")).json()
    assert checks["total"] == 2
    assert [c["ok"] for c in checks["items"]] == [False, True]  # newest first
    assert {c["trigger"] for c in checks["items"]} == {"manual"}


async def test_turning_unhealthy_is_announced_once(
    users: UserFactory, platform: Platform, session: AsyncSession
) -> None:
    user = await users.create()
    source = await create(user, "Down", postgres_config(port=closed_port()))
    for _ in range(2):
        result = (await user.post(f"{BASE}/{source['id']}/test")).json()
        assert result["error_code"] == "CONNECTION_REFUSED"
    events = (
        await session.execute(
            text("SELECT payload FROM outbox_events WHERE event_type = 'datasources.unhealthy'")
        )
    ).all()
    assert len(events) == 1  # a source that stays down is announced once
    payload = events[0][0]
    payload = payload if isinstance(payload, dict) else json.loads(payload)
    assert payload["source_id"] == source["id"] and payload["error_code"] == "CONNECTION_REFUSED"


async def test_testing_an_unsaved_config(users: UserFactory, platform: Platform) -> None:
    user = await users.create()
    ok = await user.post(
        f"{BASE}/test", json={"config": {"type": "sqlite", "path": sqlite_file(platform)}}
    )
    assert ok.status_code == 200 and ok.json()["ok"] is True
    assert ok.json()["source_status"] is None
    refused = await user.post(f"{BASE}/test", json={"config": postgres_config(port=closed_port())})
    assert refused.json()["error_code"] == "CONNECTION_REFUSED"
    invalid = await user.post(f"{BASE}/test", json={"config": postgres_config(port=-1)})
    assert invalid.status_code == 422 and field_errors(invalid) == ["config.port"]
    assert (await user.get(BASE)).json()["total"] == 0  # nothing saved


@pytest.mark.parametrize("settings_overrides", [{"datasource_allow_private_hosts": False}])
async def test_private_hosts_are_refused_unless_allowed(users: UserFactory) -> None:
    user = await users.create()
    result = await user.post(f"{BASE}/test", json={"config": postgres_config()})
    assert result.status_code == 200
    assert result.json()["error_code"] == "HOST_REFUSED"
    assert "loopback" in result.json()["message"]


async def test_a_file_outside_the_root_is_refused(users: UserFactory, tmp_path: Path) -> None:
    user = await users.create()
    outside = tmp_path / "elsewhere.db"
    sqlite3.connect(outside).close()
    response = await user.post(
        BASE, json={"name": "escape", "config": {"type": "sqlite", "path": str(outside)}}
    )
    assert response.status_code == 422 and field_errors(response) == ["config.path"]


async def test_discover_and_preview_a_sqlite_source(users: UserFactory, platform: Platform) -> None:
    user = await users.create()
    source = await create(user, "Shop", {"type": "sqlite", "path": sqlite_file(platform)})
    url = f"{BASE}/{source['id']}"
    found = (await user.get(f"{url}/discover")).json()
    tables = {obj["name"]: obj for obj in found["objects"]}
    assert "orders" in tables and tables["orders"]["kind"] == "table"
    assert [c["name"] for c in tables["orders"]["columns"]] == ["id", "total", "note"]

    preview = await user.get(f"{url}/preview", params={"object": "orders", "limit": 1})
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["rows"] == [{"id": 1, "total": 9.5, "note": "first"}]
    assert {c["name"]: c["type"] for c in body["columns"]} == {
        "id": "integer",
        "total": "number",
        "note": "string",
    }
    missing = await user.get(f"{url}/preview", params={"object": "nope"})
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"


async def test_discovery_failures_are_problems_with_the_sources_code(users: UserFactory) -> None:
    user = await users.create()
    source = await create(user, "Down", postgres_config(port=closed_port()))
    response = await user.get(f"{BASE}/{source['id']}/discover")
    assert response.status_code == 502
    assert response.json()["code"] == "CONNECTION_REFUSED"
    rabbit = await create(
        user,
        "Queue",
        {"type": "rabbitmq", "host": "127.0.0.1", "username": "guest", "password": "guest"},
    )
    unsupported = await user.get(f"{BASE}/{rabbit['id']}/preview", params={"object": "q"})
    assert unsupported.status_code == 400 and unsupported.json()["code"] == "NOT_SUPPORTED"


async def test_anonymous_callers_are_401(client: Any) -> None:
    for path in (BASE, f"{BASE}/types", f"{BASE}/{uuid.uuid4()}/discover"):
        assert (await client.get(path)).status_code == 401
    assert (await client.post(f"{BASE}/test", json={"config": {}})).status_code == 401
