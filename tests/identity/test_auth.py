"""/api/v1/auth through HTTP: register, login (JSON and OAuth2 form), token lifetimes, refresh
rotation and reuse detection, logout, change-password, revocations that survive a restart and
are mirrored in Redis, and the failed-login throttle."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from creativeflow.identity.models import AuthSession, User
from creativeflow.identity.revocation import RedisRevocationList
from creativeflow.platform import Platform
from creativeflow.settings import Settings
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.identity.auth_helpers import (
    REDIS_URL,
    assert_problem,
    assert_unauthorized,
    bearer,
    claims_of,
    client_for,
    closed_port,
    random_address,
    require_redis,
    restarted_platform,
)

if TYPE_CHECKING:
    from tests.factories import TestUser

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
CHANGE_PASSWORD = "/api/v1/auth/change-password"
NEW_PASSWORD = "Another-Battery-77?"
REDIS = {"redis_url": REDIS_URL}


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    """Per test through `@pytest.mark.parametrize("settings_overrides", [...], indirect=True)`;
    a Redis URL in them skips the test when Redis is not reachable."""
    overrides = dict(getattr(request, "param", {}))
    if overrides.get("redis_url") == REDIS_URL:
        require_redis()
    return overrides


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(require_redis())
    yield client
    await client.aclose()


def _registration(**fields: Any) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    return {
        "email": f"writer-{suffix}@example.com",
        "username": f"writer-{suffix}",
        "name": "A Writer",
        "password": DEFAULT_PASSWORD,
        **fields,
    }


async def _login(
    client: httpx.AsyncClient, login: str, password: str = DEFAULT_PASSWORD
) -> httpx.Response:
    return await client.post(LOGIN, json={"login": login, "password": password})


async def _tokens(
    client: httpx.AsyncClient, login: str, password: str = DEFAULT_PASSWORD
) -> dict[str, Any]:
    response = await _login(client, login, password)
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def _me(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await client.get(ME, headers=bearer(access_token))


async def _refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post(REFRESH, json={"refresh_token": refresh_token})


async def _session_row(session: AsyncSession, session_id: str) -> tuple[Any, Any]:
    row = (
        await session.execute(
            select(AuthSession.revoked_at, AuthSession.revoked_reason).where(
                AuthSession.id == uuid.UUID(session_id)
            )
        )
    ).one()
    await session.commit()
    return row.revoked_at, row.revoked_reason


# -- register ----------------------------------------------------------------------------------


async def test_register_creates_a_viewer_and_never_returns_the_password(
    client: httpx.AsyncClient,
) -> None:
    data = _registration(
        username="New.Writer-" + uuid.uuid4().hex[:6],
        email=f"Mixed.Case-{uuid.uuid4().hex[:6]}@Example.COM",
    )
    response = await client.post(REGISTER, json=data)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["username"] == data["username"].lower()
    assert body["email"] == data["email"].lower()
    assert body["name"] == "A Writer"
    assert body["is_active"] is True
    assert body["roles"] == ["viewer"]
    assert body["last_login_at"] is None
    assert body["created_by"] == body["id"]
    uuid.UUID(body["id"])
    assert not {"password", "password_hash"} & set(body)
    assert DEFAULT_PASSWORD not in response.text


async def test_register_duplicate_username_is_409_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    first = _registration()
    assert (await client.post(REGISTER, json=first)).status_code == 201

    again = _registration(username=first["username"].upper())
    body = assert_problem(await client.post(REGISTER, json=again), 409, "USERNAME_TAKEN")
    assert body["errors"] == [{"field": "username", "message": "already taken"}]


async def test_register_duplicate_email_is_409_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    first = _registration()
    assert (await client.post(REGISTER, json=first)).status_code == 201

    again = _registration(email=first["email"].upper())
    body = assert_problem(await client.post(REGISTER, json=again), 409, "EMAIL_TAKEN")
    assert body["errors"] == [{"field": "email", "message": "already registered"}]


@pytest.mark.parametrize(
    ("password", "missing"),
    [
        ("short", ["at least 12 characters", "an upper-case letter", "a digit", "a symbol"]),
        ("alllowercaseletters", ["an upper-case letter", "a digit", "a symbol"]),
        ("NoDigitsOrSymbolsHere", ["a digit", "a symbol"]),
        ("ALLUPPER-1234567", ["a lower-case letter"]),
    ],
)
async def test_register_weak_password_is_422_listing_the_rules(
    client: httpx.AsyncClient, password: str, missing: list[str]
) -> None:
    response = await client.post(REGISTER, json=_registration(password=password))

    body = assert_problem(response, 422, "VALIDATION_ERROR")
    [error] = body["errors"]
    assert error["field"] == "password"
    for rule in missing:
        assert rule in error["message"]
    assert password not in response.text


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"username": "ab"}, "username"),
        ({"username": "-leading-dash"}, "username"),
        ({"username": "has space"}, "username"),
        ({"username": "admin"}, "username"),
        ({"username": "x" * 40}, "username"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "two@@example.com"}, "email"),
        ({"name": ""}, "name"),
    ],
)
async def test_register_bad_username_or_email_is_422_naming_the_field(
    client: httpx.AsyncClient, fields: dict[str, str], field: str
) -> None:
    response = await client.post(REGISTER, json=_registration(**fields))

    body = assert_problem(response, 422, "VALIDATION_ERROR")
    assert [error["field"] for error in body["errors"]] == [field]


# -- login -------------------------------------------------------------------------------------


async def test_login_with_username_returns_a_bearer_token_pair(
    client: httpx.AsyncClient,
) -> None:
    data = _registration()
    registered = (await client.post(REGISTER, json=data)).json()

    tokens = await _tokens(client, data["username"])

    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 30 * 60
    assert tokens["refresh_expires_in"] == 7 * 24 * 3600
    assert tokens["access_token"] != tokens["refresh_token"]
    me = await _me(client, tokens["access_token"])
    assert me.status_code == 200
    assert me.json()["id"] == registered["id"]
    assert me.json()["last_login_at"] is not None


async def test_login_with_email_in_any_case(client: httpx.AsyncClient) -> None:
    data = _registration()
    registered = (await client.post(REGISTER, json=data)).json()

    tokens = await _tokens(client, data["email"].upper())

    assert (await _me(client, tokens["access_token"])).json()["id"] == registered["id"]


@pytest.mark.parametrize("by", ["username", "email"])
async def test_login_with_the_oauth2_password_form(client: httpx.AsyncClient, by: str) -> None:
    """What Swagger's Authorize button sends: `username` and `password`, urlencoded."""
    data = _registration()
    registered = (await client.post(REGISTER, json=data)).json()

    response = await client.post(
        LOGIN, data={"username": data[by], "password": DEFAULT_PASSWORD, "grant_type": "password"}
    )

    assert response.status_code == 200, response.text
    assert response.request.headers["content-type"] == "application/x-www-form-urlencoded"
    me = await _me(client, response.json()["access_token"])
    assert me.json()["id"] == registered["id"]


async def test_login_form_wrong_password_is_401(client: httpx.AsyncClient) -> None:
    data = _registration()
    await client.post(REGISTER, json=data)

    response = await client.post(LOGIN, data={"username": data["username"], "password": "no"})

    assert_unauthorized(response, "INVALID_CREDENTIALS")


async def test_login_wrong_password_and_unknown_user_look_the_same(
    client: httpx.AsyncClient,
) -> None:
    data = _registration()
    await client.post(REGISTER, json=data)

    wrong = assert_unauthorized(
        await _login(client, data["username"], "Wrong-Password-1!"), "INVALID_CREDENTIALS"
    )
    unknown = assert_unauthorized(
        await _login(client, "nobody-" + uuid.uuid4().hex[:6]), "INVALID_CREDENTIALS"
    )
    assert wrong["detail"] == unknown["detail"] == "Incorrect username or password"


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("text/plain", "login=a&password=b"),
        ("application/xml", "<login/>"),
        (None, ""),
    ],
)
async def test_login_with_another_content_type_is_415(
    client: httpx.AsyncClient, content_type: str | None, content: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}

    response = await client.post(LOGIN, content=content, headers=headers)

    body = assert_problem(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "application/x-www-form-urlencoded" in body["detail"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"password": DEFAULT_PASSWORD}, "login"),
        ({"login": "someone"}, "password"),
        ({"login": "", "password": DEFAULT_PASSWORD}, "login"),
    ],
)
async def test_login_missing_fields_is_422(
    client: httpx.AsyncClient, payload: dict[str, str], field: str
) -> None:
    body = assert_problem(await client.post(LOGIN, json=payload), 422, "VALIDATION_ERROR")
    assert field in [error["field"] for error in body["errors"]]


async def test_login_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        LOGIN, content=b'{"login": ', headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 422, "VALIDATION_ERROR")


async def test_deactivated_account_cannot_log_in(
    client: httpx.AsyncClient, users: UserFactory, session: AsyncSession
) -> None:
    user = await users.create()
    await session.execute(update(User).where(User.id == uuid.UUID(user.id)).values(is_active=False))
    await session.commit()

    assert_unauthorized(await _login(client, user.username), "INVALID_CREDENTIALS")


# -- me ----------------------------------------------------------------------------------------


async def test_me_shows_the_authenticated_user(client: httpx.AsyncClient) -> None:
    data = _registration()
    registered = (await client.post(REGISTER, json=data)).json()
    tokens = await _tokens(client, data["username"])

    body = (await _me(client, tokens["access_token"])).json()

    assert {k: body[k] for k in ("id", "username", "email", "name", "roles", "is_active")} == {
        "id": registered["id"],
        "username": data["username"],
        "email": data["email"],
        "name": "A Writer",
        "roles": ["viewer"],
        "is_active": True,
    }
    assert "password_hash" not in body


async def test_me_without_a_token_is_401(client: httpx.AsyncClient) -> None:
    assert_unauthorized(await client.get(ME), "NOT_AUTHENTICATED")


# -- token lifetimes ---------------------------------------------------------------------------


async def test_tokens_last_30_minutes_and_7_days_by_default(
    client: httpx.AsyncClient, users: UserFactory
) -> None:
    user = await users.create()
    access, refresh = claims_of(user.access_token), claims_of(user.refresh_token)

    assert access["exp"] - access["iat"] == 30 * 60
    assert refresh["exp"] - refresh["iat"] == 7 * 24 * 3600
    assert access["type"] == "access" and refresh["type"] == "refresh"
    assert access["sub"] == refresh["sub"] == user.id
    assert access["sid"] == refresh["sid"]
    assert access["iss"] == access["aud"] == "creativeflow"
    assert access["roles"] == ["viewer"] and access["username"] == user.username
    assert access["jti"] != refresh["jti"]


@pytest.mark.parametrize(
    "settings_overrides",
    [{"access_token_expire_minutes": 5, "refresh_token_expire_days": 2}],
    indirect=True,
)
async def test_token_lifetimes_come_from_settings(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    assert settings.access_token_expire_minutes == 5
    data = _registration()
    await client.post(REGISTER, json=data)

    tokens = await _tokens(client, data["username"])
    access, refresh = claims_of(tokens["access_token"]), claims_of(tokens["refresh_token"])

    assert access["exp"] - access["iat"] == 5 * 60
    assert refresh["exp"] - refresh["iat"] == 2 * 24 * 3600
    assert tokens["expires_in"] == 5 * 60
    assert tokens["refresh_expires_in"] == 2 * 24 * 3600

    rotated = (await _refresh(client, tokens["refresh_token"])).json()
    access = claims_of(rotated["access_token"])
    assert access["exp"] - access["iat"] == 5 * 60


# -- refresh rotation --------------------------------------------------------------------------


async def test_refresh_rotates_to_a_new_pair_in_the_same_session(
    client: httpx.AsyncClient, users: UserFactory
) -> None:
    user = await users.create()

    first = await _refresh(client, user.refresh_token)
    assert first.status_code == 200, first.text
    pair = first.json()
    second = await _refresh(client, pair["refresh_token"])
    assert second.status_code == 200, second.text
    newest = second.json()

    refresh_tokens = {user.refresh_token, pair["refresh_token"], newest["refresh_token"]}
    assert len(refresh_tokens) == 3
    assert len({claims_of(t)["jti"] for t in refresh_tokens}) == 3
    assert {claims_of(t)["sid"] for t in refresh_tokens} == {claims_of(user.access_token)["sid"]}
    me = await _me(client, newest["access_token"])
    assert me.status_code == 200 and me.json()["id"] == user.id
    assert newest["expires_in"] == 30 * 60


async def test_refresh_token_reuse_revokes_the_whole_family_and_it_stays_revoked(
    client: httpx.AsyncClient,
    users: UserFactory,
    session: AsyncSession,
    settings: Settings,
    engine: AsyncEngine,
    connection: AsyncConnection,
) -> None:
    user = await users.create()
    rotated = (await _refresh(client, user.refresh_token)).json()
    sid = claims_of(rotated["access_token"])["sid"]
    assert (await _me(client, rotated["access_token"])).status_code == 200

    # The first refresh token, presented again: stolen and replayed, or the thief was first.
    replay = await _refresh(client, user.refresh_token)

    assert_unauthorized(replay, "REFRESH_TOKEN_REUSED")
    assert_unauthorized(await _refresh(client, rotated["refresh_token"]), "SESSION_REVOKED")
    assert_unauthorized(await _me(client, rotated["access_token"]), "SESSION_REVOKED")
    assert_unauthorized(await _me(client, user.access_token), "SESSION_REVOKED")
    # Committed although the answer was a 401 ...
    revoked_at, reason = await _session_row(session, sid)
    assert revoked_at is not None and reason == "refresh_token_reuse"
    # ... so a restarted API process refuses the family too.
    async with (
        restarted_platform(settings, engine, connection) as again,
        client_for(again, random_address()) as restarted,
    ):
        assert_unauthorized(await _me(restarted, rotated["access_token"]), "SESSION_REVOKED")
        assert_unauthorized(await _refresh(restarted, rotated["refresh_token"]), "SESSION_REVOKED")


async def test_refresh_token_reuse_leaves_other_sessions_alone(
    client: httpx.AsyncClient, users: UserFactory
) -> None:
    user = await users.create()
    other_login = await _tokens(client, user.username)
    await _refresh(client, user.refresh_token)

    assert_unauthorized(await _refresh(client, user.refresh_token), "REFRESH_TOKEN_REUSED")

    assert (await _me(client, other_login["access_token"])).status_code == 200
    assert (await _refresh(client, other_login["refresh_token"])).status_code == 200


async def test_refresh_of_a_deactivated_account_is_refused(
    client: httpx.AsyncClient, users: UserFactory, session: AsyncSession
) -> None:
    user = await users.create()
    await session.execute(update(User).where(User.id == uuid.UUID(user.id)).values(is_active=False))
    await session.commit()

    assert_unauthorized(await _refresh(client, user.refresh_token), "ACCOUNT_DISABLED")


async def test_refresh_needs_a_body(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.post(REFRESH, json={}), 422, "VALIDATION_ERROR")
    assert body["errors"][0]["field"] == "refresh_token"


# -- logout ------------------------------------------------------------------------------------


async def test_logout_revokes_the_access_token_and_the_refresh_family(
    client: httpx.AsyncClient, users: UserFactory, session: AsyncSession
) -> None:
    user = await users.create()
    other = await _tokens(client, user.username)

    response = await user.post(LOGOUT)

    assert response.status_code == 204
    assert response.content == b""
    assert_unauthorized(await _me(client, user.access_token), "SESSION_REVOKED")
    assert_unauthorized(await _refresh(client, user.refresh_token), "SESSION_REVOKED")
    assert_unauthorized(await user.post(LOGOUT), "SESSION_REVOKED")
    revoked_at, reason = await _session_row(session, claims_of(user.access_token)["sid"])
    assert revoked_at is not None and reason == "logout"
    # Only this session ended: the user's other login still works.
    assert (await _me(client, other["access_token"])).status_code == 200


async def test_logout_after_refresh_also_kills_the_earlier_access_token(
    client: httpx.AsyncClient, users: UserFactory
) -> None:
    user = await users.create()
    rotated = (await _refresh(client, user.refresh_token)).json()

    assert (await client.post(LOGOUT, headers=bearer(rotated["access_token"]))).status_code == 204

    assert_unauthorized(await _me(client, user.access_token), "SESSION_REVOKED")
    assert_unauthorized(await _refresh(client, rotated["refresh_token"]), "SESSION_REVOKED")


async def test_logout_survives_a_restart(
    client: httpx.AsyncClient,
    users: UserFactory,
    settings: Settings,
    engine: AsyncEngine,
    connection: AsyncConnection,
) -> None:
    user = await users.create()
    still_logged_in = await users.login(user.username)
    assert (await user.post(LOGOUT)).status_code == 204

    async with (
        restarted_platform(settings, engine, connection) as again,
        client_for(again, random_address()) as restarted,
    ):
        assert_unauthorized(await _me(restarted, user.access_token), "SESSION_REVOKED")
        assert_unauthorized(await _refresh(restarted, user.refresh_token), "SESSION_REVOKED")
        me = await _me(restarted, still_logged_in.access_token)
        assert me.status_code == 200 and me.json()["id"] == user.id


# -- change password ---------------------------------------------------------------------------


async def _change_password(user: TestUser, current: str, new: str) -> httpx.Response:
    return await user.post(CHANGE_PASSWORD, json={"current_password": current, "new_password": new})


async def test_change_password_signs_out_every_other_session_only(
    client: httpx.AsyncClient, users: UserFactory, session: AsyncSession
) -> None:
    user = await users.create()
    other = await _tokens(client, user.username)
    third = await _tokens(client, user.email)

    response = await _change_password(user, DEFAULT_PASSWORD, NEW_PASSWORD)

    assert response.status_code == 204, response.text
    assert response.content == b""
    for login in (other, third):
        assert_unauthorized(await _me(client, login["access_token"]), "SESSION_REVOKED")
        assert_unauthorized(await _refresh(client, login["refresh_token"]), "SESSION_REVOKED")
        _revoked_at, reason = await _session_row(session, claims_of(login["access_token"])["sid"])
        assert reason == "password_changed"
    # The session that changed it carries on, and can still rotate.
    assert (await _me(client, user.access_token)).status_code == 200
    assert (await _refresh(client, user.refresh_token)).status_code == 200
    # Only the new password signs in now.
    assert_unauthorized(await _login(client, user.username), "INVALID_CREDENTIALS")
    assert (await _login(client, user.username, NEW_PASSWORD)).status_code == 200


async def test_change_password_with_wrong_current_password_is_401_and_changes_nothing(
    client: httpx.AsyncClient, users: UserFactory
) -> None:
    user = await users.create()
    other = await _tokens(client, user.username)

    response = await _change_password(user, "Not-The-Password-1!", NEW_PASSWORD)

    assert_unauthorized(response, "INVALID_CREDENTIALS")
    assert (await _me(client, other["access_token"])).status_code == 200
    assert (await _login(client, user.username)).status_code == 200
    assert_unauthorized(await _login(client, user.username, NEW_PASSWORD), "INVALID_CREDENTIALS")


async def test_change_password_to_the_same_password_is_409(users: UserFactory) -> None:
    user = await users.create()

    response = await _change_password(user, DEFAULT_PASSWORD, DEFAULT_PASSWORD)

    body = assert_problem(response, 409, "CONFLICT")
    assert body["errors"] == [{"field": "new_password", "message": "same as the current password"}]


async def test_change_password_to_a_weak_password_is_422(
    client: httpx.AsyncClient, users: UserFactory
) -> None:
    user = await users.create()

    response = await _change_password(user, DEFAULT_PASSWORD, "weakpassword")

    body = assert_problem(response, 422, "VALIDATION_ERROR")
    [error] = body["errors"]
    assert error["field"] == "new_password"
    assert "an upper-case letter" in error["message"] and "a digit" in error["message"]
    assert (await _login(client, user.username)).status_code == 200


async def test_change_password_guesses_are_throttled_like_logins(
    client: httpx.AsyncClient, users: UserFactory
) -> None:
    """A stolen access token must not allow unlimited guesses of the current password."""
    user = await users.create()
    for _ in range(5):
        assert_unauthorized(
            await _change_password(user, "Guess-Number-1!", NEW_PASSWORD), "INVALID_CREDENTIALS"
        )

    response = await _change_password(user, DEFAULT_PASSWORD, NEW_PASSWORD)

    assert_problem(response, 429, "RATE_LIMITED")
    assert int(response.headers["retry-after"]) > 0
    assert_problem(await _login(client, user.username), 429, "RATE_LIMITED")


# -- the Redis revocation mirror ---------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [REDIS], indirect=True)
async def test_logout_is_mirrored_in_redis_with_a_ttl(
    client: httpx.AsyncClient, users: UserFactory, redis: Redis, platform: Platform
) -> None:
    assert isinstance(platform.auth.revocations, RedisRevocationList)
    user = await users.create()
    sid = uuid.UUID(claims_of(user.access_token)["sid"])
    key = platform.auth.revocations.key(sid)
    assert await redis.exists(key) == 0

    assert (await user.post(LOGOUT)).status_code == 204

    try:
        assert await redis.exists(key) == 1
        assert 0 < await redis.ttl(key) <= 7 * 24 * 3600
    finally:
        await redis.delete(key)


@pytest.mark.parametrize("settings_overrides", [REDIS], indirect=True)
async def test_reuse_and_password_change_revocations_are_mirrored_in_redis(
    client: httpx.AsyncClient, users: UserFactory, redis: Redis, platform: Platform
) -> None:
    assert isinstance(platform.auth.revocations, RedisRevocationList)
    user = await users.create()
    other = await users.login(user.username)
    await _refresh(client, other.refresh_token)
    reused_sid = uuid.UUID(claims_of(other.access_token)["sid"])
    third = await users.login(user.username)
    changed_sid = uuid.UUID(claims_of(third.access_token)["sid"])
    keys = [platform.auth.revocations.key(s) for s in (reused_sid, changed_sid)]

    try:
        assert_unauthorized(await _refresh(client, other.refresh_token), "REFRESH_TOKEN_REUSED")
        assert (await _change_password(user, DEFAULT_PASSWORD, NEW_PASSWORD)).status_code == 204
        for key in keys:
            assert await redis.exists(key) == 1
            assert await redis.ttl(key) > 0
        own_key = platform.auth.revocations.key(uuid.UUID(claims_of(user.access_token)["sid"]))
        assert await redis.exists(own_key) == 0
    finally:
        await redis.delete(*keys)


@pytest.mark.parametrize("settings_overrides", [REDIS], indirect=True)
async def test_a_session_revoked_only_in_redis_is_refused(
    client: httpx.AsyncClient,
    users: UserFactory,
    redis: Redis,
    platform: Platform,
    session: AsyncSession,
    settings: Settings,
    engine: AsyncEngine,
    connection: AsyncConnection,
) -> None:
    """Another worker's logout reaches this one through Redis, before any database read."""
    assert isinstance(platform.auth.revocations, RedisRevocationList)
    user = await users.create()
    sid = claims_of(user.access_token)["sid"]
    key = platform.auth.revocations.key(uuid.UUID(sid))

    await redis.set(key, "1", ex=60)
    try:
        assert_unauthorized(await _me(client, user.access_token), "SESSION_REVOKED")
        assert_unauthorized(await _refresh(client, user.refresh_token), "SESSION_REVOKED")
        assert await _session_row(session, sid) == (None, None)
        async with (
            restarted_platform(settings, engine, connection) as again,
            client_for(again, random_address()) as restarted,
        ):
            assert_unauthorized(await _me(restarted, user.access_token), "SESSION_REVOKED")
    finally:
        await redis.delete(key)
    assert (await _me(client, user.access_token)).status_code == 200


async def test_an_unreachable_redis_mirror_degrades_to_the_database() -> None:
    """A Redis outage must neither fail every authenticated request nor lose a logout: the
    database, which every check also reads, stays the source of truth."""
    redis = Redis.from_url(f"redis://127.0.0.1:{closed_port()}/0")
    mirror = RedisRevocationList(redis)
    try:
        await mirror.revoke(uuid.uuid4(), 60)
        assert await mirror.is_revoked(uuid.uuid4()) is False
    finally:
        await redis.aclose()


# -- failed-login throttle ---------------------------------------------------------------------

THROTTLE_STORAGES = [pytest.param({}, id="memory"), pytest.param(REDIS, id="redis")]


@pytest.fixture
async def fresh_client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """A client at an address of its own (throttles kept in Redis outlive the test)."""
    async with client_for(platform, random_address()) as client:
        yield client


@pytest.mark.parametrize("settings_overrides", THROTTLE_STORAGES, indirect=True)
async def test_failed_logins_for_one_account_answer_429_even_with_the_right_password(
    fresh_client: httpx.AsyncClient, platform: Platform, settings: Settings
) -> None:
    assert settings.login_max_failures_per_account == 5
    user = await UserFactory(fresh_client, platform).create()
    # Five failures, naming the account in different ways: they all count against it.
    for login in (
        user.username,
        user.email,
        user.username.upper(),
        user.email.upper(),
        user.username,
    ):
        assert_unauthorized(
            await _login(fresh_client, login, "Wrong-Guess-123!"), "INVALID_CREDENTIALS"
        )

    response = await _login(fresh_client, user.username)

    body = assert_problem(response, 429, "RATE_LIMITED")
    retry_after = int(response.headers["retry-after"])
    assert 0 < retry_after <= settings.login_failure_window_seconds + 1
    assert body["retry_after"] == retry_after
    assert_problem(await _login(fresh_client, user.email), 429, "RATE_LIMITED")
    # The account is throttled, not the whole address.
    other = await UserFactory(fresh_client, platform).create()
    assert (await _login(fresh_client, other.username)).status_code == 200


@pytest.mark.parametrize(
    "settings_overrides",
    [
        pytest.param({"login_max_failures_per_address": 3}, id="memory"),
        pytest.param({**REDIS, "login_max_failures_per_address": 3}, id="redis"),
    ],
    indirect=True,
)
async def test_failures_from_one_address_across_accounts_answer_429(
    fresh_client: httpx.AsyncClient, platform: Platform
) -> None:
    factory = UserFactory(fresh_client, platform)
    victims = [await factory.create() for _ in range(2)]
    target = await factory.create()
    for login in (victims[0].username, victims[1].username, "nobody-" + uuid.uuid4().hex[:6]):
        assert_unauthorized(
            await _login(fresh_client, login, "Wrong-Guess-123!"), "INVALID_CREDENTIALS"
        )

    response = await _login(fresh_client, target.username)

    assert_problem(response, 429, "RATE_LIMITED")
    assert int(response.headers["retry-after"]) > 0
    # Another address is not affected.
    async with client_for(platform, random_address()) as elsewhere:
        assert (await _login(elsewhere, target.username)).status_code == 200


@pytest.mark.parametrize("settings_overrides", THROTTLE_STORAGES, indirect=True)
async def test_a_successful_login_clears_the_account_counter(
    fresh_client: httpx.AsyncClient, platform: Platform
) -> None:
    user = await UserFactory(fresh_client, platform).create()
    for _round in range(2):
        for _ in range(4):
            assert_unauthorized(
                await _login(fresh_client, user.username, "Wrong-Guess-123!"), "INVALID_CREDENTIALS"
            )
        assert (await _login(fresh_client, user.email)).status_code == 200


@pytest.mark.parametrize("settings_overrides", [REDIS], indirect=True)
async def test_the_redis_throttle_is_shared_by_every_api_process(
    fresh_client: httpx.AsyncClient,
    platform: Platform,
    settings: Settings,
    engine: AsyncEngine,
    connection: AsyncConnection,
    redis: Redis,
) -> None:
    user = await UserFactory(fresh_client, platform).create()
    for _ in range(5):
        await _login(fresh_client, user.username, "Wrong-Guess-123!")
    keys = [key async for key in redis.scan_iter(match=f"*login-acct/user:{user.id}*")]
    assert keys, "the account counter should live in Redis"

    async with (
        restarted_platform(settings, engine, connection) as worker,
        client_for(worker, random_address()) as other_process,
    ):
        assert_problem(await _login(other_process, user.username), 429, "RATE_LIMITED")
    await redis.delete(*keys)
