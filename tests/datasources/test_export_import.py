"""Sources exported as JSON without their secrets, and imported again: the import asks for
every secret the export left out, and creates all the sources or none."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import UserFactory

BASE = "/api/v1/datasources"
SECRET = "export-me-never-0123"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"datasource_allow_private_hosts": True}


def postgres(**fields: Any) -> dict[str, Any]:
    return {
        "type": "postgresql",
        "host": "db.example.com",
        "database": "sales",
        "username": "reader",
        "password": SECRET,
        **fields,
    }


async def test_export_holds_no_secret_and_import_asks_for_them(users: UserFactory) -> None:
    alice, bob = await users.create(), await users.create()
    for name, config in (
        ("Sales", postgres()),
        ("Cache", {"type": "redis", "host": "cache.example.com"}),
    ):
        response = await alice.post(BASE, json={"name": name, "config": config, "tags": ["prod"]})
        assert response.status_code == 201, response.text

    exported = await alice.get(f"{BASE}/export")
    assert exported.status_code == 200
    assert SECRET not in exported.text
    document = exported.json()
    assert document["format"] == "creativeflow.datasources" and document["version"] == 1
    by_name = {item["name"]: item for item in document["sources"]}
    assert by_name["Sales"]["config"]["password"] is None
    assert by_name["Sales"]["secrets_needed"] == ["password"]
    assert by_name["Cache"]["secrets_needed"] == []

    missing = await bob.post(f"{BASE}/import", json={"document": document})
    assert missing.status_code == 422
    index = document["sources"].index(by_name["Sales"])
    assert [e["field"] for e in missing.json()["errors"]] == [
        f"document.sources[{index}].config.password"
    ]
    assert "secrets['Sales']['password']" in missing.json()["errors"][0]["message"]
    assert (await bob.get(BASE)).json()["total"] == 0  # all or nothing

    imported = await bob.post(
        f"{BASE}/import", json={"document": document, "secrets": {"Sales": {"password": "new"}}}
    )
    assert imported.status_code == 201, imported.text
    created = {s["name"]: s for s in imported.json()["created"]}
    assert set(created) == {"Sales", "Cache"}
    assert created["Sales"]["secrets"][0]["set"] is True
    assert created["Sales"]["tags"] == ["prod"] and created["Sales"]["owner_id"] == str(bob.id)

    again = await bob.post(
        f"{BASE}/import", json={"document": document, "secrets": {"Sales": {"password": "x"}}}
    )
    assert again.status_code == 409
    skipped = await bob.post(
        f"{BASE}/import",
        json={"document": document, "secrets": {"Sales": {"password": "x"}}, "on_conflict": "skip"},
    )
    assert skipped.status_code == 201
    assert skipped.json() == {
        "created": [],
        "skipped": [item["name"] for item in document["sources"]],
    }


async def test_import_validates_every_source(users: UserFactory) -> None:
    user = await users.create()
    document = {
        "sources": [
            {"name": "Bad port", "type": "postgresql", "config": postgres(port=0)},
            {"name": "Bad type", "type": "oracle", "config": {}},
        ]
    }
    response = await user.post(f"{BASE}/import", json={"document": document})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"document.sources[0].config.port", "document.sources[1].config.type"}
    assert (await user.get(BASE)).json()["total"] == 0


async def test_export_of_chosen_sources_and_of_another_users_is_404(users: UserFactory) -> None:
    alice, bob = await users.create(), await users.create()
    source = (await alice.post(BASE, json={"name": "Only", "config": postgres()})).json()
    await alice.post(BASE, json={"name": "Other", "config": postgres()})
    chosen = await alice.get(f"{BASE}/export", params={"ids": [source["id"]]})
    assert [s["name"] for s in chosen.json()["sources"]] == ["Only"]
    assert (await bob.get(f"{BASE}/export", params={"ids": [source["id"]]})).status_code == 404
