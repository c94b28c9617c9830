"""A task run about a story's thing on an OpenAI-compatible server (the local wire server of
tests/providers/fake_servers.py): the prompt sent holds the facts gathered from the story."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from creativeflow.platform import Platform
from tests.factories import UserFactory
from tests.providers.fake_servers import ScriptedServer, openai_completion, scripted_server
from tests.stories.test_task_context import build_story, result_of, run

PROFILE = {
    "name": "Mara",
    "summary": "The keeper's stubborn daughter, who climbs to relight the lamp.",
    "personality": ["stubborn", "curious"],
    "appearance": "A red scarf and freckles.",
    "motivations": ["find her father"],
    "relationships": [{"character": "Jonah", "relationship": "friend"}],
    "voice": "Short, blunt sentences.",
}


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with scripted_server() as fake:
        yield fake


@pytest.fixture
def settings_overrides(server: ScriptedServer) -> dict[str, object]:
    server.reset()
    return {
        "text_provider": "openai",
        "openai_base_url": server.url("/v1"),
        "openai_api_key": None,
        "openai_text_model": "llama3.1",
    }


async def test_the_prompt_sent_holds_the_gathered_story(
    server: ScriptedServer, users: UserFactory, platform: Platform
) -> None:
    story = await build_story(await users.create())
    server.script("POST", "/v1/chat/completions", openai_completion(json.dumps(PROFILE)))
    job = await run(story.owner, "character_profile", "character", story.mara["id"], seed=3)

    result = await result_of(story.owner, platform, job["id"])
    assert result["provider"] == "openai" and result["output"]["name"] == "Mara"
    assert result["context"]["id"] == story.mara["id"]
    [call] = server.calls("/v1/chat/completions", "POST")
    sent = call.json()
    assert sent["model"] == "llama3.1" and sent["seed"] == 3
    prompt = next(m["content"] for m in sent["messages"] if m["role"] == "user")
    assert prompt == result["prompt"]
    for fact in [
        "Write a profile of Mara",
        "Traits: stubborn, curious, afraid of heights",
        "Role: protagonist",
        "Appearance: red scarf, freckles.",
        "Chapter 1, The Storm: Mara's father rows out and does not come back.",
        "- The stairs: Mara climbs the tower and finds Jonah asleep.",
        "Other characters: Jonah (supporting)",
        "Instructions:\n- Keep the sea always in view",
    ]:
        assert fact in prompt, fact
