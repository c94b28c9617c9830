"""Drift with image embeddings: the consistency check and a locked character's new image ask
an embeddings API in Jina's form (faked at the wire) and flag what the image features miss."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import pytest
from starlette.responses import JSONResponse, Response

from creativeflow.platform import Platform
from creativeflow.stories.consistency.service import locked_drift_warnings
from tests.factories import UserFactory
from tests.providers.fake_servers import Recorded, ScriptedServer, scripted_server
from tests.stories.helpers import chapter, panel, post, project, scene
from tests.stories.test_consistency import check, show
from tests.stories.test_drift import character, encoded
from tests.stories.test_identity_lock import upload_design


def _vector(image: str) -> list[float]:
    """What this fake model sees: PNGs and JPEGs as two different things."""
    return [1.0, 0.0, 0.0] if base64.b64decode(image)[:4] == b"\x89PNG" else [0.0, 1.0, 0.0]


async def _embeddings(request: Recorded) -> Response:
    body = request.json()
    data = [
        {"object": "embedding", "index": n, "embedding": _vector(item["image"])}
        for n, item in enumerate(body["input"])
    ]
    return JSONResponse({"model": body["model"], "data": data, "usage": {"total_tokens": 1}})


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with scripted_server() as fake:
        fake.route("POST", "/v1/embeddings", _embeddings)
        yield fake


@pytest.fixture
def settings_overrides(server: ScriptedServer) -> dict[str, object]:
    server.reset()
    return {
        "image_embedding_url": server.url("/v1"),
        "image_embedding_model": "jina-clip-v2",
        "image_embedding_api_key": "jina-test",
    }


async def test_the_embedding_distance_flags_what_the_features_miss(
    users: UserFactory, platform: Platform, server: ScriptedServer
) -> None:
    owner = await users.create()
    book = await project(owner)
    mara = await post(owner, f"/api/v1/projects/{book['id']}/characters", {"name": "Mara"})
    await upload_design(owner, mara["id"], encoded(character()), primary=True)
    stairs = await scene(owner, (await chapter(owner, book["id"], "One"))["id"], "Stairs")
    same = await panel(owner, stairs["id"], "Mara", character_ids=[mara["id"]])
    copy = await panel(owner, stairs["id"], "Mara again", character_ids=[mara["id"]])
    await show(owner, book["id"], same["id"], encoded(character()))
    await show(owner, book["id"], copy["id"], encoded(character(), "JPEG", quality=90))

    report = await check(owner, project_id=book["id"])
    assert report["embedding_model"] == "jina-clip-v2" and report["embedding_threshold"] == 0.25
    assert report["embedding_error"] is None
    [mara_drift] = report["characters"]
    by_panel = {entry["panel_id"]: entry for entry in mara_drift["panels"]}
    assert by_panel[same["id"]]["embedding_distance"] == 0
    assert by_panel[same["id"]]["over_threshold"] is False
    # The JPEG copy is close in colours and shapes, far for the model: flagged.
    assert by_panel[copy["id"]]["drift"] < report["threshold"]
    assert by_panel[copy["id"]]["embedding_distance"] == 1
    assert mara_drift["over_threshold"] == [copy["id"]]
    calls = server.calls("/v1/embeddings", "POST")
    assert calls and calls[0].headers["authorization"] == "Bearer jina-test"
    assert calls[0].json()["normalized"] is True


async def test_a_locked_characters_new_image_is_flagged_by_its_embedding(
    users: UserFactory, platform: Platform
) -> None:
    owner = await users.create()
    book = await project(owner)
    mara = await post(
        owner, f"/api/v1/projects/{book['id']}/characters", {"name": "Mara", "locked": True}
    )
    await upload_design(owner, mara["id"], encoded(character()), primary=True)
    stairs = await scene(owner, (await chapter(owner, book["id"], "One"))["id"], "Stairs")
    made = await panel(owner, stairs["id"], "Mara", character_ids=[mara["id"]])
    panel_id = uuid.UUID(made["id"])
    assert await locked_drift_warnings(platform, panel_id, encoded(character())) == []
    [warning] = await locked_drift_warnings(
        platform, panel_id, encoded(character(), "JPEG", quality=90)
    )
    assert warning["code"] == "CHARACTER_DRIFT" and warning["embedding_distance"] == 1


async def test_an_embeddings_outage_leaves_the_drift_standing(
    users: UserFactory, platform: Platform, server: ScriptedServer
) -> None:
    owner = await users.create()
    book = await project(owner)
    mara = await post(owner, f"/api/v1/projects/{book['id']}/characters", {"name": "Mara"})
    await upload_design(owner, mara["id"], encoded(character()), primary=True)
    stairs = await scene(owner, (await chapter(owner, book["id"], "One"))["id"], "Stairs")
    made = await panel(owner, stairs["id"], "Mara", character_ids=[mara["id"]])
    await show(owner, book["id"], made["id"], encoded(character()))
    refused = JSONResponse({"detail": "invalid key"}, status_code=401)
    server.script("POST", "/v1/embeddings", refused, refused)

    report = await check(owner, project_id=book["id"])
    assert "invalid key" in (report["embedding_error"] or "")
    [entry] = report["characters"][0]["panels"]
    assert entry["drift"] < report["threshold"] and entry["embedding_distance"] is None
