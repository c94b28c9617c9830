"""AUTOMATIC1111 / Forge image provider: the web UI's API (started with `--api`),
`POST /sdapi/v1/txt2img` and `POST /sdapi/v1/img2img`.

Those calls answer only when the images are done, so while one is in flight the provider
polls `GET /sdapi/v1/progress` and reports it. A call given up (cancelled, or past its time
limit) sends `POST /sdapi/v1/interrupt` so the GPU does not keep working for nobody; the web
UI runs one job at a time, so that stops the job it is running.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import time
from typing import Any, Self

import httpx

from creativeflow.providers.base import (
    ImageEditRequest,
    ImageFormat,
    ImageRequest,
    ImageResult,
    Progress,
    Usage,
)
from creativeflow.providers.errors import (
    MalformedResponse,
    ProviderError,
    ProviderNotConfigured,
    ProviderTimeout,
)
from creativeflow.providers.http import RetryPolicy, json_body, send
from creativeflow.providers.remote import (
    DEFAULT_CLIENT_TIMEOUT,
    Deadline,
    decode_image,
    diffusion_prompt,
    inspect_source,
    policy_from,
    within,
)
from creativeflow.settings import Settings
from creativeflow.shared.core.logging import get_logger

PROVIDER = "automatic1111"
DEFAULT_STEPS = 25
DEFAULT_SAMPLER = "DPM++ 2M Karras"
DEFAULT_CFG_SCALE = 7.0
POLL_SECONDS = 0.5
# Progress polls and the interrupt are best effort; they must not hold the call up.
SIDE_CALL_SECONDS = 2.0
# What the result names as the model when none is configured and the answer names none.
LOADED_CHECKPOINT = "loaded-checkpoint"
_NO_RETRY = RetryPolicy(retries=0, backoff_seconds=0.0)

_log = get_logger("creativeflow.providers")


def _multiple_of_8(value: int) -> int:
    """Stable Diffusion works on sizes that are multiples of 8."""
    return min(16384, max(64, (value + 4) // 8 * 8))


class Automatic1111ImageProvider:
    """Text to image and image to image on an AUTOMATIC1111 or Forge web UI.

    `model` is a checkpoint title to switch to for the call (`override_settings`), or "" for
    whatever checkpoint the web UI has loaded. `api_key` is `user:password` for a web UI
    started with `--api-auth`, or a bearer token for one behind an authenticating proxy."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        client: httpx.AsyncClient | None = None,
        policy: RetryPolicy = RetryPolicy(),
        steps: int = DEFAULT_STEPS,
        sampler: str = DEFAULT_SAMPLER,
        cfg_scale: float = DEFAULT_CFG_SCALE,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        if not base_url:
            raise ProviderNotConfigured("AUTOMATIC1111_URL is not set", provider=PROVIDER)
        self.name: str = PROVIDER
        self.model: str = model or LOADED_CHECKPOINT
        self._checkpoint = model
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._policy = policy
        self._steps = steps
        self._sampler = sampler
        self._cfg_scale = cfg_scale
        self._poll_seconds = poll_seconds
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=DEFAULT_CLIENT_TIMEOUT)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        if not settings.automatic1111_url:
            raise ProviderNotConfigured(
                "AUTOMATIC1111_URL is not set: point it at a web UI started with --api "
                "(http://host:7860)",
                provider=PROVIDER,
            )
        return cls(
            base_url=settings.automatic1111_url,
            api_key=None,
            model="",
            steps=settings.automatic1111_steps,
            policy=policy_from(settings),
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def generate(
        self, request: ImageRequest, progress: Progress | None = None
    ) -> ImageResult:
        started = time.perf_counter()
        payload = self._common(request.prompt, request.style, request.palette, request.seed)
        payload |= {
            "negative_prompt": request.negative_prompt,
            "width": _multiple_of_8(request.width),
            "height": _multiple_of_8(request.height),
            "batch_size": max(1, request.count),
        }
        data = await self._run("/sdapi/v1/txt2img", payload, request.timeout, progress)
        return await self._result(data, request.count, request.format, started)

    async def transform(
        self, request: ImageEditRequest, progress: Progress | None = None
    ) -> ImageResult:
        started = time.perf_counter()
        source = await asyncio.to_thread(inspect_source, request.source, PROVIDER)
        payload = self._common(request.prompt, request.style, request.palette, request.seed)
        payload |= {
            "init_images": [base64.b64encode(request.source).decode("ascii")],
            "denoising_strength": min(1.0, max(0.0, request.strength)),
            # The source's own size, or the web UI would resize it to its default 512x512.
            "width": _multiple_of_8(source.width),
            "height": _multiple_of_8(source.height),
            "resize_mode": 0,
            "batch_size": max(1, request.count),
            "include_init_images": False,
        }
        data = await self._run("/sdapi/v1/img2img", payload, request.timeout, progress)
        result = await self._result(data, request.count, request.format, started)
        result.metadata.update(operation=request.operation)
        return result

    def _common(
        self, prompt: str, style: str | None, palette: tuple[str, ...], seed: int | None
    ) -> dict[str, Any]:
        # A batch's grid image is not wanted; the checkpoint switch lasts for this call only.
        overrides: dict[str, Any] = {"return_grid": False}
        if self._checkpoint:
            overrides["sd_model_checkpoint"] = self._checkpoint
        return {
            "prompt": diffusion_prompt(prompt, style, palette),
            "seed": seed if seed is not None else -1,
            "steps": self._steps,
            "n_iter": 1,
            "cfg_scale": self._cfg_scale,
            "sampler_name": self._sampler,
            "send_images": True,
            "save_images": False,
            "override_settings": overrides,
            "override_settings_restore_afterwards": True,
        }

    # -- one call, start to finish -----------------------------------------------------------

    async def _run(
        self, path: str, payload: dict[str, Any], seconds: float, progress: Progress | None
    ) -> dict[str, Any]:
        deadline = Deadline.after(seconds)
        async with within(seconds, PROVIDER):
            response = await self._post_following(path, payload, deadline, progress)
        data = json_body(response, PROVIDER)
        if not isinstance(data, dict):
            raise MalformedResponse(f"{PROVIDER} answered with a non-object", provider=PROVIDER)
        return data

    async def _post_following(
        self, path: str, payload: dict[str, Any], deadline: Deadline, progress: Progress | None
    ) -> httpx.Response:
        """The POST, with the web UI's progress reported while it is in flight. Given up
        (timeout, cancellation, or a progress callback that raises, as a cancelled job's
        does) the job is interrupted on the web UI, then the error goes on."""
        post = asyncio.create_task(self._call("POST", path, deadline.left(), json=payload))
        try:
            if progress is not None:
                await self._follow(post, progress)
            return await post
        except BaseException:
            if not post.done():
                post.cancel()
                await asyncio.wait({post})
            if not _settled(post):
                await self._interrupt()
            raise

    async def _follow(self, post: asyncio.Task[httpx.Response], progress: Progress) -> None:
        """Poll the progress until the POST returns."""
        while True:
            done, _ = await asyncio.wait({post}, timeout=self._poll_seconds)
            if done:
                return
            state = await self._progress()
            if state is not None and not post.done():
                await progress(*state)

    async def _progress(self) -> tuple[float, str] | None:
        """The web UI's progress as (fraction, message); None when it cannot tell."""
        try:
            response = await self._call(
                "GET",
                "/sdapi/v1/progress",
                SIDE_CALL_SECONDS,
                policy=_NO_RETRY,
                params={"skip_current_image": "true"},
            )
            data = json_body(response, PROVIDER)
        except ProviderError as exc:
            _log.debug("automatic1111_progress_unavailable", reason=exc.message)
            return None
        value = data.get("progress") if isinstance(data, dict) else None
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        state = data.get("state") if isinstance(data.get("state"), dict) else {}
        step, steps = state.get("sampling_step"), state.get("sampling_steps")
        if isinstance(step, int) and isinstance(steps, int) and steps:
            message = f"sampling step {step}/{steps}"
        else:
            message = str(data.get("textinfo") or "generating")
        return min(1.0, max(0.0, float(value))), message

    async def _interrupt(self) -> None:
        """Best effort: stop the job the web UI is running."""
        try:
            await self._call("POST", "/sdapi/v1/interrupt", SIDE_CALL_SECONDS, policy=_NO_RETRY)
        except ProviderError as exc:
            _log.warning("automatic1111_interrupt_failed", reason=exc.message)
        else:
            _log.info("automatic1111_interrupted")

    async def _call(
        self,
        method: str,
        path: str,
        seconds: float,
        *,
        policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        return await send(
            self._client,
            method,
            f"{self._base_url}{path}",
            provider=PROVIDER,
            seconds=seconds,
            policy=policy or self._policy,
            **self._auth(),
            **kwargs,
        )

    def _auth(self) -> dict[str, Any]:
        if not self._api_key:
            return {}
        user, colon, password = self._api_key.partition(":")
        if colon:
            return {"auth": httpx.BasicAuth(user, password)}
        return {"headers": {"Authorization": f"Bearer {self._api_key}"}}

    async def _result(
        self, data: dict[str, Any], count: int, image_format: ImageFormat, started: float
    ) -> ImageResult:
        info = _info(data.get("info"))
        encoded = _images(data, max(1, count))
        seeds = _seeds(info, len(encoded))
        images = await asyncio.to_thread(
            lambda: [
                decode_image(_b64decode(item), image_format, provider=PROVIDER, seed=seed)
                for item, seed in zip(encoded, seeds, strict=True)
            ]
        )
        model = info.get("sd_model_name")
        return ImageResult(
            images=images,
            provider=PROVIDER,
            model=model if isinstance(model, str) and model else self.model,
            usage=Usage(images=len(images)),
            duration_ms=(time.perf_counter() - started) * 1000,
            metadata={"info": info, "seeds": seeds},
        )


def _settled(post: asyncio.Task[httpx.Response]) -> bool:
    """Whether the web UI is done with the POST: it answered (images or an error). One
    cancelled or timed out may still be generating."""
    if post.cancelled():
        return False
    error = post.exception()
    return error is None or (
        isinstance(error, ProviderError) and not isinstance(error, ProviderTimeout)
    )


def _info(raw: Any) -> dict[str, Any]:
    """`info` is a JSON string (a dict on some forks); anything else counts as empty."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):
            value = json.loads(raw)
            if isinstance(value, dict):
                return value
    return {}


def _images(data: dict[str, Any], count: int) -> list[str]:
    """The batch's images: a grid in front (older web UIs ignore `return_grid`) is dropped,
    and extras after them (an extension's detection maps) are not ours."""
    images = data.get("images")
    if not isinstance(images, list) or not images or not all(isinstance(i, str) for i in images):
        raise MalformedResponse(f"{PROVIDER} answered without images", provider=PROVIDER)
    if count > 1 and len(images) == count + 1:
        images = images[1:]
    return images[:count]


def _seeds(info: dict[str, Any], count: int) -> list[int | None]:
    seeds = info.get("all_seeds")
    if isinstance(seeds, list) and len(seeds) >= count and all(isinstance(s, int) for s in seeds):
        return list(seeds[:count])
    seed = info.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        return [seed + i for i in range(count)]
    return [None] * count


def _b64decode(item: str) -> bytes:
    _, comma, tail = item.partition(",")
    payload = tail if comma and item.startswith("data:") else item
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedResponse(
            f"{PROVIDER} sent an image that is not base64", provider=PROVIDER
        ) from exc
