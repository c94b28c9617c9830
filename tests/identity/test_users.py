"""/api/v1/users: listing and search, self-service profile, admin changes, deactivation,
deletion, and granting and revoking roles."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from creativeflow.identity.permissions import BUILTIN_ROLE_PERMISSIONS, Permission

if TYPE_CHECKING:
    from tests.factories import TestUser, UserFactory

USERS = "/api/v1/users"
ALL_PERMISSIONS = sorted(str(p) for p in Permission)


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


async def _me(user: TestUser) -> dict[str, Any]:
    response = await user.get("/api/v1/auth/me")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _custom_role(admin: TestUser, name: str, permissions: list[str]) -> None:
    response = await admin.post("/api/v1/roles", json={"name": name, "permissions": permissions})
    assert response.status_code == 201, response.text


async def _grant(admin: TestUser, user: TestUser, role: str) -> dict[str, Any]:
    response = await admin.put(f"{USERS}/{user.id}/roles/{role}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _api_key(user: TestUser, **body: Any) -> str:
    response = await user.post("/api/v1/auth/api-keys", json={"name": "script", **body})
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


async def _make_sole_admin(admin: TestUser) -> None:
    """Deactivate every other active admin (inside the test's transaction), so last-admin
    rules are tested whatever else the database holds."""
    offset = 0
    while True:
        page = (await admin.get(USERS, params={"limit": 100, "offset": offset})).json()
        for user in page["items"]:
            if user["id"] != admin.id and "admin" in user["roles"] and user["is_active"]:
                response = await admin.patch(f"{USERS}/{user['id']}", json={"is_active": False})
                assert response.status_code == 200, response.text
        if not page["has_more"]:
            return
        offset += 100


# -- authentication -----------------------------------------------------------------------------

ROUTES = [
    ("GET", USERS, None),
    ("GET", f"{USERS}/me", None),
    ("PATCH", f"{USERS}/me", {"name": "x"}),
    ("GET", f"{USERS}/{uuid.uuid4()}", None),
    ("PATCH", f"{USERS}/{uuid.uuid4()}", {"name": "x"}),
    ("DELETE", f"{USERS}/{uuid.uuid4()}", None),
    ("GET", f"{USERS}/{uuid.uuid4()}/roles", None),
    ("PUT", f"{USERS}/{uuid.uuid4()}/roles/manager", None),
    ("DELETE", f"{USERS}/{uuid.uuid4()}/roles/manager", None),
]


@pytest.mark.parametrize(("method", "url", "body"), ROUTES)
async def test_user_routes_need_a_token(
    client: httpx.AsyncClient, method: str, url: str, body: dict[str, Any] | None
) -> None:
    response = await client.request(method, url, json=body)
    assert _problem(response, 401, "NOT_AUTHENTICATED")["detail"] == "Not authenticated"


@pytest.mark.parametrize("token", ["garbage", "a.b.c"])
async def test_user_routes_refuse_bad_tokens(client: httpx.AsyncClient, token: str) -> None:
    response = await client.get(f"{USERS}/me", headers={"Authorization": f"Bearer {token}"})
    _problem(response, 401, "INVALID_TOKEN")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", ""),
        ("DELETE", "/{id}"),
        ("PUT", "/{id}/roles/manager"),
        ("DELETE", "/{id}/roles/viewer"),
    ],
)
async def test_admin_user_routes_refuse_viewers(users: UserFactory, method: str, path: str) -> None:
    viewer = await users.create()
    other = await users.create()
    url = USERS + path.format(id=other.id)
    response = await viewer.client.request(method, url, headers=viewer.headers)
    problem = _problem(response, 403, "PERMISSION_DENIED")
    assert problem["required_permission"] == "users:manage"
    assert (await _me(other))["roles"] == ["viewer"]


# -- list and search ----------------------------------------------------------------------------


async def test_admin_lists_users_with_paging(users: UserFactory) -> None:
    admin = await users.admin()
    created = [await users.create() for _ in range(3)]

    page = (await admin.get(USERS, params={"limit": 100})).json()
    listed = {user["id"]: user for user in page["items"]}
    assert {admin.id, *(u.id for u in created)} <= set(listed)
    assert page["total"] == len(page["items"])
    assert listed[created[0].id]["username"] == created[0].username
    assert listed[created[0].id]["roles"] == ["viewer"]
    assert listed[admin.id]["roles"] == ["admin"]
    assert all("password_hash" not in user and "password" not in user for user in page["items"])
    ids = [user["id"] for user in page["items"]]
    assert ids == sorted(ids)  # time-ordered ids: oldest first

    first = (await admin.get(USERS, params={"limit": 2})).json()
    rest = (await admin.get(USERS, params={"limit": 100, "offset": 2})).json()
    assert first["has_more"] is True
    assert [u["id"] for u in first["items"]] + [u["id"] for u in rest["items"]] == ids
    assert rest["has_more"] is False and rest["offset"] == 2


async def test_search_matches_username_email_and_name(users: UserFactory) -> None:
    admin = await users.admin()
    target = await users.create()
    others = [await users.create() for _ in range(2)]
    renamed = await target.patch(f"{USERS}/me", json={"name": "Zebediah Quartermaine"})
    assert renamed.status_code == 200

    async def found(term: str) -> list[str]:
        response = await admin.get(USERS, params={"search": term, "limit": 100})
        assert response.status_code == 200
        body = response.json()
        assert body["total"] == len(body["items"])
        return [user["id"] for user in body["items"]]

    assert await found(target.username) == [target.id]
    assert await found(target.username.upper()) == [target.id]
    assert await found(target.email) == [target.id]
    assert await found("zebediah quarter") == [target.id]
    assert await found("QUARTERMAINE") == [target.id]
    assert set(await found("@example.com")) >= {target.id, *(o.id for o in others)}
    assert await found("no-such-person-anywhere") == []
    # LIKE wildcards are literal characters in a search.
    assert await found("%") == []
    assert await found("_") == []


async def test_search_is_validated(users: UserFactory) -> None:
    admin = await users.admin()
    response = await admin.get(USERS, params={"search": "x" * 101})
    assert _problem(response, 422, "VALIDATION_ERROR")["errors"][0]["field"] == "search"


# -- self service -------------------------------------------------------------------------------


async def test_me_is_not_captured_by_the_id_route(users: UserFactory) -> None:
    user = await users.create()
    response = await user.get(f"{USERS}/me")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == user.id
    assert body["username"] == user.username
    assert body["roles"] == ["viewer"]
    assert body == (await user.get(f"{USERS}/{user.id}")).json()


async def test_update_me_changes_name_and_email(users: UserFactory) -> None:
    user = await users.create()
    response = await user.patch(
        f"{USERS}/me", json={"name": "Ada Lovelace", "email": "Ada.L@Example.COM"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "Ada Lovelace"
    assert body["email"] == "ada.l@example.com"
    assert body["updated_by"] == user.id
    assert body["username"] == user.username
    me = await _me(user)
    assert (me["name"], me["email"]) == ("Ada Lovelace", "ada.l@example.com")
    # The new address signs in.
    again = await user.client.post(
        "/api/v1/auth/login", json={"login": "ada.l@example.com", "password": user.password}
    )
    assert again.status_code == 200


async def test_update_me_with_an_unchanged_email_is_fine(users: UserFactory) -> None:
    user = await users.create()
    response = await user.patch(f"{USERS}/me", json={"email": user.email.upper()})
    assert response.status_code == 200
    assert response.json()["email"] == user.email


async def test_update_me_refuses_a_taken_email(users: UserFactory) -> None:
    user = await users.create()
    other = await users.create()
    response = await user.patch(f"{USERS}/me", json={"email": other.email.upper()})
    problem = _problem(response, 409, "EMAIL_TAKEN")
    assert problem["errors"] == [{"field": "email", "message": "already registered"}]
    assert (await _me(user))["email"] == user.email


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"name": ""}, "name"),
        ({"name": "n" * 121}, "name"),
        ({"name": None}, "name"),
        ({"email": None}, "email"),
        ({"username": "renamed"}, "username"),
        ({"password_hash": "x"}, "password_hash"),
    ],
)
async def test_update_me_validates(users: UserFactory, body: dict[str, Any], field: str) -> None:
    user = await users.create()
    response = await user.patch(f"{USERS}/me", json=body)
    problem = _problem(response, 422, "VALIDATION_ERROR")
    assert problem["errors"][0]["field"] == field
    me = await _me(user)
    assert (me["username"], me["email"]) == (user.username, user.email)


async def test_only_user_managers_change_is_active(users: UserFactory) -> None:
    user = await users.create()
    response = await user.patch(f"{USERS}/me", json={"is_active": False})
    problem = _problem(response, 403, "PERMISSION_DENIED")
    assert problem["required_permission"] == "users:manage"
    assert (await _me(user))["is_active"] is True
    # Sending the current value changes nothing and is accepted.
    same = await user.patch(f"{USERS}/{user.id}", json={"is_active": True, "name": "Still Me"})
    assert same.status_code == 200
    assert same.json()["name"] == "Still Me"


# -- reading and changing other users -----------------------------------------------------------


async def test_other_users_are_invisible_without_users_manage(users: UserFactory) -> None:
    user = await users.create()
    other = await users.create()
    missing = await user.get(f"{USERS}/{uuid.uuid4()}")
    hidden = await user.get(f"{USERS}/{other.id}")
    # Exactly the same answer as for a user that does not exist.
    for response in (missing, hidden):
        assert _problem(response, 404, "USER_NOT_FOUND")["detail"] == "User not found"
    _problem(await user.patch(f"{USERS}/{other.id}", json={"name": "Pwned"}), 404, "USER_NOT_FOUND")
    _problem(await user.get(f"{USERS}/{other.id}/roles"), 404, "USER_NOT_FOUND")
    assert (await _me(other))["name"] != "Pwned"


async def test_malformed_user_id_is_a_validation_error(users: UserFactory) -> None:
    admin = await users.admin()
    response = await admin.get(f"{USERS}/12345")
    assert _problem(response, 422, "VALIDATION_ERROR")["errors"][0]["field"] == "user_id"


async def test_admin_reads_and_updates_another_user(users: UserFactory) -> None:
    admin = await users.admin()
    user = await users.create()
    got = await admin.get(f"{USERS}/{user.id}")
    assert got.status_code == 200
    assert got.json()["username"] == user.username

    response = await admin.patch(f"{USERS}/{user.id}", json={"name": "Renamed By Admin"})
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Renamed By Admin"
    assert body["updated_by"] == admin.id
    assert body["created_by"] == user.id
    assert (await _me(user))["name"] == "Renamed By Admin"
    _problem(await admin.get(f"{USERS}/{uuid.uuid4()}"), 404, "USER_NOT_FOUND")
    _problem(
        await admin.patch(f"{USERS}/{uuid.uuid4()}", json={"name": "x"}), 404, "USER_NOT_FOUND"
    )


async def test_deactivation_stops_tokens_and_api_keys(users: UserFactory) -> None:
    admin = await users.admin()
    user = await users.create()
    key = await _api_key(user)
    assert (await user.client.get("/api/v1/auth/me", headers={"X-API-Key": key})).status_code == 200

    response = await admin.patch(f"{USERS}/{user.id}", json={"is_active": False})
    assert response.status_code == 200
    assert response.json()["is_active"] is False

    _problem(await user.get("/api/v1/auth/me"), 401, "SESSION_REVOKED")
    _problem(await user.get(f"{USERS}/me"), 401, "SESSION_REVOKED")
    keyed = await user.client.get("/api/v1/auth/me", headers={"X-API-Key": key})
    _problem(keyed, 401, "ACCOUNT_DISABLED")
    bearer_key = await user.client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {key}"}
    )
    _problem(bearer_key, 401, "ACCOUNT_DISABLED")
    refreshed = await user.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}
    )
    assert refreshed.status_code == 401
    login = await user.client.post(
        "/api/v1/auth/login", json={"login": user.username, "password": user.password}
    )
    _problem(login, 401, "INVALID_CREDENTIALS")

    # Reactivated: old sessions stay revoked, the API key works again, login works.
    back = await admin.patch(f"{USERS}/{user.id}", json={"is_active": True})
    assert back.json()["is_active"] is True
    _problem(await user.get("/api/v1/auth/me"), 401, "SESSION_REVOKED")
    keyed = await user.client.get("/api/v1/auth/me", headers={"X-API-Key": key})
    assert keyed.status_code == 200 and keyed.json()["id"] == user.id
    relogged = await users.login(user.username)
    assert (await _me(relogged))["is_active"] is True


async def test_admins_cannot_deactivate_or_delete_themselves(users: UserFactory) -> None:
    admin = await users.admin()
    for url in (f"{USERS}/me", f"{USERS}/{admin.id}"):
        response = await admin.patch(url, json={"is_active": False})
        _problem(response, 409, "CANNOT_DEACTIVATE_SELF")
    _problem(await admin.delete(f"{USERS}/{admin.id}"), 409, "CANNOT_DELETE_SELF")
    assert (await _me(admin))["is_active"] is True


# -- delete -------------------------------------------------------------------------------------


async def test_admin_deletes_a_user(users: UserFactory) -> None:
    admin = await users.admin()
    user = await users.create()
    key = await _api_key(user)
    response = await admin.delete(f"{USERS}/{user.id}")
    assert response.status_code == 204
    assert response.content == b""
    _problem(await admin.get(f"{USERS}/{user.id}"), 404, "USER_NOT_FOUND")
    _problem(await admin.delete(f"{USERS}/{user.id}"), 404, "USER_NOT_FOUND")
    assert (await user.get("/api/v1/auth/me")).status_code == 401
    keyed = await user.client.get("/api/v1/auth/me", headers={"X-API-Key": key})
    _problem(keyed, 401, "INVALID_API_KEY")
    listed = (await admin.get(USERS, params={"search": user.username})).json()
    assert listed["items"] == [] and listed["total"] == 0
    # The username is free again.
    again = await users.create(username=user.username)
    assert again.id != user.id


# -- roles of a user ----------------------------------------------------------------------------


async def test_granting_manager_gives_its_permissions(users: UserFactory) -> None:
    admin = await users.admin()
    viewer = await users.create()
    # analytics:view is a manager permission a viewer lacks: a key cannot be scoped to it.
    refused = await viewer.post(
        "/api/v1/auth/api-keys", json={"name": "stats", "scopes": ["analytics:view"]}
    )
    _problem(refused, 403, "PERMISSION_NOT_HELD")

    body = await _grant(admin, viewer, "manager")
    assert body["id"] == viewer.id
    assert body["roles"] == ["manager", "viewer"]
    assert (await _me(viewer))["roles"] == ["manager", "viewer"]
    allowed = await viewer.post(
        "/api/v1/auth/api-keys", json={"name": "stats", "scopes": ["analytics:view"]}
    )
    assert allowed.status_code == 201
    assert allowed.json()["scopes"] == ["analytics:view"]

    roles = (await viewer.get(f"{USERS}/{viewer.id}/roles")).json()
    assert [r["name"] for r in roles["items"]] == ["manager", "viewer"]
    assert roles["total"] == 2
    manager = roles["items"][0]
    assert manager["is_builtin"] is True
    assert manager["permissions"] == sorted(str(p) for p in BUILTIN_ROLE_PERMISSIONS["manager"])
    assert (await admin.get(f"{USERS}/{viewer.id}/roles")).json() == roles


async def test_grant_is_idempotent(users: UserFactory) -> None:
    admin = await users.admin()
    user = await users.create()
    first = await _grant(admin, user, "manager")
    second = await _grant(admin, user, "manager")
    assert first["roles"] == second["roles"] == ["manager", "viewer"]
    roles = (await admin.get(f"{USERS}/{user.id}/roles")).json()
    assert roles["total"] == 2


async def test_grant_and_revoke_unknown_user_or_role(users: UserFactory) -> None:
    admin = await users.admin()
    user = await users.create()
    _problem(await admin.put(f"{USERS}/{user.id}/roles/no-such-role"), 404, "ROLE_NOT_FOUND")
    _problem(await admin.put(f"{USERS}/{uuid.uuid4()}/roles/manager"), 404, "USER_NOT_FOUND")
    _problem(await admin.delete(f"{USERS}/{user.id}/roles/no-such-role"), 404, "ROLE_NOT_FOUND")
    _problem(await admin.delete(f"{USERS}/{uuid.uuid4()}/roles/viewer"), 404, "USER_NOT_FOUND")
    _problem(await admin.delete(f"{USERS}/{user.id}/roles/manager"), 404, "ROLE_NOT_GRANTED")
    _problem(await admin.get(f"{USERS}/{uuid.uuid4()}/roles"), 404, "USER_NOT_FOUND")
    assert (await _me(user))["roles"] == ["viewer"]


async def test_revoke_takes_effect_on_existing_tokens(users: UserFactory) -> None:
    admin = await users.admin()
    await _custom_role(admin, "people-admins", ["users:manage"])
    user = await users.create()
    await _grant(admin, user, "people-admins")
    # A custom role with users:manage lets its holder list users.
    listed = await user.get(USERS, params={"search": admin.username})
    assert listed.status_code == 200
    assert [u["id"] for u in listed.json()["items"]] == [admin.id]

    response = await admin.delete(f"{USERS}/{user.id}/roles/people-admins")
    assert response.status_code == 204
    assert (await _me(user))["roles"] == ["viewer"]
    _problem(await user.get(USERS), 403, "PERMISSION_DENIED")


async def test_a_user_with_no_role_left_is_signed_in_but_may_do_nothing(
    users: UserFactory,
) -> None:
    admin = await users.admin()
    user = await users.create()
    response = await admin.delete(f"{USERS}/{user.id}/roles/viewer")
    assert response.status_code == 204
    me = await _me(user)  # still authenticated: the session and account are fine
    assert me["roles"] == []
    _problem(await user.get(f"/api/v1/{user.id}/ideas"), 403, "PERMISSION_DENIED")


async def test_users_manage_alone_cannot_escalate_or_touch_admins(users: UserFactory) -> None:
    admin = await users.admin()
    await _custom_role(admin, "people-admins", ["users:manage"])
    helper = await users.create()
    await _grant(admin, helper, "people-admins")
    viewer = await users.create()

    for target in (helper, viewer):
        grant = await helper.put(f"{USERS}/{target.id}/roles/admin")
        problem = _problem(grant, 403, "PERMISSION_NOT_HELD")
        assert "roles:manage" in problem["missing_permissions"]
    _problem(
        await helper.patch(f"{USERS}/{admin.id}", json={"is_active": False}),
        403,
        "PERMISSION_NOT_HELD",
    )
    _problem(await helper.delete(f"{USERS}/{admin.id}"), 403, "PERMISSION_NOT_HELD")
    _problem(await helper.delete(f"{USERS}/{admin.id}/roles/admin"), 403, "PERMISSION_NOT_HELD")
    _problem(
        await helper.patch(f"{USERS}/{admin.id}", json={"email": "mine@example.com"}),
        403,
        "PERMISSION_NOT_HELD",
    )
    admin_me = await _me(admin)
    assert admin_me["roles"] == ["admin"] and admin_me["is_active"] is True
    assert admin_me["email"] == admin.email
    assert (await _me(helper))["roles"] == ["people-admins", "viewer"]

    # Users who hold no more than the helper (a viewer) can be managed by them.
    changed = await helper.patch(f"{USERS}/{viewer.id}", json={"is_active": False})
    assert changed.status_code == 200 and changed.json()["is_active"] is False
    assert changed.json()["updated_by"] == helper.id


async def test_the_last_active_admin_keeps_the_admin_role(users: UserFactory) -> None:
    admin = await users.admin()
    await _make_sole_admin(admin)
    second = await users.admin()
    # Another active admin exists: revoking theirs is fine.
    assert (await admin.delete(f"{USERS}/{second.id}/roles/admin")).status_code == 204
    assert (await admin.get(f"{USERS}/{second.id}")).json()["roles"] == []

    response = await admin.delete(f"{USERS}/{admin.id}/roles/admin")
    assert "last active admin" in _problem(response, 409, "LAST_ADMIN")["detail"]
    assert (await _me(admin))["roles"] == ["admin"]

    # An inactive admin does not count as another admin.
    await _grant(admin, second, "admin")
    await admin.patch(f"{USERS}/{second.id}", json={"is_active": False})
    _problem(await admin.delete(f"{USERS}/{admin.id}/roles/admin"), 409, "LAST_ADMIN")
    # An active one does: then an admin may step down.
    await admin.patch(f"{USERS}/{second.id}", json={"is_active": True})
    assert (await admin.delete(f"{USERS}/{admin.id}/roles/admin")).status_code == 204
    assert (await _me(admin))["roles"] == []
    _problem(await admin.get(USERS), 403, "PERMISSION_DENIED")


async def test_the_last_active_admin_cannot_be_deactivated_or_deleted(
    users: UserFactory,
) -> None:
    admin = await users.admin()
    await _make_sole_admin(admin)
    # A user with every permission through a custom role, but not the admin role.
    await _custom_role(admin, "everything", ALL_PERMISSIONS)
    root = await users.create()
    await _grant(admin, root, "everything")

    deactivate = await root.patch(f"{USERS}/{admin.id}", json={"is_active": False})
    _problem(deactivate, 409, "LAST_ADMIN")
    _problem(await root.delete(f"{USERS}/{admin.id}"), 409, "LAST_ADMIN")
    assert (await _me(admin))["is_active"] is True

    await _grant(admin, root, "admin")
    assert (await root.delete(f"{USERS}/{admin.id}")).status_code == 204
    _problem(await root.get(f"{USERS}/{admin.id}"), 404, "USER_NOT_FOUND")
