"""/api/v1/credentials: a secret held once, used by reference from several sources; rotating
it changes what every one of them sends; one in use cannot be deleted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.factories import TestUser as SignedInUser
from tests.factories import UserFactory
from tests.providers.fake_servers import serve_app

BASE = "/api/v1/credentials"
SOURCES = "/api/v1/datasources"


class TokenChecker:
    """A REST API that accepts exactly one bearer token (changed by the test)."""

    def __init__(self) -> None:
        self.token = "first-token-0123456789"
        self.seen: list[str] = []

    async def status(self, request: Request) -> JSONResponse:
        sent = request.headers.get("authorization", "")
        self.seen.append(sent)
        if sent != f"Bearer {self.token}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return JSONResponse({"ok": True})


@pytest.fixture
def api() -> Iterator[tuple[str, TokenChecker]]:
    checker = TokenChecker()
    app = Starlette(routes=[Route("/", checker.status)])
    with serve_app(app) as url:
        yield url, checker


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"datasource_allow_private_hosts": True}


async def new_credential(
    user: SignedInUser, name: str, secret: str, **fields: Any
) -> dict[str, Any]:
    response = await user.post(
        BASE, json={"name": name, "kind": "token", "secret": secret, **fields}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def api_config(url: str, credential_id: str) -> dict[str, Any]:
    return {
        "type": "http_api",
        "base_url": url,
        "auth": {"mode": "bearer", "token": {"credential_id": credential_id}},
    }


async def test_a_credential_is_shared_and_rotated_for_every_source(
    users: UserFactory, api: tuple[str, TokenChecker], session: AsyncSession
) -> None:
    url, checker = api
    user = await users.create()
    credential = await new_credential(user, "API token", checker.token, identity="bot")
    assert credential["secret"] == "********" and credential["used_by"] == []

    sources = []
    for name in ("Orders API", "Users API"):
        response = await user.post(
            SOURCES, json={"name": name, "config": api_config(url, credential["id"])}
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["config"]["auth"]["token"] == {"credential_id": credential["id"]}
        assert body["secrets"] == [
            {"path": "auth.token", "set": True, "credential_id": credential["id"]}
        ]
        sources.append(body)

    for source in sources:
        assert (await user.post(f"{SOURCES}/{source['id']}/test")).json()["ok"] is True

    shown = (await user.get(f"{BASE}/{credential['id']}")).json()
    assert {s["name"] for s in shown["used_by"]} == {"Orders API", "Users API"}

    checker.token = "second-token-9876543210"
    for source in sources:
        stale = (await user.post(f"{SOURCES}/{source['id']}/test")).json()
        assert stale["ok"] is False and stale["error_code"] == "AUTH_FAILED"

    rotated = await user.post(f"{BASE}/{credential['id']}/rotate", json={"secret": checker.token})
    assert rotated.status_code == 200 and rotated.json()["rotated_at"]
    for source in sources:
        assert (await user.get(f"{SOURCES}/{source['id']}")).json()["status"] == "unknown"
        assert (await user.post(f"{SOURCES}/{source['id']}/test")).json()["ok"] is True
    assert checker.seen[-1] == f"Bearer {checker.token}"

    rows = (await session.execute(text("SELECT * FROM credentials"))).all()
    assert "second-token" not in repr(rows) and "first-token" not in repr(rows)


async def test_a_credential_in_use_cannot_be_deleted(
    users: UserFactory, api: tuple[str, TokenChecker]
) -> None:
    url, checker = api
    user = await users.create()
    credential = await new_credential(user, "Token", checker.token)
    source = (
        await user.post(SOURCES, json={"name": "API", "config": api_config(url, credential["id"])})
    ).json()
    refused = await user.delete(f"{BASE}/{credential['id']}")
    assert refused.status_code == 409 and refused.json()["code"] == "CREDENTIAL_IN_USE"
    assert "API" in refused.json()["detail"]
    assert (await user.delete(f"{SOURCES}/{source['id']}")).status_code == 204
    assert (await user.delete(f"{BASE}/{credential['id']}")).status_code == 204
    assert (await user.get(f"{BASE}/{credential['id']}")).status_code == 404


async def test_another_users_credential_is_404_and_cannot_be_referenced(
    users: UserFactory, api: tuple[str, TokenChecker]
) -> None:
    url, checker = api
    alice, bob = await users.create(), await users.create()
    credential = await new_credential(alice, "Alice's token", checker.token)
    path = f"{BASE}/{credential['id']}"
    assert (await bob.get(path)).status_code == 404
    assert (await bob.patch(path, json={"name": "mine"})).status_code == 404
    assert (await bob.post(f"{path}/rotate", json={"secret": "x"})).status_code == 404
    assert (await bob.delete(path)).status_code == 404
    assert (await bob.get(BASE)).json()["total"] == 0

    borrowed = await bob.post(
        SOURCES, json={"name": "Borrowed", "config": api_config(url, credential["id"])}
    )
    assert borrowed.status_code == 422
    assert [e["field"] for e in borrowed.json()["errors"]] == ["config.auth.token"]
    tested = await bob.post(f"{SOURCES}/test", json={"config": api_config(url, credential["id"])})
    assert tested.status_code == 422


async def test_credential_validation_and_names(users: UserFactory) -> None:
    user = await users.create()
    await new_credential(user, "One", "secret-1")
    taken = await user.post(BASE, json={"name": "One", "kind": "token", "secret": "x"})
    assert taken.status_code == 409 and taken.json()["code"] == "CREDENTIAL_NAME_TAKEN"
    empty = await user.post(BASE, json={"name": "Two", "kind": "token", "secret": ""})
    assert empty.status_code == 422
    bad_kind = await user.post(BASE, json={"name": "Two", "kind": "cookie", "secret": "x"})
    assert bad_kind.status_code == 422
    key_file = await user.post(BASE, json={"name": "Key", "kind": "key_file", "secret": "{oops"})
    assert key_file.status_code == 422
    assert [e["field"] for e in key_file.json()["errors"]] == ["secret"]

    renamed = await user.patch(
        f"{BASE}/{(await new_credential(user, 'Three', 'x'))['id']}",
        json={"name": "Renamed", "description": "for the reports"},
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Renamed"
    listed = (await user.get(BASE)).json()
    assert [c["name"] for c in listed["items"]] == ["One", "Renamed"]
    assert all(c["secret"] == "********" for c in listed["items"])
