"""The Ideogram provider against a fake server speaking Ideogram's API."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.responses import JSONResponse, Response

from creativeflow.providers.base import ImageEditRequest, ImageProvider, ImageRequest
from creativeflow.providers.errors import (
    MalformedResponse,
    ProviderNotConfigured,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from creativeflow.providers.http import RetryPolicy
from creativeflow.providers.ideogram import (
    IdeogramImageProvider,
    image_weight,
    nearest_aspect_ratio,
    style_type,
)
from creativeflow.settings import Settings
from tests.providers.fake_servers import (
    Recorded,
    ScriptedServer,
    image_bytes,
    raw,
    scripted_server,
    slow,
    status,
)

POLICY = RetryPolicy(retries=2, backoff_seconds=0.01)
KEY = "ideogram-secret-key"


def answer(server: ScriptedServer, count: int, *, unsafe: tuple[int, ...] = ()) -> JSONResponse:
    return JSONResponse(
        {
            "created": "2024-08-01T12:00:00Z",
            "data": [
                {
                    "url": None if i in unsafe else server.url(f"/ephemeral/{i}.png"),
                    "seed": 1000 + i,
                    "resolution": "1312x736",
                    "prompt": f"magic prompt {i}",
                    "is_image_safe": i not in unsafe,
                    "style_type": "GENERAL",
                }
                for i in range(count)
            ],
        }
    )


@pytest.fixture(scope="module")
def module_server() -> Iterator[ScriptedServer]:
    with scripted_server() as fake:

        async def generate(request: Recorded) -> Response:
            return answer(fake, int(request.json()["image_request"]["num_images"]))

        async def remix(request: Recorded) -> Response:
            return answer(fake, int(json.loads(request.form["image_request"])["num_images"]))

        async def image(request: Recorded) -> Response:
            return Response(image_bytes(131, 73), media_type="image/png")

        fake.route("POST", "/generate", generate)
        fake.route("POST", "/remix", remix)
        for i in range(10):
            fake.route("GET", f"/ephemeral/{i}.png", image)
        yield fake


@pytest.fixture
def server(module_server: ScriptedServer) -> ScriptedServer:
    module_server.reset()
    return module_server


@pytest.fixture
async def ideogram(server: ScriptedServer) -> AsyncIterator[IdeogramImageProvider]:
    provider = IdeogramImageProvider(
        base_url=server.base_url, api_key=KEY, model="V_2", policy=POLICY
    )
    yield provider
    await provider.aclose()


def request(**overrides: Any) -> ImageRequest:
    values: dict[str, Any] = {"prompt": "A neon sign saying OPEN", "width": 1920, "height": 1080}
    return ImageRequest(**(values | overrides))


def test_aspect_ratios_style_types_and_weights() -> None:
    assert nearest_aspect_ratio(1920, 1080) == "ASPECT_16_9"
    assert nearest_aspect_ratio(1080, 1920) == "ASPECT_9_16"
    assert nearest_aspect_ratio(1024, 1024) == "ASPECT_1_1"
    assert nearest_aspect_ratio(1200, 800) == "ASPECT_3_2"
    assert nearest_aspect_ratio(1280, 800) == "ASPECT_16_10"
    assert nearest_aspect_ratio(3000, 900) == "ASPECT_3_1"
    assert nearest_aspect_ratio(768, 1024) == "ASPECT_3_4"
    assert style_type(None) == "AUTO"
    assert style_type("anime") == "ANIME"
    assert style_type("Cinematic photo") == "REALISTIC"
    assert style_type("flat vector") == "DESIGN"
    assert style_type("watercolor") == "GENERAL"
    assert image_weight(0.0) == 100
    assert image_weight(0.3) == 70
    assert image_weight(1.0) == 1


async def test_generate_sends_the_image_request_and_downloads_the_images(
    server: ScriptedServer, ideogram: IdeogramImageProvider
) -> None:
    result = await ideogram.generate(
        request(
            negative_prompt="blurry",
            seed=42,
            count=2,
            style="anime",
            palette=("#ff0000", "teal"),
        )
    )

    [call] = server.calls("/generate")
    assert call.headers["api-key"] == KEY
    assert "authorization" not in call.headers
    assert call.json() == {
        "image_request": {
            "prompt": "A neon sign saying OPEN, in anime style, using the colour palette teal",
            "model": "V_2",
            "aspect_ratio": "ASPECT_16_9",
            "magic_prompt_option": "AUTO",
            "style_type": "ANIME",
            "negative_prompt": "blurry",
            "color_palette": {"members": [{"color_hex": "#FF0000"}]},
            "num_images": 2,
            "seed": 42,
        }
    }
    downloads = server.calls("/ephemeral/0.png") + server.calls("/ephemeral/1.png")
    assert len(downloads) == 2
    assert all("api-key" not in d.headers for d in downloads)
    assert [(i.width, i.height, i.format, i.seed) for i in result.images] == [
        (131, 73, "png", 1000),
        (131, 73, "png", 1001),
    ]
    assert (result.provider, result.model, result.usage.images) == ("ideogram", "V_2", 2)
    assert result.metadata["resolutions"] == ["1312x736", "1312x736"]
    assert result.metadata["prompts"] == ["magic prompt 0", "magic prompt 1"]
    assert result.metadata["aspect_ratio"] == "ASPECT_16_9"
    assert result.metadata["unsafe_dropped"] == 0
    assert isinstance(ideogram, ImageProvider)


async def test_optional_fields_are_left_out(server: ScriptedServer) -> None:
    provider = IdeogramImageProvider(
        base_url=server.base_url, api_key=KEY, model="V_1", policy=POLICY, magic_prompt="OFF"
    )
    try:
        await provider.generate(request(palette=("#00ff00",)))
    finally:
        await provider.aclose()

    body = server.calls("/generate")[0].json()["image_request"]
    # V_1 has neither style types nor a palette: the colour is written into the prompt.
    assert body == {
        "prompt": "A neon sign saying OPEN, using the colour palette #00ff00",
        "model": "V_1",
        "aspect_ratio": "ASPECT_16_9",
        "magic_prompt_option": "OFF",
        "num_images": 1,
    }


async def test_more_than_eight_images_take_several_calls_with_their_own_seeds(
    server: ScriptedServer, ideogram: IdeogramImageProvider
) -> None:
    result = await ideogram.generate(request(count=10, seed=7))

    bodies = sorted(
        (call.json()["image_request"] for call in server.calls("/generate")),
        key=lambda body: body["seed"],
    )
    assert [(b["num_images"], b["seed"]) for b in bodies] == [(8, 7), (2, 8)]
    assert len(result.images) == 10


async def test_unsafe_images_are_dropped(
    server: ScriptedServer, ideogram: IdeogramImageProvider
) -> None:
    server.script("POST", "/generate", answer(server, 2, unsafe=(0,)))

    result = await ideogram.generate(request(count=2))

    assert [image.seed for image in result.images] == [1001]
    assert result.metadata["unsafe_dropped"] == 1
    assert server.calls("/ephemeral/0.png") == []


async def test_only_unsafe_images_is_a_refusal(
    server: ScriptedServer, ideogram: IdeogramImageProvider
) -> None:
    server.script("POST", "/generate", answer(server, 2, unsafe=(0, 1)))

    with pytest.raises(ProviderRejected, match="refused by the provider's safety filter"):
        await ideogram.generate(request(count=2))


async def test_remix_is_multipart_with_the_image_weight(
    server: ScriptedServer, ideogram: IdeogramImageProvider
) -> None:
    source = image_bytes(800, 1200, "PNG")

    result = await ideogram.transform(
        ImageEditRequest(
            source=source,
            operation="style_transfer",
            style="watercolor",
            palette=("#336699",),
            strength=0.3,
            seed=5,
        )
    )

    [call] = server.calls("/remix")
    assert call.headers["api-key"] == KEY
    assert call.files["image_file"].data == source
    assert call.files["image_file"].content_type == "image/png"
    image_request = json.loads(call.form["image_request"])
    assert image_request == {
        "prompt": image_request["prompt"],
        "model": "V_2",
        "aspect_ratio": "ASPECT_2_3",
        "magic_prompt_option": "AUTO",
        "style_type": "GENERAL",
        "color_palette": {"members": [{"color_hex": "#336699"}]},
        "image_weight": 70,
        "num_images": 1,
        "seed": 5,
    }
    assert "Restyle this image in watercolor style" in image_request["prompt"]
    assert len(result.images) == 1
    assert result.metadata["image_weight"] == 70
    assert result.metadata["operation"] == "style_transfer"


async def test_a_source_that_is_not_an_image_is_rejected(
    server: ScriptedServer, ideogram: IdeogramImageProvider
) -> None:
    with pytest.raises(ProviderRejected):
        await ideogram.transform(ImageEditRequest(source=b"nope", operation="variation"))
    assert server.requests == []


# -- failures --------------------------------------------------------------------------------


async def test_a_slow_answer_times_out(
    server: ScriptedServer, ideogram: IdeogramImageProvider
) -> None:
    server.script("POST", "/generate", slow(3.0, answer(server, 1)))

    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        await ideogram.generate(request(timeout=0.5))

    assert time.monotonic() - started < 2.0


async def test_a_slow_download_counts_against_the_same_timeout(
    server: ScriptedServer, ideogram: IdeogramImageProvider
) -> None:
    server.script("GET", "/ephemeral/0.png", slow(3.0, Response(image_bytes())))

    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        await ideogram.generate(request(timeout=0.6))

    assert time.monotonic() - started < 2.0


async def test_429_with_retry_after_waits_and_retries(
    server: ScriptedServer, ideogram: IdeogramImageProvider
) -> None:
    server.script("POST", "/generate", status(429, headers={"Retry-After": "1"}))

    started = time.monotonic()
    result = await ideogram.generate(request())

    assert time.monotonic() - started >= 0.9
    assert len(server.calls("/generate")) == 2
    assert len(result.images) == 1


async def test_429_repeatedly_is_rate_limited(
    server: ScriptedServer, ideogram: IdeogramImageProvider
) -> None:
    limited = status(429, headers={"Retry-After": "0.05"})
    server.script("POST", "/generate", limited, limited, limited)

    with pytest.raises(ProviderRateLimited) as caught:
        await ideogram.generate(request())

    assert caught.value.retry_after == pytest.approx(0.05)
    assert len(server.calls("/generate")) == 3


async def test_a_long_retry_after_is_not_waited_for(
    server: ScriptedServer, ideogram: IdeogramImageProvider
) -> None:
    server.script("POST", "/generate", status(429, headers={"Retry-After": "120"}))

    with pytest.raises(ProviderRateLimited) as caught:
        await ideogram.generate(request())

    assert caught.value.retry_after == pytest.approx(120)
    assert len(server.calls("/generate")) == 1


async def test_500_then_success_and_a_failed_download_retried(
    server: ScriptedServer, ideogram: IdeogramImageProvider
) -> None:
    server.script("POST", "/generate", status(500))
    server.script("GET", "/ephemeral/0.png", status(503))

    result = await ideogram.generate(request())

    assert len(server.calls("/generate")) == 2
    assert len(server.calls("/ephemeral/0.png")) == 2
    assert len(result.images) == 1


async def test_500_repeatedly_is_unavailable(
    server: ScriptedServer, ideogram: IdeogramImageProvider
) -> None:
    server.script("POST", "/generate", status(500), status(500), status(500))

    with pytest.raises(ProviderUnavailable):
        await ideogram.generate(request())

    assert len(server.calls("/generate")) == 3


@pytest.mark.parametrize("code", [400, 401, 422])
async def test_client_errors_are_rejected_without_retry(
    server: ScriptedServer, ideogram: IdeogramImageProvider, code: int
) -> None:
    server.script("POST", "/generate", status(code, {"detail": "Invalid api key"}))

    with pytest.raises(ProviderRejected) as caught:
        await ideogram.generate(request())

    assert caught.value.status == code
    assert KEY not in caught.value.message
    assert len(server.calls("/generate")) == 1


@pytest.mark.parametrize(
    "reply",
    [
        raw("<html>oops</html>", media_type="text/html"),
        JSONResponse({"created": "now"}),
        JSONResponse({"data": [{"seed": 1, "is_image_safe": True}]}),
    ],
    ids=["not-json", "no-data", "no-url"],
)
async def test_malformed_answers(
    server: ScriptedServer, ideogram: IdeogramImageProvider, reply: Response
) -> None:
    server.script("POST", "/generate", reply)

    with pytest.raises(MalformedResponse):
        await ideogram.generate(request())


# -- settings --------------------------------------------------------------------------------


def test_settings_without_a_key_are_not_configured() -> None:
    with pytest.raises(ProviderNotConfigured, match="IDEOGRAM_API_KEY"):
        IdeogramImageProvider.from_settings(Settings(ideogram_api_key=None))


async def test_settings_with_a_key(server: ScriptedServer) -> None:
    provider = IdeogramImageProvider.from_settings(
        Settings(
            ideogram_base_url=server.base_url,
            ideogram_api_key="from-settings",
            ideogram_model="V_2_TURBO",
        )
    )
    try:
        await provider.generate(request())
    finally:
        await provider.aclose()

    call = server.calls("/generate")[0]
    assert call.headers["api-key"] == "from-settings"
    assert call.json()["image_request"]["model"] == "V_2_TURBO"
