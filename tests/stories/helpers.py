"""Building a small project through the API."""

from __future__ import annotations

from typing import Any

from tests.factories import TestUser as SignedInUser


async def post(user: SignedInUser, url: str, payload: dict[str, Any]) -> dict[str, Any]:
    response = await user.post(url, json=payload)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def project(user: SignedInUser, title: str = "Lighthouse") -> dict[str, Any]:
    return await post(user, "/api/v1/projects", {"title": title})


async def chapter(user: SignedInUser, project_id: str, title: str, **fields: Any) -> dict[str, Any]:
    return await post(user, f"/api/v1/projects/{project_id}/chapters", {"title": title, **fields})


async def scene(user: SignedInUser, chapter_id: str, title: str, **fields: Any) -> dict[str, Any]:
    return await post(user, f"/api/v1/chapters/{chapter_id}/scenes", {"title": title, **fields})


async def panel(
    user: SignedInUser, scene_id: str, description: str, **fields: Any
) -> dict[str, Any]:
    return await post(
        user, f"/api/v1/scenes/{scene_id}/panels", {"description": description, **fields}
    )


async def titles(user: SignedInUser, url: str, field: str = "title") -> list[tuple[int, str]]:
    response = await user.get(url)
    assert response.status_code == 200, response.text
    return [(item["position"], item[field]) for item in response.json()["items"]]
