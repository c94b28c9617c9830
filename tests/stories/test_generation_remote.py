"""Story generations through the remote image providers, faked at the wire: a panel's image
from an OpenAI-compatible server, a panel sequence from ComfyUI. The prompt the provider gets
is the one the draft records."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from creativeflow.platform import Platform
from tests.factories import UserFactory
from tests.providers.fake_servers import ScriptedServer, openai_images, scripted_server
from tests.providers.test_comfyui import FakeComfyUI, comfy_server  # noqa: F401 (a fixture)
from tests.stories.generation_helpers import finished_job, generated_draft, studio
from tests.stories.test_identity_lock import solid, upload_design


@pytest.fixture(scope="module")
def openai_server() -> Iterator[ScriptedServer]:
    with scripted_server() as fake:
        yield fake


@pytest.fixture
def comfy(request: pytest.FixtureRequest) -> FakeComfyUI:
    fake: FakeComfyUI = request.getfixturevalue("comfy_server")
    return fake


@pytest.fixture(params=["openai", "comfyui"])
def settings_overrides(
    request: pytest.FixtureRequest, openai_server: ScriptedServer, comfy: FakeComfyUI
) -> dict[str, object]:
    openai_server.reset()
    comfy.reset()
    if request.param == "openai":
        return {
            "image_provider": "openai",
            "openai_base_url": openai_server.url("/v1"),
            "openai_api_key": "sk-test",
            "openai_image_model": "gpt-image-1",
        }
    return {"image_provider": "comfyui", "comfyui_url": comfy.url}


async def test_a_panel_image_from_a_remote_provider_is_a_draft_with_the_prompt_sent(
    users: UserFactory,
    platform: Platform,
    openai_server: ScriptedServer,
    comfy: FakeComfyUI,
) -> None:
    user = await users.create()
    made = await studio(user, panels=2)
    provider = platform.image_provider.name
    if provider == "openai":
        openai_server.script("POST", "/v1/images/generations", openai_images(2))
    draft = await generated_draft(
        user,
        platform,
        f"/api/v1/panels/{made['panels'][0]['id']}/generate-image",
        {"count": 2, "seed": 9},
    )
    assert draft["provider"] == provider and len(draft["variants"]) == 2
    if provider == "openai":
        [call] = openai_server.calls("/v1/images/generations", "POST")
        sent = call.json()
        assert sent["prompt"].startswith(draft["prompt"]) and sent["n"] == 2
    else:
        [body] = comfy.prompts
        texts = [node["inputs"].get("text") for node in body["prompt"].values()]
        assert any(text and text.startswith(draft["prompt"]) for text in texts)
        assert "blurry, extra fingers" in texts

    # A whole scene in one request: one job per panel, each a draft.
    if provider == "openai":
        openai_server.script("POST", "/v1/images/generations", openai_images(1), openai_images(1))
    response = await user.post(
        "/api/v1/generate/panel-sequence", json={"scene_id": made["scene"]["id"]}
    )
    assert response.status_code == 202, response.text
    await platform.jobs.drain()
    group = (await user.get(f"/api/v1/jobs/{response.json()['id']}")).json()
    assert group["status"] == "succeeded", group
    pending = (await user.get("/api/v1/drafts/pending")).json()
    assert pending["total"] == 3
    usage = (await user.get("/api/v1/usage")).json()["items"]
    assert {row["provider"] for row in usage} == {provider}


async def test_reference_images_go_to_a_provider_that_takes_them(
    users: UserFactory, platform: Platform, openai_server: ScriptedServer, comfy: FakeComfyUI
) -> None:
    user = await users.create()
    made = await studio(user, panels=1)
    design = await upload_design(user, made["character"]["id"], solid((200, 30, 30)), primary=True)
    provider = platform.image_provider.name
    if provider == "openai":
        openai_server.script("POST", "/v1/images/edits", openai_images(1))
    response = await user.post(f"/api/v1/panels/{made['panels'][0]['id']}/generate-image")
    assert response.json()["input"]["reference_image_ids"] == [design]
    job = await finished_job(user, platform, response.json()["id"])
    if provider == "openai":
        # gpt-image: the design is an image of an edit, the prompt the panel's
        assert openai_server.calls("/v1/images/generations") == []
        [call] = openai_server.calls("/v1/images/edits", "POST")
        assert call.body.count(b'name="image[]"') == 1
        assert call.form["prompt"].startswith(job["input"]["prompt"])
        assert job["result"]["metadata"]["references_used"] == 1
    else:
        # ComfyUI's shipped workflow takes none: drawn from the prompt alone
        assert len(comfy.prompts) == 1 and comfy.uploads == []
