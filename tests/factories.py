"""One-line helpers that make the users, tokens and objects a test needs, through the API."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from creativeflow.identity.bootstrap import ensure_builtin_roles
from creativeflow.identity.permissions import BuiltinRole
from creativeflow.identity.service import AuthService
from creativeflow.platform import Platform
from creativeflow.shared.api.dtos.user import UserCreate

DEFAULT_PASSWORD = "Correct-Horse-42!"
_counter = itertools.count(1)


@dataclass
class TestUser:
    id: str
    username: str
    email: str
    password: str
    access_token: str
    refresh_token: str
    client: httpx.AsyncClient = field(repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    def _headers(self, kwargs: dict[str, Any]) -> dict[str, str]:
        """The token's header, plus any the call adds (If-Match, Idempotency-Key ...)."""
        return {**self.headers, **kwargs.pop("headers", {})}

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(url, headers=self._headers(kwargs), **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.post(url, headers=self._headers(kwargs), **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.put(url, headers=self._headers(kwargs), **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.patch(url, headers=self._headers(kwargs), **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.delete(url, headers=self._headers(kwargs), **kwargs)


class UserFactory:
    def __init__(self, client: httpx.AsyncClient, platform: Platform) -> None:
        self.client = client
        self.platform = platform

    async def create(
        self,
        *,
        role: str = BuiltinRole.VIEWER,
        password: str = DEFAULT_PASSWORD,
        username: str | None = None,
    ) -> TestUser:
        """Register (through the API, or the service for other roles) and log in."""
        n = next(_counter)
        username = username or f"user{n}-{uuid.uuid4().hex[:6]}"
        email = f"{username}@example.com"
        if role == BuiltinRole.VIEWER:
            response = await self.client.post(
                "/api/v1/auth/register",
                json={
                    "email": email,
                    "username": username,
                    "name": f"User {n}",
                    "password": password,
                },
            )
            assert response.status_code == 201, response.text
        else:
            async with self.platform.write_sessions() as session:
                await ensure_builtin_roles(session)
                await AuthService(session, self.platform.auth).register(
                    UserCreate(email=email, username=username, name=f"User {n}", password=password),
                    role_name=role,
                )
                await session.commit()
        return await self.login(username, password)

    async def login(self, username: str, password: str = DEFAULT_PASSWORD) -> TestUser:
        response = await self.client.post(
            "/api/v1/auth/login", json={"login": username, "password": password}
        )
        assert response.status_code == 200, response.text
        tokens = response.json()
        me = await self.client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert me.status_code == 200, me.text
        body = me.json()
        return TestUser(
            id=body["id"],
            username=body["username"],
            email=body["email"],
            password=password,
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
            client=self.client,
        )

    async def admin(self) -> TestUser:
        return await self.create(role=BuiltinRole.ADMIN)
