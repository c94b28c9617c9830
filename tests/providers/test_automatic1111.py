"""The AUTOMATIC1111 / Forge provider against a fake web UI speaking its API: the POST that
answers when the images are done, the progress it reports meanwhile, and the interrupt."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.responses import JSONResponse, Response

from creativeflow.providers.automatic1111 import (
    LOADED_CHECKPOINT,
    Automatic1111ImageProvider,
)
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
from creativeflow.settings import Settings
from tests.providers.fake_servers import (
    Recorded,
    ScriptedServer,
    b64_image,
    image_bytes,
    raw,
    scripted_server,
    status,
)

POLICY = RetryPolicy(retries=2, backoff_seconds=0.01)
POLL = 0.05
TXT2IMG = "/sdapi/v1/txt2img"
IMG2IMG = "/sdapi/v1/img2img"
PROGRESS = "/sdapi/v1/progress"
INTERRUPT = "/sdapi/v1/interrupt"


class FakeWebUI:
    """A web UI's behaviour: how long a job takes, whether it holds until interrupted,
    whether it returns a grid in front of a batch."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.duration = 0.0
        self.hold = False
        self.grid = False
        self.started: float | None = None
        self.interrupted = asyncio.Event()

    async def generate(self, request: Recorded) -> Response:
        body = request.json()
        self.started = time.monotonic()
        if self.hold:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.interrupted.wait(), timeout=5.0)
        else:
            await asyncio.sleep(self.duration)
        self.started = None
        count = int(body.get("batch_size", 1))
        seed = body["seed"] if body["seed"] != -1 else 3_000_000
        width, height = body.get("width", 512) // 8, body.get("height", 512) // 8
        images = [b64_image(width, height) for _ in range(count)]
        if self.grid:
            images.insert(0, b64_image(width * count, height))
        info = {
            "seed": seed,
            "all_seeds": [seed + i for i in range(count)],
            "sd_model_name": "sd_xl_base_1.0",
            "sampler_name": body.get("sampler_name"),
        }
        return JSONResponse({"images": images, "parameters": body, "info": json.dumps(info)})

    async def progress(self, _: Recorded) -> Response:
        if self.started is None or not self.duration:
            return JSONResponse({"progress": 0.0, "state": {"job_count": 0}})
        fraction = min(1.0, (time.monotonic() - self.started) / self.duration)
        step = int(fraction * 20)
        return JSONResponse(
            {
                "progress": fraction,
                "eta_relative": self.duration * (1 - fraction),
                "state": {"job_count": 1, "sampling_step": step, "sampling_steps": 20},
                "current_image": None,
                "textinfo": None,
            }
        )

    async def interrupt(self, _: Recorded) -> Response:
        self.interrupted.set()
        return JSONResponse({})


@pytest.fixture(scope="module")
def module_server() -> Iterator[tuple[ScriptedServer, FakeWebUI]]:
    webui = FakeWebUI()
    with scripted_server() as fake:
        fake.route("POST", TXT2IMG, webui.generate)
        fake.route("POST", IMG2IMG, webui.generate)
        fake.route("GET", PROGRESS, webui.progress)
        fake.route("POST", INTERRUPT, webui.interrupt)
        yield fake, webui


@pytest.fixture
def webui(module_server: tuple[ScriptedServer, FakeWebUI]) -> FakeWebUI:
    module_server[1].reset()
    return module_server[1]


@pytest.fixture
def server(module_server: tuple[ScriptedServer, FakeWebUI], webui: FakeWebUI) -> ScriptedServer:
    module_server[0].reset()
    return module_server[0]


def make(server: ScriptedServer, **options: Any) -> Automatic1111ImageProvider:
    values: dict[str, Any] = {
        "base_url": server.base_url,
        "api_key": None,
        "model": "",
        "policy": POLICY,
        "steps": 20,
        "poll_seconds": POLL,
    }
    return Automatic1111ImageProvider(**(values | options))


@pytest.fixture
async def a1111(server: ScriptedServer) -> AsyncIterator[Automatic1111ImageProvider]:
    provider = make(server)
    yield provider
    await provider.aclose()


class Reports:
    def __init__(self) -> None:
        self.values: list[tuple[float, str]] = []

    async def __call__(self, value: float, message: str) -> None:
        self.values.append((value, message))


# -- the wire --------------------------------------------------------------------------------


async def test_txt2img_sends_the_payload_and_reads_images_and_seeds(
    server: ScriptedServer, webui: FakeWebUI, a1111: Automatic1111ImageProvider
) -> None:
    webui.grid = True  # an older web UI ignoring return_grid: the grid is dropped

    result = await a1111.generate(
        ImageRequest(
            prompt="a red fox in snow",
            negative_prompt="blurry",
            width=1001,
            height=768,
            count=2,
            seed=11,
            style="watercolor",
            palette=("#000080",),
            format="webp",
        )
    )

    [call] = server.calls(TXT2IMG)
    assert "authorization" not in call.headers
    assert call.json() == {
        "prompt": "a red fox in snow, watercolor style, color palette of navy",
        "negative_prompt": "blurry",
        "width": 1000,
        "height": 768,
        "seed": 11,
        "steps": 20,
        "n_iter": 1,
        "batch_size": 2,
        "cfg_scale": 7.0,
        "sampler_name": "DPM++ 2M Karras",
        "send_images": True,
        "save_images": False,
        "override_settings": {"return_grid": False},
        "override_settings_restore_afterwards": True,
    }
    assert [(i.width, i.height, i.format, i.seed) for i in result.images] == [
        (125, 96, "webp", 11),
        (125, 96, "webp", 12),
    ]
    assert result.images[0].data[8:12] == b"WEBP"
    assert (result.provider, result.model, result.usage.images) == (
        "automatic1111",
        "sd_xl_base_1.0",
        2,
    )
    assert result.metadata["info"]["all_seeds"] == [11, 12]
    assert result.metadata["seeds"] == [11, 12]
    assert isinstance(a1111, ImageProvider)


async def test_no_seed_is_minus_one_and_a_checkpoint_and_credentials_are_sent(
    server: ScriptedServer,
) -> None:
    provider = make(server, model="dreamshaper_8.safetensors", api_key="artist:s3cret")
    try:
        result = await provider.generate(ImageRequest(prompt="a boat"))
    finally:
        await provider.aclose()

    call = server.calls(TXT2IMG)[0]
    body = call.json()
    assert body["seed"] == -1
    assert body["override_settings"] == {
        "return_grid": False,
        "sd_model_checkpoint": "dreamshaper_8.safetensors",
    }
    expected = "Basic " + base64.b64encode(b"artist:s3cret").decode()
    assert call.headers["authorization"] == expected
    assert result.images[0].seed == 3_000_000


async def test_img2img_sends_the_source_and_the_strength(
    server: ScriptedServer, a1111: Automatic1111ImageProvider
) -> None:
    source = image_bytes(640, 480, "JPEG")

    result = await a1111.transform(
        ImageEditRequest(
            source=source, operation="style_transfer", style="noir", strength=0.35, seed=9
        )
    )

    [call] = server.calls(IMG2IMG)
    body = call.json()
    assert base64.b64decode(body["init_images"][0]) == source
    assert body["denoising_strength"] == 0.35
    assert (body["width"], body["height"], body["batch_size"], body["seed"]) == (640, 480, 1, 9)
    assert body["prompt"] == "noir style"
    assert body["steps"] == 20 and body["sampler_name"] == "DPM++ 2M Karras"
    assert body["include_init_images"] is False
    assert [(i.width, i.height, i.seed) for i in result.images] == [(80, 60, 9)]
    assert result.metadata["operation"] == "style_transfer"


# -- progress, cancellation, time limits ------------------------------------------------------


async def test_progress_is_polled_and_reported_while_the_post_runs(
    server: ScriptedServer, webui: FakeWebUI, a1111: Automatic1111ImageProvider
) -> None:
    webui.duration = 0.6
    reports = Reports()

    await a1111.generate(ImageRequest(prompt="a fox"), reports)

    polls = server.calls(PROGRESS)
    assert len(polls) >= 3
    assert all(poll.query == {"skip_current_image": "true"} for poll in polls)
    values = [value for value, _ in reports.values]
    assert len(values) >= 3
    assert values == sorted(values) and all(0.0 <= v <= 1.0 for v in values)
    assert values[-1] > 0.0
    assert any(message.startswith("sampling step ") for _, message in reports.values)
    # Polling stopped when the POST returned.
    seen = len(server.calls(PROGRESS))
    await asyncio.sleep(POLL * 4)
    assert len(server.calls(PROGRESS)) == seen


async def test_without_a_callback_nothing_is_polled(
    server: ScriptedServer, webui: FakeWebUI, a1111: Automatic1111ImageProvider
) -> None:
    webui.duration = 0.2

    await a1111.generate(ImageRequest(prompt="a fox"))

    assert server.calls(PROGRESS) == []


async def test_a_failing_progress_endpoint_does_not_fail_the_call(
    server: ScriptedServer, webui: FakeWebUI, a1111: Automatic1111ImageProvider
) -> None:
    webui.duration = 0.3
    for _ in range(20):
        server.script("GET", PROGRESS, status(500))
    reports = Reports()

    result = await a1111.generate(ImageRequest(prompt="a fox"), reports)

    assert len(result.images) == 1
    assert server.calls(PROGRESS)
    assert reports.values == []


async def test_cancellation_interrupts_the_job(
    server: ScriptedServer, webui: FakeWebUI, a1111: Automatic1111ImageProvider
) -> None:
    webui.hold = True
    task = asyncio.create_task(a1111.generate(ImageRequest(prompt="a fox"), Reports()))
    await server.received(TXT2IMG)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert len(server.calls(INTERRUPT, "POST")) == 1


async def test_a_timeout_interrupts_the_job(
    server: ScriptedServer, webui: FakeWebUI, a1111: Automatic1111ImageProvider
) -> None:
    webui.hold = True

    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        await a1111.generate(ImageRequest(prompt="a fox", timeout=0.5), Reports())

    assert time.monotonic() - started < 2.5
    assert len(server.calls(INTERRUPT, "POST")) == 1


async def test_a_timeout_without_a_callback_interrupts_too(
    server: ScriptedServer, webui: FakeWebUI, a1111: Automatic1111ImageProvider
) -> None:
    webui.hold = True

    with pytest.raises(ProviderTimeout):
        await a1111.generate(ImageRequest(prompt="a fox", timeout=0.4))

    assert len(server.calls(INTERRUPT, "POST")) == 1


class JobCancelled(Exception):
    pass


async def test_a_progress_callback_that_raises_stops_the_job(
    server: ScriptedServer, webui: FakeWebUI, a1111: Automatic1111ImageProvider
) -> None:
    webui.hold = True

    async def cancelled_job(_value: float, _message: str) -> None:
        raise JobCancelled

    with pytest.raises(JobCancelled):
        await a1111.generate(ImageRequest(prompt="a fox"), cancelled_job)

    assert len(server.calls(INTERRUPT, "POST")) == 1


# -- failures --------------------------------------------------------------------------------


async def test_429_with_retry_after_then_success(
    server: ScriptedServer, a1111: Automatic1111ImageProvider
) -> None:
    server.script("POST", TXT2IMG, status(429, headers={"Retry-After": "1"}))

    started = time.monotonic()
    result = await a1111.generate(ImageRequest(prompt="x"))

    assert time.monotonic() - started >= 0.9
    assert len(server.calls(TXT2IMG)) == 2
    assert len(result.images) == 1


async def test_429_repeatedly_is_rate_limited(
    server: ScriptedServer, a1111: Automatic1111ImageProvider
) -> None:
    limited = status(429, headers={"Retry-After": "0.05"})
    server.script("POST", TXT2IMG, limited, limited, limited)

    with pytest.raises(ProviderRateLimited) as caught:
        await a1111.generate(ImageRequest(prompt="x"))

    assert caught.value.retry_after == pytest.approx(0.05)
    assert len(server.calls(TXT2IMG)) == 3
    assert server.calls(INTERRUPT) == []


async def test_500_then_success(server: ScriptedServer, a1111: Automatic1111ImageProvider) -> None:
    server.script("POST", TXT2IMG, status(500, {"error": "OutOfMemoryError"}))

    result = await a1111.generate(ImageRequest(prompt="x"))

    assert len(server.calls(TXT2IMG)) == 2
    assert len(result.images) == 1


async def test_500_repeatedly_is_unavailable(
    server: ScriptedServer, a1111: Automatic1111ImageProvider
) -> None:
    server.script("POST", TXT2IMG, status(500), status(500), status(500))

    with pytest.raises(ProviderUnavailable):
        await a1111.generate(ImageRequest(prompt="x"))

    assert len(server.calls(TXT2IMG)) == 3


@pytest.mark.parametrize("code", [400, 401, 422])
async def test_client_errors_are_rejected_without_retry(
    server: ScriptedServer, a1111: Automatic1111ImageProvider, code: int
) -> None:
    server.script("POST", TXT2IMG, status(code, {"detail": "Sampler not found"}))

    with pytest.raises(ProviderRejected, match="Sampler not found") as caught:
        await a1111.generate(ImageRequest(prompt="x"))

    assert caught.value.status == code
    assert len(server.calls(TXT2IMG)) == 1


@pytest.mark.parametrize(
    "reply",
    [
        raw("Internal error page", media_type="text/html"),
        JSONResponse({"parameters": {}, "info": "{}"}),
        JSONResponse({"images": ["@@not base64@@"], "info": "{}"}),
        JSONResponse({"images": [base64.b64encode(b"not an image").decode()], "info": "{}"}),
    ],
    ids=["not-json", "no-images", "not-base64", "not-an-image"],
)
async def test_malformed_answers(
    server: ScriptedServer, a1111: Automatic1111ImageProvider, reply: Response
) -> None:
    server.script("POST", TXT2IMG, reply)

    with pytest.raises(MalformedResponse):
        await a1111.generate(ImageRequest(prompt="x"))


async def test_info_that_is_not_json_leaves_seeds_unknown(
    server: ScriptedServer, a1111: Automatic1111ImageProvider
) -> None:
    server.script("POST", TXT2IMG, JSONResponse({"images": [b64_image()], "info": "garbled"}))

    result = await a1111.generate(ImageRequest(prompt="x"))

    assert result.images[0].seed is None
    assert result.model == LOADED_CHECKPOINT


# -- settings --------------------------------------------------------------------------------


def test_settings_without_a_url_are_not_configured() -> None:
    with pytest.raises(ProviderNotConfigured, match="AUTOMATIC1111_URL"):
        Automatic1111ImageProvider.from_settings(Settings(automatic1111_url=None))


async def test_settings_choose_the_url_and_the_steps(server: ScriptedServer) -> None:
    provider = Automatic1111ImageProvider.from_settings(
        Settings(automatic1111_url=server.base_url + "/", automatic1111_steps=33)
    )
    try:
        await provider.generate(ImageRequest(prompt="x"))
    finally:
        await provider.aclose()

    assert server.calls(TXT2IMG)[0].json()["steps"] == 33
    assert (provider.name, provider.model) == ("automatic1111", LOADED_CHECKPOINT)
