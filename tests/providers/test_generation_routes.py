"""The generation routes end to end: an image job through the API, its stored images served to
their owner only, the usage ledger, the task catalog."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage

from creativeflow.platform import Platform
from tests.factories import UserFactory


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    return dict(getattr(request, "param", {}))


# Rendered in threads (the tests' default) and in a spawned process, as `serve` renders.
@pytest.mark.parametrize(
    "settings_overrides",
    [{}, {"image_render_processes": 1}],
    indirect=True,
    ids=["render-threads", "render-process"],
)
async def test_an_image_generation_stores_images_served_only_to_their_owner(
    users: UserFactory, platform: Platform
) -> None:
    owner, stranger = await users.create(), await users.create()
    response = await owner.post(
        "/api/v1/generate/image",
        json={
            "prompt": 'A logo for "Harbor Light" coffee',
            "width": 256,
            "height": 192,
            "count": 2,
            "seed": 11,
            "palette": ["#1b4965", "#f4d35e"],
            "format": "webp",
        },
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert (await owner.get(f"/api/v1/generate/status/{job['id']}")).json()["status"] == "queued"
    await platform.jobs.drain()

    done = (await owner.get(f"/api/v1/generate/status/{job['id']}")).json()
    assert done["status"] == "succeeded", done["error"]
    result = done["result"]
    assert result["provider"] == "local" and result["usage"]["images"] == 2
    assert result["seeds"] == [11, 12]
    assert len(result["images"]) == 2
    first = result["images"][0]
    picture = await owner.get(first["url"])
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/webp"
    decoded = PILImage.open(io.BytesIO(picture.content))
    assert decoded.size == (256, 192) and decoded.format == "WEBP"
    assert picture.headers["etag"] == f'"{first["sha256"]}"'
    cached = await owner.client.get(
        first["url"], headers={**owner.headers, "If-None-Match": picture.headers["etag"]}
    )
    assert cached.status_code == 304 and cached.content == b""

    hidden = await stranger.get(first["url"])
    assert hidden.status_code == 404 and hidden.json()["code"] == "IMAGE_NOT_FOUND"
    history = (await owner.get("/api/v1/generate/history")).json()
    assert [item["id"] for item in history["items"]] == [job["id"]]
    assert (await stranger.get("/api/v1/generate/history")).json()["total"] == 0


async def test_image_requests_are_validated_field_by_field(users: UserFactory) -> None:
    user = await users.create()
    for body, field in [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x", "width": 4096}, "width"),
        ({"prompt": "x", "count": 9}, "count"),
        ({"prompt": "x", "palette": ["blue"]}, "palette.0"),
        ({"prompt": "x", "format": "gif"}, "format"),
        ({"prompt": "x", "size": 3}, "size"),
    ]:
        response = await user.post("/api/v1/generate/image", json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], response.json()


async def test_cancelling_an_image_generation(users: UserFactory, platform: Platform) -> None:
    user = await users.create()
    job = (await user.post("/api/v1/generate/image", json={"prompt": "a fox"})).json()
    cancelled = await user.post(f"/api/v1/generate/cancel/{job['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert await platform.jobs.drain() == 0


async def test_the_usage_ledger_counts_each_call_by_provider_model_and_day(
    users: UserFactory, platform: Platform
) -> None:
    user, other, admin = await users.create(), await users.create(), await users.admin()
    for _ in range(2):
        await user.post(
            "/api/v1/tasks/execute",
            json={"task_type": "visual_prompt", "input": {"description": "A misty pine forest"}},
        )
    await other.post("/api/v1/generate/image", json={"prompt": "pines", "width": 64, "height": 64})
    await platform.jobs.drain()

    mine = (await user.get("/api/v1/usage")).json()
    assert mine["total"] == 1
    row = mine["items"][0]
    assert (row["provider"], row["model"], row["modality"]) == ("local", "local-nlp-1", "text")
    assert row["calls"] == 2 and row["succeeded"] == 2 and row["input_tokens"] > 0
    assert len(row["day"]) == 10

    assert (await user.get("/api/v1/usage", params={"all": "true"})).status_code == 403
    everyone = (await admin.get("/api/v1/usage", params={"all": "true"})).json()
    modalities = {item["modality"]: item for item in everyone["items"]}
    assert modalities["text"]["calls"] >= 2 and modalities["image"]["images"] >= 1
    theirs = (await admin.get("/api/v1/usage", params={"user_id": other.id})).json()
    assert [item["modality"] for item in theirs["items"]] == ["image"]


async def test_the_task_catalog_lists_six_types_with_their_schemas(users: UserFactory) -> None:
    user = await users.create()
    catalog = (await user.get("/api/v1/tasks/types")).json()
    assert sorted(entry["name"] for entry in catalog) == [
        "chapter_outline",
        "character_profile",
        "dialogue",
        "panel_description",
        "scene_summary",
        "visual_prompt",
    ]
    summary = next(entry for entry in catalog if entry["name"] == "scene_summary")
    assert "scene_text" in summary["input_schema"]["required"]
    assert "summary" in summary["output_schema"]["properties"]


async def test_a_key_without_the_generation_permission_starts_nothing(
    users: UserFactory,
) -> None:
    user = await users.create()
    created = await user.post(
        "/api/v1/auth/api-keys", json={"name": "read only", "scopes": ["ideas:read"]}
    )
    assert created.status_code == 201, created.text
    headers = {"X-API-Key": created.json()["key"]}
    refused = await user.client.post(
        "/api/v1/generate/image", json={"prompt": "a fox"}, headers=headers
    )
    assert refused.status_code == 403
    assert (await user.get("/api/v1/jobs")).json()["total"] == 0
