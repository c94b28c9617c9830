"""Ideogram image provider: `POST /generate` (text to image) and `POST /remix` (image to
image) of Ideogram's API, with the `Api-Key` header.

Ideogram answers with links to the images (valid for a limited time), so each is downloaded
at once. Images its safety filter flags (`is_image_safe: false`) are dropped; when none is
left the call is refused.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

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
    ProviderNotConfigured,
    ProviderRejected,
)
from creativeflow.providers.http import RetryPolicy, json_body, send
from creativeflow.providers.remote import (
    DEFAULT_CLIENT_TIMEOUT,
    Deadline,
    batches,
    compose_prompt,
    decode_image,
    download,
    edit_prompt,
    inspect_source,
    policy_from,
    within,
)
from creativeflow.settings import Settings

PROVIDER = "ideogram"
SAFETY_REFUSAL = "refused by the provider's safety filter"
MAX_IMAGES_PER_CALL = 8
SEED_LIMIT = 2_147_483_648

MagicPrompt = Literal["AUTO", "ON", "OFF"]

# The aspect ratios Ideogram's generate and remix endpoints accept.
ASPECT_RATIOS: dict[str, tuple[int, int]] = {
    "ASPECT_1_1": (1, 1),
    "ASPECT_16_9": (16, 9),
    "ASPECT_9_16": (9, 16),
    "ASPECT_16_10": (16, 10),
    "ASPECT_10_16": (10, 16),
    "ASPECT_4_3": (4, 3),
    "ASPECT_3_4": (3, 4),
    "ASPECT_3_2": (3, 2),
    "ASPECT_2_3": (2, 3),
    "ASPECT_3_1": (3, 1),
    "ASPECT_1_3": (1, 3),
}
# Our style names (words of them) -> Ideogram's style type; any other style is GENERAL and
# its name is written into the prompt either way.
_STYLE_TYPES: tuple[tuple[str, frozenset[str]], ...] = (
    ("REALISTIC", frozenset({"photo", "photographic", "realistic", "photorealistic", "cinematic"})),
    ("ANIME", frozenset({"anime", "manga"})),
    ("RENDER_3D", frozenset({"3d", "render", "clay", "isometric"})),
    (
        "DESIGN",
        frozenset(
            {"design", "flat", "logo", "minimal", "minimalist", "modern", "poster", "vector"}
        ),
    ),
)
_HEX = re.compile(r"#?([0-9a-f]{6}|[0-9a-f]{3})", re.I)
_WORD = re.compile(r"[a-z0-9]+")


def nearest_aspect_ratio(width: int, height: int) -> str:
    """The accepted aspect ratio closest to width:height (compared as log ratios)."""
    shape = math.log(max(1, width) / max(1, height))
    return min(ASPECT_RATIOS, key=lambda name: abs(math.log(_ratio(name)) - shape))


def _ratio(name: str) -> float:
    w, h = ASPECT_RATIOS[name]
    return w / h


def style_type(style: str | None) -> str:
    if not style or not style.strip():
        return "AUTO"
    words = set(_WORD.findall(style.lower()))
    return next((kind for kind, names in _STYLE_TYPES if words & names), "GENERAL")


def supports_style_type(model: str) -> bool:
    return not model.upper().startswith("V_1")


def supports_color_palette(model: str) -> bool:
    return model.upper() in {"V_2", "V_2_TURBO"}


def hex_colours(palette: Iterable[str]) -> list[str]:
    """Palette entries that are hex colours, as `#rrggbb`."""
    colours = []
    for entry in palette:
        match = _HEX.fullmatch(entry.strip())
        if match:
            digits = match.group(1).upper()
            colours.append("#" + (digits if len(digits) == 6 else "".join(c * 2 for c in digits)))
    return colours


def image_weight(strength: float) -> int:
    """`strength` (how far the output may move, 0..1) as Ideogram's weight of the source
    (1..100: how much the output should resemble it)."""
    return min(100, max(1, round((1.0 - min(1.0, max(0.0, strength))) * 100)))


@dataclass(frozen=True, slots=True)
class _Kept:
    url: str
    seed: int | None
    resolution: str | None
    prompt: str | None


class IdeogramImageProvider:
    """Text to image and remix on Ideogram."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        client: httpx.AsyncClient | None = None,
        policy: RetryPolicy = RetryPolicy(),
        magic_prompt: MagicPrompt = "AUTO",
    ) -> None:
        if not base_url:
            raise ProviderNotConfigured("IDEOGRAM_BASE_URL is not set", provider=PROVIDER)
        if not api_key:
            raise ProviderNotConfigured("IDEOGRAM_API_KEY is not set", provider=PROVIDER)
        self.name: str = PROVIDER
        self.model: str = model
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._policy = policy
        self._magic_prompt = magic_prompt
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=DEFAULT_CLIENT_TIMEOUT)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        if settings.ideogram_api_key is None:
            raise ProviderNotConfigured(
                "IDEOGRAM_API_KEY is not set (create one at ideogram.ai, API settings)",
                provider=PROVIDER,
            )
        return cls(
            base_url=settings.ideogram_base_url,
            api_key=settings.ideogram_api_key.get_secret_value(),
            model=settings.ideogram_model,
            policy=policy_from(settings),
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def generate(
        self, request: ImageRequest, progress: Progress | None = None
    ) -> ImageResult:
        started = time.perf_counter()
        deadline = Deadline.after(request.timeout)
        # Colours the model takes as its palette are not repeated in the prompt.
        native = supports_color_palette(self.model)
        in_prompt = [c for c in request.palette if not (native and _HEX.fullmatch(c.strip()))]
        image_request = self._image_request(
            compose_prompt(request.prompt, request.style, in_prompt),
            style=request.style,
            palette=request.palette,
            aspect_ratio=nearest_aspect_ratio(request.width, request.height),
            negative_prompt=request.negative_prompt,
        )
        async with within(request.timeout, PROVIDER):
            answers = await asyncio.gather(
                *(
                    self._call(
                        "/generate",
                        deadline,
                        json={"image_request": _numbered(image_request, n, i, request.seed)},
                    )
                    for i, n in enumerate(batches(request.count, MAX_IMAGES_PER_CALL))
                )
            )
            result = await self._collect(answers, request.format, deadline, started)
        result.metadata.update(aspect_ratio=image_request["aspect_ratio"])
        if progress is not None:
            await progress(1.0, f"{len(result.images)} image(s) received")
        return result

    async def transform(
        self, request: ImageEditRequest, progress: Progress | None = None
    ) -> ImageResult:
        started = time.perf_counter()
        deadline = Deadline.after(request.timeout)
        source = await asyncio.to_thread(inspect_source, request.source, PROVIDER)
        # For style transfer the prompt written for the edit names the style and palette.
        image_request = self._image_request(
            edit_prompt(request),
            style=request.style,
            palette=request.palette,
            aspect_ratio=nearest_aspect_ratio(source.width, source.height),
        )
        image_request["image_weight"] = image_weight(request.strength)
        upload = (f"source.{source.format}", request.source, f"image/{source.format}")
        async with within(request.timeout, PROVIDER):
            answers = await asyncio.gather(
                *(
                    self._call(
                        "/remix",
                        deadline,
                        data={
                            "image_request": json.dumps(
                                _numbered(image_request, n, i, request.seed)
                            )
                        },
                        files={"image_file": upload},
                    )
                    for i, n in enumerate(batches(request.count, MAX_IMAGES_PER_CALL))
                )
            )
            result = await self._collect(answers, request.format, deadline, started)
        result.metadata.update(
            operation=request.operation,
            aspect_ratio=image_request["aspect_ratio"],
            image_weight=image_request["image_weight"],
        )
        if progress is not None:
            await progress(1.0, f"{len(result.images)} image(s) received")
        return result

    def _image_request(
        self,
        prompt: str,
        *,
        style: str | None,
        palette: Sequence[str],
        aspect_ratio: str,
        negative_prompt: str = "",
    ) -> dict[str, Any]:
        """The `image_request` fields shared by generate and remix; hex colours also go
        into Ideogram's colour palette where the model has one."""
        body: dict[str, Any] = {
            "prompt": prompt,
            "model": self.model,
            "aspect_ratio": aspect_ratio,
            "magic_prompt_option": self._magic_prompt,
        }
        if supports_style_type(self.model):
            body["style_type"] = style_type(style)
        if negative_prompt.strip():
            body["negative_prompt"] = negative_prompt.strip()
        colours = hex_colours(palette) if supports_color_palette(self.model) else []
        if colours:
            body["color_palette"] = {"members": [{"color_hex": colour} for colour in colours]}
        return body

    async def _call(self, path: str, deadline: Deadline, **kwargs: Any) -> httpx.Response:
        return await send(
            self._client,
            "POST",
            f"{self._base_url}{path}",
            provider=PROVIDER,
            seconds=deadline.left(),
            policy=self._policy,
            headers={"Api-Key": self._api_key},
            **kwargs,
        )

    async def _collect(
        self,
        answers: Sequence[httpx.Response],
        image_format: ImageFormat,
        deadline: Deadline,
        started: float,
    ) -> ImageResult:
        kept: list[_Kept] = []
        unsafe = 0
        created: list[str] = []
        for response in answers:
            data = json_body(response, PROVIDER)
            items = data.get("data") if isinstance(data, dict) else None
            if not isinstance(items, list) or not items:
                raise MalformedResponse("ideogram answered without images", provider=PROVIDER)
            if isinstance(data.get("created"), str):
                created.append(data["created"])
            for item in items:
                if isinstance(item, dict) and item.get("is_image_safe") is False:
                    unsafe += 1
                    continue
                kept.append(_read_item(item))
        if not kept:
            raise ProviderRejected(f"ideogram: every image was {SAFETY_REFUSAL}", provider=PROVIDER)
        blobs = await asyncio.gather(
            *(download(self._client, item.url, PROVIDER, deadline, self._policy) for item in kept)
        )
        images = await asyncio.to_thread(
            lambda: [
                decode_image(blob, image_format, provider=PROVIDER, seed=item.seed)
                for blob, item in zip(blobs, kept, strict=True)
            ]
        )
        metadata: dict[str, Any] = {
            "created": created,
            "resolutions": [item.resolution for item in kept],
            "prompts": [item.prompt for item in kept],
            "seeds": [item.seed for item in kept],
            "unsafe_dropped": unsafe,
        }
        return ImageResult(
            images=images,
            provider=PROVIDER,
            model=self.model,
            usage=Usage(images=len(images)),
            duration_ms=(time.perf_counter() - started) * 1000,
            metadata=metadata,
        )


def _numbered(
    image_request: dict[str, Any], count: int, index: int, seed: int | None
) -> dict[str, Any]:
    """The request of the `index`th call: its image count, and its own seed so that calls
    beyond the first do not repeat the first one's images."""
    body = {**image_request, "num_images": count}
    if seed is not None:
        body["seed"] = (seed + index) % SEED_LIMIT
    return body


def _read_item(item: Any) -> _Kept:
    if not isinstance(item, dict) or not isinstance(item.get("url"), str) or not item["url"]:
        raise MalformedResponse("ideogram sent an image without a url", provider=PROVIDER)
    seed = item.get("seed")
    resolution, prompt = item.get("resolution"), item.get("prompt")
    return _Kept(
        url=item["url"],
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        resolution=resolution if isinstance(resolution, str) else None,
        prompt=prompt if isinstance(prompt, str) else None,
    )
