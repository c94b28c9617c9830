"""/api/v1/roles: CRUD for admins, built-in roles protected, no permission beyond your own."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from creativeflow.identity.permissions import BUILTIN_ROLE_PERMISSIONS, BuiltinRole

if TYPE_CHECKING:
    from tests.factories import TestUser, UserFactory

ROLES = "/api/v1/roles"


async def _create_role(
    admin: TestUser, name: str, permissions: list[str], description: str | None = None
) -> dict[str, Any]:
    response = await admin.post(
        ROLES, json={"name": name, "permissions": permissions, "description": description}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _builtin(admin: TestUser, name: str) -> dict[str, Any]:
    response = await admin.get(ROLES, params={"limit": 100})
    assert response.status_code == 200
    return next(role for role in response.json()["items"] if role["name"] == name)


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code, body
    return body


# -- authentication and authorization -----------------------------------------------------------

ROLE_ROUTES = [
    ("POST", ROLES, {"name": "editors"}),
    ("GET", ROLES, None),
    ("GET", f"{ROLES}/{uuid.uuid4()}", None),
    ("PATCH", f"{ROLES}/{uuid.uuid4()}", {"description": "x"}),
    ("DELETE", f"{ROLES}/{uuid.uuid4()}", None),
]


@pytest.mark.parametrize(("method", "url", "body"), ROLE_ROUTES)
async def test_role_routes_need_a_token(
    client: httpx.AsyncClient, method: str, url: str, body: dict[str, Any] | None
) -> None:
    response = await client.request(method, url, json=body)
    _problem(response, 401, "NOT_AUTHENTICATED")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "url", "body"), ROLE_ROUTES)
async def test_role_routes_refuse_non_admins(
    users: UserFactory, method: str, url: str, body: dict[str, Any] | None
) -> None:
    for role in (BuiltinRole.VIEWER, BuiltinRole.MANAGER):
        user = await users.create(role=role)
        response = await user.client.request(method, url, json=body, headers=user.headers)
        problem = _problem(response, 403, "PERMISSION_DENIED")
        assert problem["required_permission"] == "roles:manage"


# -- create -------------------------------------------------------------------------------------


async def test_create_role_returns_it_with_audit_fields(users: UserFactory) -> None:
    admin = await users.admin()
    body = await _create_role(
        admin,
        "brand-editors",
        ["brands:update", "brands:read", "brands:update"],
        description="Edits brands",
    )
    assert body["name"] == "brand-editors"
    assert body["description"] == "Edits brands"
    assert body["permissions"] == ["brands:read", "brands:update"]  # sorted, deduplicated
    assert body["is_builtin"] is False
    assert body["created_by"] == admin.id
    assert body["updated_by"] == admin.id
    assert uuid.UUID(body["id"]).version == 7
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None
    fetched = await admin.get(f"{ROLES}/{body['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == body


async def test_create_role_without_permissions_is_allowed(users: UserFactory) -> None:
    admin = await users.admin()
    body = await _create_role(admin, "placeholder", [])
    assert body["permissions"] == []
    assert body["description"] is None


@pytest.mark.parametrize("name", ["editors", "admin", "viewer"])
async def test_create_role_with_a_taken_name_conflicts(users: UserFactory, name: str) -> None:
    admin = await users.admin()
    if name == "editors":
        await _create_role(admin, "editors", [])
    response = await admin.post(ROLES, json={"name": name, "permissions": ["ideas:read"]})
    problem = _problem(response, 409, "ROLE_NAME_TAKEN")
    assert problem["errors"] == [{"field": "name", "message": "already taken"}]


async def test_create_role_names_every_unknown_permission(users: UserFactory) -> None:
    admin = await users.admin()
    response = await admin.post(
        ROLES,
        json={"name": "editors", "permissions": ["brands:read", "brands:fly", "teleport"]},
    )
    problem = _problem(response, 422, "VALIDATION_ERROR")
    assert [e["field"] for e in problem["errors"]] == ["permissions"]
    message = problem["errors"][0]["message"]
    assert "brands:fly" in message and "teleport" in message
    assert "brands:read" not in message


@pytest.mark.parametrize(
    "name", ["a", "Editors", "content editors", "-editors", "editors-", "ed_itors", "x" * 65, ""]
)
async def test_create_role_refuses_names_that_are_not_slugs(users: UserFactory, name: str) -> None:
    admin = await users.admin()
    response = await admin.post(ROLES, json={"name": name, "permissions": []})
    problem = _problem(response, 422, "VALIDATION_ERROR")
    assert problem["errors"][0]["field"] == "name"


async def test_create_role_refuses_unknown_fields_and_long_descriptions(
    users: UserFactory,
) -> None:
    admin = await users.admin()
    extra = await admin.post(ROLES, json={"name": "editors", "is_builtin": True})
    assert _problem(extra, 422, "VALIDATION_ERROR")["errors"][0]["field"] == "is_builtin"
    long = await admin.post(ROLES, json={"name": "editors", "description": "d" * 501})
    assert _problem(long, 422, "VALIDATION_ERROR")["errors"][0]["field"] == "description"


async def test_nobody_creates_a_role_with_permissions_they_do_not_hold(
    users: UserFactory,
) -> None:
    admin = await users.admin()
    await _create_role(admin, "role-keepers", ["roles:manage", "ideas:read"])
    keeper = await users.create()
    assert (await admin.put(f"/api/v1/users/{keeper.id}/roles/role-keepers")).status_code == 200

    response = await keeper.post(
        ROLES, json={"name": "escalate", "permissions": ["users:manage", "ideas:read"]}
    )
    problem = _problem(response, 403, "PERMISSION_NOT_HELD")
    assert problem["missing_permissions"] == ["users:manage"]
    # Within what they hold, it works.
    allowed = await keeper.post(ROLES, json={"name": "readers", "permissions": ["ideas:read"]})
    assert allowed.status_code == 201
    assert allowed.json()["created_by"] == keeper.id


# -- read ---------------------------------------------------------------------------------------


async def test_list_roles_is_a_page_sorted_by_name(users: UserFactory) -> None:
    admin = await users.admin()
    await _create_role(admin, "zeta-team", ["ideas:read"])
    await _create_role(admin, "alpha-team", ["ideas:read"])

    response = await admin.get(ROLES, params={"limit": 100})
    assert response.status_code == 200
    page = response.json()
    names = [role["name"] for role in page["items"]]
    assert names == sorted(names)
    assert {"admin", "manager", "viewer", "alpha-team", "zeta-team"} <= set(names)
    assert page["total"] == len(names)
    assert page["has_more"] is False
    viewer = next(role for role in page["items"] if role["name"] == "viewer")
    assert viewer["is_builtin"] is True
    assert viewer["permissions"] == sorted(str(p) for p in BUILTIN_ROLE_PERMISSIONS["viewer"])

    first = (await admin.get(ROLES, params={"limit": 1})).json()
    second = (await admin.get(ROLES, params={"limit": 1, "offset": 1})).json()
    assert [r["name"] for r in first["items"]] == names[:1]
    assert [r["name"] for r in second["items"]] == names[1:2]
    assert first["has_more"] is True and first["total"] == len(names)
    assert (first["limit"], second["offset"]) == (1, 1)


async def test_list_roles_validates_paging(users: UserFactory) -> None:
    admin = await users.admin()
    for params in ({"limit": 0}, {"limit": 101}, {"offset": -1}):
        response = await admin.get(ROLES, params=params)
        problem = _problem(response, 422, "VALIDATION_ERROR")
        assert problem["errors"][0]["field"] == next(iter(params))


async def test_get_role_missing_or_malformed_id(users: UserFactory) -> None:
    admin = await users.admin()
    missing = await admin.get(f"{ROLES}/{uuid.uuid4()}")
    assert _problem(missing, 404, "ROLE_NOT_FOUND")["detail"] == "Role not found"
    malformed = await admin.get(f"{ROLES}/not-a-uuid")
    assert _problem(malformed, 422, "VALIDATION_ERROR")["errors"][0]["field"] == "role_id"


# -- update -------------------------------------------------------------------------------------


async def test_update_custom_role_changes_only_what_is_sent(users: UserFactory) -> None:
    creator = await users.admin()
    editor = await users.admin()
    role = await _create_role(creator, "editors", ["brands:read"], description="Reads")

    response = await editor.patch(
        f"{ROLES}/{role['id']}",
        json={"name": "brand-editors", "permissions": ["brands:update", "brands:read"]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "brand-editors"
    assert body["permissions"] == ["brands:read", "brands:update"]
    assert body["description"] == "Reads"  # not sent, unchanged
    assert body["created_by"] == creator.id
    assert body["updated_by"] == editor.id
    assert body["updated_at"] >= role["updated_at"]

    cleared = await editor.patch(f"{ROLES}/{role['id']}", json={"description": None})
    assert cleared.status_code == 200
    assert cleared.json()["description"] is None
    assert (await editor.get(f"{ROLES}/{role['id']}")).json()["name"] == "brand-editors"


async def test_update_role_to_a_taken_name_conflicts(users: UserFactory) -> None:
    admin = await users.admin()
    await _create_role(admin, "editors", [])
    other = await _create_role(admin, "writers", [])
    for name in ("editors", "manager"):
        response = await admin.patch(f"{ROLES}/{other['id']}", json={"name": name})
        _problem(response, 409, "ROLE_NAME_TAKEN")
    assert (await admin.get(f"{ROLES}/{other['id']}")).json()["name"] == "writers"


async def test_update_role_validates_input(users: UserFactory) -> None:
    admin = await users.admin()
    role = await _create_role(admin, "editors", [])
    url = f"{ROLES}/{role['id']}"
    for body, field in (
        ({"name": None}, "name"),
        ({"permissions": None}, "permissions"),
        ({"permissions": ["nope:never"]}, "permissions"),
        ({"name": "Bad Name"}, "name"),
    ):
        problem = _problem(await admin.patch(url, json=body), 422, "VALIDATION_ERROR")
        assert problem["errors"][0]["field"] == field
    missing = await admin.patch(f"{ROLES}/{uuid.uuid4()}", json={"description": "x"})
    _problem(missing, 404, "ROLE_NOT_FOUND")


@pytest.mark.parametrize("name", ["admin", "manager", "viewer"])
async def test_builtin_roles_keep_name_and_permissions(users: UserFactory, name: str) -> None:
    admin = await users.admin()
    role = await _builtin(admin, name)
    url = f"{ROLES}/{role['id']}"

    renamed = await admin.patch(url, json={"name": f"{name}-renamed"})
    problem = _problem(renamed, 409, "BUILTIN_ROLE_IMMUTABLE")
    assert name in problem["detail"]
    changed = await admin.patch(url, json={"permissions": ["ideas:read"]})
    _problem(changed, 409, "BUILTIN_ROLE_IMMUTABLE")

    described = await admin.patch(
        url, json={"description": "Our own words", "permissions": role["permissions"]}
    )
    assert described.status_code == 200, described.text
    body = described.json()
    assert body["description"] == "Our own words"
    assert body["name"] == name
    assert body["permissions"] == role["permissions"]
    assert body["updated_by"] == admin.id


# -- delete -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["admin", "manager", "viewer"])
async def test_builtin_roles_cannot_be_deleted(users: UserFactory, name: str) -> None:
    admin = await users.admin()
    role = await _builtin(admin, name)
    for params in ({}, {"force": "true"}):
        response = await admin.delete(f"{ROLES}/{role['id']}", params=params)
        _problem(response, 409, "BUILTIN_ROLE_IMMUTABLE")
    assert (await admin.get(f"{ROLES}/{role['id']}")).status_code == 200


async def test_delete_unused_custom_role(users: UserFactory) -> None:
    admin = await users.admin()
    role = await _create_role(admin, "editors", ["ideas:read"])
    response = await admin.delete(f"{ROLES}/{role['id']}")
    assert response.status_code == 204
    assert response.content == b""
    _problem(await admin.get(f"{ROLES}/{role['id']}"), 404, "ROLE_NOT_FOUND")
    _problem(await admin.delete(f"{ROLES}/{role['id']}"), 404, "ROLE_NOT_FOUND")
    # The name is free again.
    await _create_role(admin, "editors", [])


async def test_deleting_a_role_in_use_needs_force_and_revokes_it(users: UserFactory) -> None:
    admin = await users.admin()
    role = await _create_role(admin, "people-admins", ["users:manage"])
    holder = await users.create()
    assert (await admin.put(f"/api/v1/users/{holder.id}/roles/people-admins")).status_code == 200
    assert (await holder.get("/api/v1/users")).status_code == 200

    refused = await admin.delete(f"{ROLES}/{role['id']}")
    problem = _problem(refused, 409, "ROLE_IN_USE")
    assert problem["holders"] == 1
    assert (await holder.get("/api/v1/users")).status_code == 200  # nothing changed

    forced = await admin.delete(f"{ROLES}/{role['id']}", params={"force": "true"})
    assert forced.status_code == 204
    me = (await holder.get("/api/v1/auth/me")).json()
    assert me["roles"] == ["viewer"]
    _problem(await holder.get("/api/v1/users"), 403, "PERMISSION_DENIED")


async def test_role_permission_changes_apply_to_holders_at_once(users: UserFactory) -> None:
    admin = await users.admin()
    role = await _create_role(admin, "people-admins", ["users:manage"])
    holder = await users.create()
    await admin.put(f"/api/v1/users/{holder.id}/roles/people-admins")
    assert (await holder.get("/api/v1/users")).status_code == 200

    patched = await admin.patch(f"{ROLES}/{role['id']}", json={"permissions": ["ideas:read"]})
    assert patched.status_code == 200
    # Same access token: permissions are read from the roles on every request.
    _problem(await holder.get("/api/v1/users"), 403, "PERMISSION_DENIED")


async def test_roles_stronger_than_the_caller_cannot_be_changed_or_deleted(
    users: UserFactory,
) -> None:
    admin = await users.admin()
    await _create_role(admin, "role-keepers", ["roles:manage"])
    strong = await _create_role(admin, "people-admins", ["users:manage"])
    keeper = await users.create()
    await admin.put(f"/api/v1/users/{keeper.id}/roles/role-keepers")

    patch = await keeper.patch(f"{ROLES}/{strong['id']}", json={"description": "mine now"})
    assert _problem(patch, 403, "PERMISSION_NOT_HELD")["missing_permissions"] == ["users:manage"]
    delete = await keeper.delete(f"{ROLES}/{strong['id']}")
    _problem(delete, 403, "PERMISSION_NOT_HELD")
    own = await _create_role(keeper, "keepers-too", ["roles:manage"])
    grow = await keeper.patch(f"{ROLES}/{own['id']}", json={"permissions": ["users:manage"]})
    _problem(grow, 403, "PERMISSION_NOT_HELD")
    assert (await admin.get(f"{ROLES}/{strong['id']}")).json()["description"] is None


# -- documentation ------------------------------------------------------------------------------


async def test_admin_routes_are_documented(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    prefixes = ("/api/v1/roles", "/api/v1/users", "/api/v1/auth/api-keys")
    operations = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        if path.startswith(prefixes)
        for method, operation in item.items()
    ]
    assert len(operations) == 18
    for path, method, operation in operations:
        assert operation.get("summary"), (method, path)
        responses = operation["responses"]
        assert "401" in responses, (method, path)
        problem = responses["401"]["content"]["application/problem+json"]["schema"]
        assert problem == {"$ref": "#/components/schemas/Problem"}
        success = [code for code in responses if code.startswith("2")]
        assert len(success) == 1, (method, path)
        if success[0] != "204":
            assert responses[success[0]]["content"]["application/json"]["schema"], (method, path)
