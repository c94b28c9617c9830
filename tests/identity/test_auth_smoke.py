from __future__ import annotations

from tests.factories import UserFactory


async def test_register_login_me(users: UserFactory) -> None:
    user = await users.create()
    response = await user.get("/api/v1/auth/me")
    assert response.status_code == 200
    assert response.json()["roles"] == ["viewer"]
