"""Helpers for the ideas tests: URLs, creating ideas in one line, reading whole lists."""

from __future__ import annotations

from typing import Any

from tests.factories import TestUser


def ideas_url(user: TestUser, idea_id: str | None = None) -> str:
    base = f"/api/v1/{user.id}/ideas"
    return f"{base}/{idea_id}" if idea_id else base


async def create_idea(user: TestUser, title: str = "An idea", **fields: Any) -> dict[str, Any]:
    response = await user.post(ideas_url(user), json={"title": title, **fields})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def list_ideas(user: TestUser, **params: Any) -> dict[str, Any]:
    response = await user.get(ideas_url(user), params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def titles(user: TestUser, **params: Any) -> list[str]:
    return [item["title"] for item in (await list_ideas(user, limit=100, **params))["items"]]


def assert_problem(response: Any, status: int, code: str, field: str | None = None) -> None:
    """A problem+json error with `status` and `code`, naming `field` when given."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["correlation_id"]
    if field is not None:
        fields = [error["field"] for error in body["errors"]]
        assert field in fields, body
