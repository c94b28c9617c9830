"""/api/v1/auth/api-keys: create (shown once), use as X-API-Key or Bearer, list without secrets,
revoke, expiry, scopes, and what a key may not do."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select, update

from creativeflow.identity.models import ApiKey
from creativeflow.identity.permissions import BUILTIN_ROLE_PERMISSIONS, Permission

if TYPE_CHECKING:
    from creativeflow.platform import Platform
    from tests.factories import TestUser, UserFactory

KEYS = "/api/v1/auth/api-keys"
ME = "/api/v1/auth/me"


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


async def _create(user: TestUser, **body: Any) -> dict[str, Any]:
    response = await user.post(KEYS, json={"name": "deploy script", **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _key_headers(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _stored(platform: Platform, key_id: str) -> ApiKey:
    async with platform.write_sessions() as session:
        row = (
            await session.execute(select(ApiKey).where(ApiKey.id == uuid.UUID(key_id)))
        ).scalar_one()
        return row


async def _set_expiry(platform: Platform, key_id: str, when: datetime) -> None:
    async with platform.write_sessions() as session:
        await session.execute(
            update(ApiKey).where(ApiKey.id == uuid.UUID(key_id)).values(expires_at=when)
        )
        await session.commit()


# -- authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", KEYS),
        ("GET", KEYS),
        ("GET", f"{KEYS}/{uuid.uuid4()}"),
        ("DELETE", f"{KEYS}/{uuid.uuid4()}"),
    ],
)
async def test_key_routes_need_credentials(
    client: httpx.AsyncClient, method: str, url: str
) -> None:
    response = await client.request(method, url, json={"name": "x"} if method == "POST" else None)
    _problem(response, 401, "NOT_AUTHENTICATED")


# -- create and use -----------------------------------------------------------------------------


async def test_create_shows_the_key_once_and_it_authenticates(users: UserFactory) -> None:
    user = await users.create()
    before = datetime.now(UTC)
    created = await _create(user)

    key = created["key"]
    assert key.startswith(f"cfk_{created['prefix']}_")
    assert len(created["prefix"]) == 12
    assert created["name"] == "deploy script"
    viewer_permissions = sorted(str(p) for p in BUILTIN_ROLE_PERMISSIONS["viewer"])
    assert created["scopes"] == viewer_permissions  # default: all of the caller's
    expires_at = datetime.fromisoformat(created["expires_at"])
    assert before + timedelta(days=90) <= expires_at <= datetime.now(UTC) + timedelta(days=90)
    assert created["revoked_at"] is None and created["last_used_at"] is None
    assert created["created_by"] == user.id

    for headers in (_key_headers(key), _bearer(key)):
        response = await user.client.get(ME, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["id"] == user.id
        assert response.json()["username"] == user.username

    fetched = await user.get(f"{KEYS}/{created['id']}")
    assert fetched.status_code == 200
    body = fetched.json()
    assert "key" not in body and "key_hash" not in body
    assert key not in fetched.text
    assert body["prefix"] == created["prefix"]
    assert body["last_used_at"] is not None  # stamped by the use above


async def test_list_shows_prefixes_never_keys(users: UserFactory) -> None:
    user = await users.create()
    first = await _create(user, expires_in_days=10)
    second = await _create(user, name="backup job")
    other = await _create(await users.create())

    response = await user.get(KEYS)
    assert response.status_code == 200
    page = response.json()
    assert page["total"] == 2 and page["has_more"] is False
    assert [k["id"] for k in page["items"]] == [second["id"], first["id"]]  # newest first
    assert [k["name"] for k in page["items"]] == ["backup job", "deploy script"]
    assert [k["prefix"] for k in page["items"]] == [second["prefix"], first["prefix"]]
    for item in page["items"]:
        assert set(item) == {
            "id",
            "name",
            "prefix",
            "scopes",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "created_at",
            "updated_at",
            "created_by",
            "updated_by",
        }
    for created in (first, second, other):
        assert created["key"] not in response.text
    assert other["id"] not in response.text

    one = (await user.get(KEYS, params={"limit": 1})).json()
    assert one["has_more"] is True and [k["id"] for k in one["items"]] == [second["id"]]


async def test_only_a_hash_of_the_key_is_stored(users: UserFactory, platform: Platform) -> None:
    user = await users.create()
    created = await _create(user)
    row = await _stored(platform, created["id"])
    key = created["key"]
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert row.key_hash != key
    secret = key.split("_", 2)[2]
    stored_text = " ".join(str(getattr(row, c.key)) for c in ApiKey.__table__.columns)
    assert key not in stored_text and secret not in stored_text
    assert row.user_id == uuid.UUID(user.id)


@pytest.mark.parametrize(
    "presented",
    ["cfk_short", "not-a-key-at-all", "cfk_000000000000_" + "A" * 43],
)
async def test_unknown_or_malformed_keys_are_refused(
    client: httpx.AsyncClient, presented: str
) -> None:
    for headers in (_key_headers(presented), _bearer(presented)):
        response = await client.get(ME, headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["code"] in {"INVALID_API_KEY", "INVALID_TOKEN"}
    assert (await client.get(ME, headers=_key_headers(presented))).json()[
        "code"
    ] == "INVALID_API_KEY"


async def test_a_tampered_secret_is_refused(users: UserFactory) -> None:
    user = await users.create()
    key = (await _create(user))["key"]
    tampered = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    _problem(await user.client.get(ME, headers=_key_headers(tampered)), 401, "INVALID_API_KEY")


# -- revoke -------------------------------------------------------------------------------------


async def test_revoked_key_stops_working(users: UserFactory) -> None:
    user = await users.create()
    created = await _create(user)
    key = created["key"]
    assert (await user.client.get(ME, headers=_key_headers(key))).status_code == 200

    response = await user.delete(f"{KEYS}/{created['id']}")
    assert response.status_code == 204 and response.content == b""
    for headers in (_key_headers(key), _bearer(key)):
        _problem(await user.client.get(ME, headers=headers), 401, "API_KEY_REVOKED")

    assert (await user.get(KEYS)).json()["items"] == []
    history = (await user.get(KEYS, params={"include_revoked": "true"})).json()
    assert [k["id"] for k in history["items"]] == [created["id"]]
    revoked_at = history["items"][0]["revoked_at"]
    assert revoked_at is not None

    again = await user.delete(f"{KEYS}/{created['id']}")  # idempotent
    assert again.status_code == 204
    assert (await user.get(f"{KEYS}/{created['id']}")).json()["revoked_at"] == revoked_at


async def test_another_users_key_is_not_found(users: UserFactory) -> None:
    owner = await users.create()
    intruder = await users.admin()
    created = await _create(owner)
    _problem(await intruder.get(f"{KEYS}/{created['id']}"), 404, "API_KEY_NOT_FOUND")
    _problem(await intruder.delete(f"{KEYS}/{created['id']}"), 404, "API_KEY_NOT_FOUND")
    _problem(await owner.delete(f"{KEYS}/{uuid.uuid4()}"), 404, "API_KEY_NOT_FOUND")
    _problem(await owner.delete(f"{KEYS}/nope"), 422, "VALIDATION_ERROR")
    still = await owner.client.get(ME, headers=_key_headers(created["key"]))
    assert still.status_code == 200


async def test_a_key_may_list_and_revoke_keys(users: UserFactory) -> None:
    user = await users.create()
    created = await _create(user)
    key = created["key"]
    listed = await user.client.get(KEYS, headers=_key_headers(key))
    assert listed.status_code == 200
    assert [k["id"] for k in listed.json()["items"]] == [created["id"]]
    # A leaked key can always switch itself off.
    revoked = await user.client.delete(f"{KEYS}/{created['id']}", headers=_key_headers(key))
    assert revoked.status_code == 204
    _problem(await user.client.get(ME, headers=_key_headers(key)), 401, "API_KEY_REVOKED")


# -- expiry -------------------------------------------------------------------------------------


async def test_expired_key_is_refused(users: UserFactory, platform: Platform) -> None:
    user = await users.create()
    created = await _create(user, expires_in_days=1)
    key = created["key"]
    assert (await user.client.get(ME, headers=_key_headers(key))).status_code == 200
    await _set_expiry(platform, created["id"], datetime.now(UTC) - timedelta(seconds=1))
    for headers in (_key_headers(key), _bearer(key)):
        _problem(await user.client.get(ME, headers=headers), 401, "API_KEY_EXPIRED")


async def test_expiry_can_be_given_as_days_or_an_instant(users: UserFactory) -> None:
    user = await users.create()
    before = datetime.now(UTC)
    in_days = await _create(user, expires_in_days=365)
    expires = datetime.fromisoformat(in_days["expires_at"])
    assert before + timedelta(days=365) <= expires <= datetime.now(UTC) + timedelta(days=365)

    when = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    seoul = when.astimezone(timezone(timedelta(hours=9)))
    at = await _create(user, expires_at=seoul.isoformat())
    assert seoul.isoformat().endswith("+09:00")
    stored = datetime.fromisoformat(at["expires_at"])
    assert stored == when and stored.utcoffset() == timedelta(0)  # kept as UTC


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expires_in_days": 0}, "expires_in_days"),
        ({"expires_in_days": 366}, "expires_in_days"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "PAST"}, "expires_at"),
        ({"expires_at": "FAR"}, "expires_at"),
        ({"expires_at": "2031-01-01T00:00:00"}, "expires_at"),  # no time zone
        ({"expires_in_days": 5, "expires_at": "SOON"}, "expires_at"),
        ({"name": ""}, "name"),
        ({"name": "n" * 101}, "name"),
        ({"name": None}, "name"),
        ({"scopes": ["ideas:read", "warp:drive"]}, "scopes"),
        ({"key": "cfk_mine"}, "key"),
    ],
)
async def test_create_validates(users: UserFactory, body: dict[str, Any], field: str) -> None:
    user = await users.create()
    now = datetime.now(UTC)
    instants = {
        "PAST": (now - timedelta(minutes=1)).isoformat(),
        "FAR": (now + timedelta(days=366)).isoformat(),
        "SOON": (now + timedelta(days=5)).isoformat(),
    }
    body = {k: instants.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    response = await user.post(KEYS, json={"name": "script", **body})
    problem = _problem(response, 422, "VALIDATION_ERROR")
    assert problem["errors"][0]["field"] == field, problem
    if field == "scopes":
        assert "warp:drive" in problem["errors"][0]["message"]
    assert (await user.get(KEYS)).json()["total"] == 0


# -- scopes -------------------------------------------------------------------------------------


async def test_scopes_must_be_held_by_the_caller(users: UserFactory) -> None:
    viewer = await users.create()
    response = await viewer.post(
        KEYS, json={"name": "x", "scopes": ["ideas:read", "users:manage", "roles:manage"]}
    )
    problem = _problem(response, 403, "PERMISSION_NOT_HELD")
    assert problem["missing_permissions"] == ["roles:manage", "users:manage"]
    assert (await viewer.get(KEYS)).json()["total"] == 0


async def test_scopes_limit_what_an_admins_key_can_do(users: UserFactory) -> None:
    admin = await users.admin()
    default = await _create(admin)
    assert default["scopes"] == sorted(str(p) for p in Permission)
    narrow = await _create(admin, scopes=["ideas:read"])
    assert narrow["scopes"] == ["ideas:read"]
    people = await _create(admin, scopes=["users:manage"])

    refused = await admin.client.get("/api/v1/users", headers=_key_headers(narrow["key"]))
    assert _problem(refused, 403, "PERMISSION_DENIED")["required_permission"] == "users:manage"
    _problem(
        await admin.client.get("/api/v1/roles", headers=_bearer(people["key"])),
        403,
        "PERMISSION_DENIED",
    )
    for created in (default, people):
        allowed = await admin.client.get("/api/v1/users", headers=_key_headers(created["key"]))
        assert allowed.status_code == 200
        assert admin.id in [u["id"] for u in allowed.json()["items"]]
    # A narrowly scoped key cannot hand out more than it holds either.
    viewer = await users.create()
    grant = await admin.client.put(
        f"/api/v1/users/{viewer.id}/roles/manager", headers=_key_headers(people["key"])
    )
    _problem(grant, 403, "PERMISSION_NOT_HELD")


async def test_a_key_loses_what_its_owner_loses(users: UserFactory) -> None:
    admin = await users.admin()
    created = await admin.post(
        "/api/v1/roles", json={"name": "people-admins", "permissions": ["users:manage"]}
    )
    assert created.status_code == 201
    user = await users.create()
    await admin.put(f"/api/v1/users/{user.id}/roles/people-admins")
    key = (await _create(user, scopes=["users:manage"]))["key"]
    assert (await user.client.get("/api/v1/users", headers=_key_headers(key))).status_code == 200

    await admin.delete(f"/api/v1/users/{user.id}/roles/people-admins")
    response = await user.client.get("/api/v1/users", headers=_key_headers(key))
    _problem(response, 403, "PERMISSION_DENIED")


# -- what keys cannot do ------------------------------------------------------------------------


async def test_a_key_cannot_create_keys(users: UserFactory) -> None:
    admin = await users.admin()
    key = (await _create(admin))["key"]
    for headers in (_key_headers(key), _bearer(key)):
        response = await admin.client.post(KEYS, json={"name": "successor"}, headers=headers)
        assert "session token" in _problem(response, 403, "SESSION_REQUIRED")["detail"]
    assert (await admin.get(KEYS)).json()["total"] == 1


async def test_a_key_cannot_change_its_owners_account(users: UserFactory) -> None:
    user = await users.create()
    key = (await _create(user))["key"]
    for url in ("/api/v1/users/me", f"/api/v1/users/{user.id}"):
        response = await user.client.patch(
            url, json={"email": "attacker@example.com"}, headers=_key_headers(key)
        )
        _problem(response, 403, "SESSION_REQUIRED")
    me = await user.client.get("/api/v1/users/me", headers=_key_headers(key))
    assert me.status_code == 200 and me.json()["email"] == user.email


async def test_logout_with_a_key_is_refused(users: UserFactory) -> None:
    user = await users.create()
    key = (await _create(user))["key"]
    response = await user.client.post("/api/v1/auth/logout", headers=_key_headers(key))
    _problem(response, 401, "NOT_A_SESSION")
    assert (await user.client.get(ME, headers=_key_headers(key))).status_code == 200
