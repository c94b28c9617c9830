"""The OpenAI-compatible providers against a fake server speaking the OpenAI API."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.responses import JSONResponse, Response

from creativeflow.providers.base import (
    ImageEditRequest,
    ImageProvider,
    ImageRequest,
    TextProvider,
    TextRequest,
)
from creativeflow.providers.errors import (
    MalformedResponse,
    ProviderNotConfigured,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from creativeflow.providers.http import RetryPolicy
from creativeflow.providers.openai import (
    JSON_INSTRUCTION,
    OpenAIImageProvider,
    OpenAITextProvider,
    nearest_size,
    parse_json_object,
)
from creativeflow.settings import Settings
from tests.providers.fake_servers import (
    SERVED_MODEL,
    Recorded,
    ScriptedServer,
    image_bytes,
    openai_completion,
    openai_images,
    raw,
    scripted_server,
    slow,
    status,
)

POLICY = RetryPolicy(retries=2, backoff_seconds=0.01)
KEY = "sk-test-secret"
SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}}}


async def _generations(request: Recorded) -> Response:
    return openai_images(int(request.json().get("n", 1)))


async def _edits(request: Recorded) -> Response:
    return openai_images(int(request.form.get("n", "1")))


async def _file(_: Recorded) -> Response:
    return Response(image_bytes(80, 40), media_type="image/png")


@pytest.fixture(scope="module")
def module_server() -> Iterator[ScriptedServer]:
    with scripted_server() as fake:
        fake.route("POST", "/v1/chat/completions", _ok_completion)
        fake.route("POST", "/v1/images/generations", _generations)
        fake.route("POST", "/v1/images/edits", _edits)
        fake.route("POST", "/v1/images/variations", _edits)
        fake.route("GET", "/files/one.png", _file)
        yield fake


async def _ok_completion(_: Recorded) -> Response:
    return openai_completion('{"title": "Dawn"}')


@pytest.fixture
def server(module_server: ScriptedServer) -> ScriptedServer:
    module_server.reset()
    return module_server


@pytest.fixture
async def text(server: ScriptedServer) -> AsyncIterator[OpenAITextProvider]:
    provider = OpenAITextProvider(
        base_url=server.url("/v1"), api_key=KEY, model="gpt-4o-mini", policy=POLICY
    )
    yield provider
    await provider.aclose()


def image_provider(server: ScriptedServer, model: str) -> OpenAIImageProvider:
    return OpenAIImageProvider(base_url=server.url("/v1"), api_key=KEY, model=model, policy=POLICY)


@pytest.fixture
async def images(server: ScriptedServer) -> AsyncIterator[OpenAIImageProvider]:
    provider = image_provider(server, "gpt-image-1")
    yield provider
    await provider.aclose()


def ask(**overrides: Any) -> TextRequest:
    values: dict[str, Any] = {
        "task": "scene_summary",
        "system": "You are an editor. Answer in JSON.",
        "prompt": "Summarise the scene.",
        "output_schema": SCHEMA,
        "seed": 7,
        "temperature": 0.3,
        "max_tokens": 200,
        "timeout": 5.0,
    }
    return TextRequest(**(values | overrides))


# -- text: the wire ----------------------------------------------------------------------------


async def test_chat_completion_sends_the_request_and_reads_the_answer(
    server: ScriptedServer, text: OpenAITextProvider
) -> None:
    result = await text.complete(ask())

    [call] = server.calls("/v1/chat/completions")
    assert call.method == "POST"
    assert call.headers["authorization"] == f"Bearer {KEY}"
    assert call.json() == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are an editor. Answer in JSON."},
            {"role": "user", "content": "Summarise the scene."},
        ],
        "temperature": 0.3,
        "max_tokens": 200,
        "seed": 7,
        "response_format": {"type": "json_object"},
    }
    assert result.output == {"title": "Dawn"}
    assert (result.provider, result.model, result.seed) == ("openai", SERVED_MODEL, 7)
    assert (result.usage.input_tokens, result.usage.output_tokens) == (12, 5)
    assert result.duration_ms > 0
    assert result.metadata["attempts"] == 1
    assert result.metadata["finish_reason"] == "stop"
    assert isinstance(text, TextProvider)


async def test_json_mode_says_json_when_the_request_does_not(
    server: ScriptedServer, text: OpenAITextProvider
) -> None:
    await text.complete(ask(system="", prompt="Summarise the scene."))

    messages = server.calls("/v1/chat/completions")[0].json()["messages"]
    assert messages[0]["role"] == "system"
    assert JSON_INSTRUCTION in messages[0]["content"]
    assert json.dumps(SCHEMA) in messages[0]["content"]


async def test_plain_text_without_a_schema(
    server: ScriptedServer, text: OpenAITextProvider
) -> None:
    server.script("POST", "/v1/chat/completions", openai_completion("  A short line.  "))

    result = await text.complete(ask(output_schema=None, seed=None))

    body = server.calls("/v1/chat/completions")[0].json()
    assert "response_format" not in body and "seed" not in body
    assert result.output == "A short line."


async def test_a_fenced_json_block_is_accepted(
    server: ScriptedServer, text: OpenAITextProvider
) -> None:
    server.script(
        "POST",
        "/v1/chat/completions",
        openai_completion('Here it is:\n```json\n{"title": "Noon"}\n```\n'),
    )

    result = await text.complete(ask())

    assert result.output == {"title": "Noon"}
    assert len(server.calls("/v1/chat/completions")) == 1


def test_parse_json_object_refuses_what_is_not_an_object() -> None:
    assert parse_json_object('```\n{"a": 1}\n```') == {"a": 1}
    for content in ("[1, 2]", "not json", '"text"', "```json\n[1]\n```"):
        with pytest.raises(MalformedResponse):
            parse_json_object(content)


async def test_a_server_without_a_key_gets_no_authorization(server: ScriptedServer) -> None:
    provider = OpenAITextProvider(
        base_url=server.url("/v1"), api_key=None, model="llama3.1", policy=POLICY
    )
    try:
        await provider.complete(ask())
    finally:
        await provider.aclose()

    assert "authorization" not in server.calls("/v1/chat/completions")[0].headers


# -- text: failures -------------------------------------------------------------------------


async def test_a_slow_answer_times_out_within_the_request_timeout(
    server: ScriptedServer, text: OpenAITextProvider
) -> None:
    server.script("POST", "/v1/chat/completions", slow(3.0, openai_completion("{}")))

    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        await text.complete(ask(timeout=0.5))

    assert time.monotonic() - started < 2.0


async def test_429_with_retry_after_waits_and_retries(
    server: ScriptedServer, text: OpenAITextProvider
) -> None:
    server.script("POST", "/v1/chat/completions", status(429, headers={"Retry-After": "1"}))

    started = time.monotonic()
    result = await text.complete(ask())

    assert time.monotonic() - started >= 0.9
    assert len(server.calls("/v1/chat/completions")) == 2
    assert result.output == {"title": "Dawn"}


async def test_429_repeatedly_is_rate_limited_with_the_hint(
    server: ScriptedServer, text: OpenAITextProvider
) -> None:
    limited = status(429, headers={"Retry-After": "0.1"})
    server.script("POST", "/v1/chat/completions", limited, limited, limited)

    with pytest.raises(ProviderRateLimited) as caught:
        await text.complete(ask())

    assert caught.value.retry_after == pytest.approx(0.1)
    assert len(server.calls("/v1/chat/completions")) == 3


NO_CHOICES = JSONResponse({"id": "x", "object": "chat.completion", "model": SERVED_MODEL})
NO_MESSAGE = JSONResponse({"choices": [{"index": 0, "finish_reason": "stop"}]})
NOT_JSON = raw("<html>gateway</html>", media_type="text/html")
REJECTED = {"error": {"message": "Incorrect API key"}}


@pytest.mark.parametrize(
    "first",
    [status(500), openai_completion("Sure! The title is Dawn."), NOT_JSON, NO_CHOICES],
    ids=["500", "content-not-json", "body-not-json", "no-choices"],
)
async def test_one_failed_answer_then_success_takes_exactly_two_calls(
    server: ScriptedServer, text: OpenAITextProvider, first: Response
) -> None:
    server.script("POST", "/v1/chat/completions", first)

    result = await text.complete(ask())

    assert result.output == {"title": "Dawn"}
    calls = server.calls("/v1/chat/completions")
    assert len(calls) == 2
    assert calls[0].json() == calls[1].json()


@pytest.mark.parametrize(
    ("replies", "error", "calls"),
    [
        ([status(500), status(502), status(503)], ProviderUnavailable, 3),
        ([status(400, REJECTED)], ProviderRejected, 1),
        ([status(401, REJECTED)], ProviderRejected, 1),
        ([openai_completion("no"), openai_completion("still no")], MalformedResponse, 2),
        ([NOT_JSON, NOT_JSON], MalformedResponse, 2),
        ([NO_CHOICES, NO_CHOICES], MalformedResponse, 2),
        ([NO_MESSAGE, NO_MESSAGE], MalformedResponse, 2),
        ([JSONResponse({"choices": []})] * 2, MalformedResponse, 2),
    ],
    ids=[
        "500-repeatedly",
        "400",
        "401",
        "content-not-json-twice",
        "body-not-json-twice",
        "no-choices-twice",
        "no-message-twice",
        "empty-choices-twice",
    ],
)
async def test_failures(
    server: ScriptedServer,
    text: OpenAITextProvider,
    replies: list[Response],
    error: type[Exception],
    calls: int,
) -> None:
    server.script("POST", "/v1/chat/completions", *replies)

    with pytest.raises(error) as caught:
        await text.complete(ask())

    assert len(server.calls("/v1/chat/completions")) == calls
    assert KEY not in str(caught.value)
    if isinstance(caught.value, ProviderRejected):
        assert caught.value.status == replies[0].status_code
        assert "Incorrect API key" in caught.value.message


async def test_an_unreachable_server_is_unavailable() -> None:
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = OpenAITextProvider(
        base_url=f"http://127.0.0.1:{port}/v1", api_key=None, model="m", policy=POLICY
    )
    try:
        with pytest.raises(ProviderUnavailable):
            await provider.complete(ask())
    finally:
        await provider.aclose()


async def test_both_answers_count_their_tokens(
    server: ScriptedServer, text: OpenAITextProvider
) -> None:
    server.script("POST", "/v1/chat/completions", openai_completion("not JSON"))

    result = await text.complete(ask())

    assert (result.usage.input_tokens, result.usage.output_tokens) == (24, 10)


async def test_a_refusal_is_rejected_at_once(
    server: ScriptedServer, text: OpenAITextProvider
) -> None:
    refusal = JSONResponse(
        {
            "model": SERVED_MODEL,
            "choices": [
                {
                    "message": {"role": "assistant", "content": None, "refusal": "I can't."},
                    "finish_reason": "stop",
                }
            ],
        }
    )
    server.script("POST", "/v1/chat/completions", refusal)

    with pytest.raises(ProviderRejected, match="I can't"):
        await text.complete(ask())

    assert len(server.calls("/v1/chat/completions")) == 1


# -- settings --------------------------------------------------------------------------------


def test_openai_itself_needs_a_key() -> None:
    with pytest.raises(ProviderNotConfigured, match="OPENAI_API_KEY"):
        OpenAITextProvider.from_settings(Settings(openai_api_key=None))
    with pytest.raises(ProviderNotConfigured):
        OpenAIImageProvider.from_settings(Settings(openai_api_key=None))


async def test_self_hosted_servers_need_no_key() -> None:
    settings = Settings(
        openai_base_url="http://localhost:11434/v1",
        openai_api_key=None,
        openai_text_model="llama3.1",
        openai_image_model="sdxl",
        provider_max_retries=4,
    )
    text = OpenAITextProvider.from_settings(settings)
    images = OpenAIImageProvider.from_settings(settings)
    await text.aclose()
    await images.aclose()

    assert (text.name, text.model, images.model) == ("openai", "llama3.1", "sdxl")


async def test_a_key_from_settings_is_sent(server: ScriptedServer) -> None:
    settings = Settings(openai_base_url=server.url("/v1"), openai_api_key="sk-from-settings")
    provider = OpenAITextProvider.from_settings(settings)
    try:
        await provider.complete(ask())
    finally:
        await provider.aclose()

    call = server.calls("/v1/chat/completions")[0]
    assert call.headers["authorization"] == "Bearer sk-from-settings"
    assert call.json()["model"] == "gpt-4o-mini"


async def test_a_client_given_is_left_open(server: ScriptedServer) -> None:
    async with httpx.AsyncClient() as client:
        provider = OpenAITextProvider(
            base_url=server.url("/v1"), api_key=None, model="m", client=client, policy=POLICY
        )
        await provider.complete(ask())
        await provider.aclose()
        assert not client.is_closed


# -- images ----------------------------------------------------------------------------------


def test_nearest_size_for_known_models() -> None:
    assert nearest_size("gpt-image-1", 1920, 1080) == (1536, 1024)
    assert nearest_size("gpt-image-1", 800, 1200) == (1024, 1536)
    assert nearest_size("gpt-image-1", 640, 640) == (1024, 1024)
    assert nearest_size("dall-e-3", 1920, 1080) == (1792, 1024)
    assert nearest_size("dall-e-2", 300, 280) == (256, 256)
    assert nearest_size("dall-e-2", 2000, 1000) == (1024, 1024)
    assert nearest_size("stablediffusion", 1920, 1080) == (1920, 1080)


async def test_generate_sends_the_request_and_decodes_the_images(
    server: ScriptedServer, images: OpenAIImageProvider
) -> None:
    request = ImageRequest(
        prompt="A lighthouse at dusk",
        negative_prompt="text",
        width=1920,
        height=1080,
        count=2,
        style="watercolor",
        palette=("#1a2b3c", "#ffcc00"),
    )

    result = await images.generate(request)

    [call] = server.calls("/v1/images/generations")
    assert call.headers["authorization"] == f"Bearer {KEY}"
    body = call.json()
    assert body == {
        "model": "gpt-image-1",
        "prompt": body["prompt"],
        "n": 2,
        "size": "1536x1024",
        "output_format": "png",
    }
    assert body["prompt"].startswith("A lighthouse at dusk")
    assert "watercolor style" in body["prompt"]
    assert "#1a2b3c, #ffcc00" in body["prompt"]
    assert "Avoid: text" in body["prompt"]
    assert [(i.width, i.height, i.format) for i in result.images] == [(96, 64, "png")] * 2
    assert result.images[0].data[:8] == b"\x89PNG\r\n\x1a\n"
    assert (result.provider, result.model) == ("openai", "gpt-image-1")
    assert (result.usage.images, result.usage.input_tokens, result.usage.output_tokens) == (
        2,
        20,
        300,
    )
    assert result.metadata["revised_prompts"] == ["revised 0", "revised 1"]
    assert result.duration_ms > 0
    assert isinstance(images, ImageProvider)


async def test_url_items_are_downloaded_without_the_key(server: ScriptedServer) -> None:
    answer = JSONResponse({"created": 1, "data": [{"url": server.url("/files/one.png")}]})
    server.script("POST", "/v1/images/generations", answer, answer)
    provider = image_provider(server, "dall-e-3")
    try:
        result = await provider.generate(ImageRequest(prompt="a cat", count=2, format="jpeg"))
    finally:
        await provider.aclose()

    # dall-e-3 makes one image per call.
    calls = server.calls("/v1/images/generations")
    assert [c.json()["n"] for c in calls] == [1, 1]
    assert all(c.json()["response_format"] == "b64_json" for c in calls)
    assert calls[0].json()["size"] == "1024x1024"
    downloads = server.calls("/files/one.png")
    assert len(downloads) == 2
    assert all("authorization" not in d.headers for d in downloads)
    # The PNG sent is converted to the JPEG asked for; the size is the image's own.
    assert [(i.width, i.height, i.format) for i in result.images] == [(80, 40, "jpeg")] * 2
    assert result.images[0].data[:3] == b"\xff\xd8\xff"


async def test_a_relative_url_is_resolved_against_the_server(server: ScriptedServer) -> None:
    server.script(
        "POST", "/v1/images/generations", JSONResponse({"data": [{"url": "/files/one.png"}]})
    )
    provider = image_provider(server, "stablediffusion")
    try:
        result = await provider.generate(ImageRequest(prompt="a cat", width=512, height=768))
    finally:
        await provider.aclose()

    assert server.calls("/v1/images/generations")[0].json() == {
        "model": "stablediffusion",
        "prompt": "a cat",
        "n": 1,
        "size": "512x768",
    }
    assert len(server.calls("/files/one.png")) == 1
    assert result.images[0].width == 80


@pytest.mark.parametrize(
    "reply",
    [
        JSONResponse({"data": [{"b64_json": base64.b64encode(b"not an image").decode()}]}),
        JSONResponse({"data": [{"b64_json": "@@ not base64 @@"}]}),
        JSONResponse({"data": [{"revised_prompt": "neither b64_json nor url"}]}),
        JSONResponse({"created": 1, "data": []}),
    ],
    ids=["not-an-image", "not-base64", "no-image", "no-images"],
)
async def test_image_answers_that_break_the_protocol_are_malformed(
    server: ScriptedServer, images: OpenAIImageProvider, reply: Response
) -> None:
    server.script("POST", "/v1/images/generations", reply)

    with pytest.raises(MalformedResponse):
        await images.generate(ImageRequest(prompt="x"))


async def test_image_generation_times_out(
    server: ScriptedServer, images: OpenAIImageProvider
) -> None:
    server.script("POST", "/v1/images/generations", slow(3.0, openai_images(1)))

    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        await images.generate(ImageRequest(prompt="x", timeout=0.5))

    assert time.monotonic() - started < 2.0


async def test_image_generation_retries_a_500(
    server: ScriptedServer, images: OpenAIImageProvider
) -> None:
    server.script("POST", "/v1/images/generations", status(500))
    progress: list[float] = []

    async def report(value: float, _message: str) -> None:
        progress.append(value)

    result = await images.generate(ImageRequest(prompt="x"), report)

    assert len(result.images) == 1
    assert len(server.calls("/v1/images/generations")) == 2
    assert progress == [1.0]


async def test_a_style_transfer_is_a_multipart_edit(
    server: ScriptedServer, images: OpenAIImageProvider
) -> None:
    source = image_bytes(1200, 800, "JPEG")
    request = ImageEditRequest(
        source=source,
        operation="style_transfer",
        prompt="keep the boat",
        style="ukiyo-e",
        palette=("#112233",),
        strength=0.8,
        count=2,
    )

    result = await images.transform(request)

    [call] = server.calls("/v1/images/edits")
    assert call.headers["authorization"] == f"Bearer {KEY}"
    assert call.headers["content-type"].startswith("multipart/form-data")
    upload = call.files["image"]
    assert (upload.filename, upload.content_type, upload.data) == (
        "source.jpg",
        "image/jpeg",
        source,
    )
    assert call.form == {
        "model": "gpt-image-1",
        "size": "1536x1024",
        "prompt": call.form["prompt"],
        "output_format": "png",
        "n": "2",
    }
    prompt = call.form["prompt"]
    assert "Restyle this image in ukiyo-e style" in prompt
    assert "#112233" in prompt and "keep the boat" in prompt
    assert "reinterpreted freely" in prompt
    assert len(result.images) == 2
    assert result.metadata["operation"] == "style_transfer"


async def test_a_dalle2_variation_uses_the_variations_endpoint(server: ScriptedServer) -> None:
    provider = image_provider(server, "dall-e-2")
    source = image_bytes(600, 600, "JPEG")
    try:
        result = await provider.transform(
            ImageEditRequest(source=source, operation="variation", count=3)
        )
    finally:
        await provider.aclose()

    [call] = server.calls("/v1/images/variations")
    assert call.form == {
        "model": "dall-e-2",
        "size": "512x512",
        "response_format": "b64_json",
        "n": "3",
    }
    # dall-e-2 takes PNG only: the JPEG source is sent converted.
    assert call.files["image"].filename == "source.png"
    assert call.files["image"].data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(result.images) == 3
    assert server.calls("/v1/images/edits") == []


async def test_dalle3_cannot_edit(server: ScriptedServer) -> None:
    provider = image_provider(server, "dall-e-3")
    try:
        with pytest.raises(ProviderRejected, match="dall-e-3"):
            await provider.transform(ImageEditRequest(source=image_bytes(), operation="variation"))
    finally:
        await provider.aclose()
    assert server.requests == []


async def test_a_source_that_is_not_an_image_is_rejected_before_any_call(
    server: ScriptedServer, images: OpenAIImageProvider
) -> None:
    with pytest.raises(ProviderRejected):
        await images.transform(ImageEditRequest(source=b"not an image", operation="variation"))
    assert server.requests == []
