"""Helpers shared by the providers that call remote services: deadlines, downloads, prompts
for remote image models, image decoding/encoding."""

from __future__ import annotations

import asyncio
import io
import re
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from PIL import Image, UnidentifiedImageError

from creativeflow.providers.base import GeneratedImage, ImageEditRequest, ImageFormat, Usage
from creativeflow.providers.errors import MalformedResponse, ProviderRejected, ProviderTimeout
from creativeflow.providers.http import RetryPolicy, send
from creativeflow.settings import Settings

DEFAULT_CLIENT_TIMEOUT = httpx.Timeout(30.0)

_HEX_COLOUR = re.compile(r"#?([0-9a-f]{6}|[0-9a-f]{3})", re.I)
_COLOUR_WORD = re.compile(r"[a-z][a-z -]{1,30}", re.I)
# Names a diffusion model knows, for palette entries given as hex.
_COLOUR_NAMES = tuple(
    (name.replace("_", " "), bytes.fromhex(rgb))
    for name, rgb in re.findall(
        r"(\w+):([0-9a-f]{6})",
        "black:000000 charcoal:36454f gray:808080 silver:c0c0c0 white:ffffff cream:fffdd0 "
        "beige:f5f5dc tan:d2b48c brown:8b4513 maroon:800000 crimson:dc143c red:ff0000 "
        "coral:ff7f50 pink:ffc0cb hot_pink:ff69b4 magenta:ff00ff peach:ffdab9 orange:ffa500 "
        "gold:ffd700 yellow:ffff00 olive:808000 lime_green:32cd32 green:008000 "
        "forest_green:228b22 mint:98ff98 teal:008080 turquoise:40e0d0 cyan:00ffff "
        "sky_blue:87ceeb royal_blue:4169e1 blue:0000ff navy:000080 indigo:4b0082 "
        "purple:800080 violet:ee82ee lavender:e6e6fa",
    )
)


# -- calls: retries, deadlines, downloads, usage -------------------------------------------


def policy_from(settings: Settings) -> RetryPolicy:
    """The retries the settings allow each provider request."""
    return RetryPolicy(
        retries=settings.provider_max_retries,
        backoff_seconds=settings.provider_retry_backoff_seconds,
    )


@dataclass(frozen=True, slots=True)
class Deadline:
    """When one provider call (every request it makes) must be done."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def left(self) -> float:
        return max(0.001, self.at - time.monotonic())


@asynccontextmanager
async def within(seconds: float, provider: str) -> AsyncIterator[None]:
    """The whole call's time limit, as a `ProviderTimeout`."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as exc:
        raise ProviderTimeout(
            f"{provider} did not answer within {seconds:g} s", provider=provider
        ) from exc


async def download(
    client: httpx.AsyncClient, url: str, provider: str, deadline: Deadline, policy: RetryPolicy
) -> bytes:
    """An image the provider links to; sent without the provider's credentials."""
    response = await send(
        client, "GET", url, provider=provider, seconds=deadline.left(), policy=policy
    )
    return response.content


def batches(count: int, per_call: int) -> list[int]:
    """`count` images as calls of at most `per_call` each."""
    count = max(1, count)
    return [min(per_call, count - start) for start in range(0, count, per_call)]


def add_usage(a: Usage, b: Usage) -> Usage:
    """The usage of two answers together."""
    return Usage(
        a.input_tokens + b.input_tokens, a.output_tokens + b.output_tokens, a.images + b.images
    )


# -- prompts -------------------------------------------------------------------------------


def compose_prompt(
    prompt: str, style: str | None, palette: Iterable[str], *, avoid: str = ""
) -> str:
    """A prompt for a model that reads prose: the words, the style, the palette (hex colours
    are understood as they are) and what to avoid, for APIs without a negative prompt."""
    parts = [prompt.strip()] if prompt.strip() else []
    if style and style.strip():
        parts.append(f"in {style.strip()} style")
    colours = [colour.strip() for colour in palette if colour.strip()]
    if colours:
        parts.append("using the colour palette " + ", ".join(colours))
    text = ", ".join(parts)
    if avoid.strip():
        text = f"{text}. Avoid: {avoid.strip()}" if text else f"Avoid: {avoid.strip()}"
    return text


def edit_prompt(request: ImageEditRequest) -> str:
    """What to make of the source: a variation or a restyling, how close to stay to it."""
    if request.operation == "style_transfer":
        lead = "Restyle this image"
        if request.style and request.style.strip():
            lead += f" in {request.style.strip()} style"
        colours = [colour.strip() for colour in request.palette if colour.strip()]
        if colours:
            lead += ", using the colour palette " + ", ".join(colours)
    else:
        lead = "A variation of this image"
    parts = [lead]
    if request.prompt.strip():
        parts.append(request.prompt.strip().rstrip("."))
    parts.append(fidelity_phrase(request.strength))
    return ". ".join(parts) + "."


def fidelity_phrase(strength: float) -> str:
    """`strength` (how far the output may move from the source) in words."""
    if strength <= 0.35:
        return "Keep the composition, subjects and framing very close to the original"
    if strength <= 0.65:
        return "Keep the composition and subjects recognisable"
    return "The composition may be reinterpreted freely"


def diffusion_prompt(prompt: str, style: str | None, palette: Iterable[str]) -> str:
    """A diffusion model's positive prompt: the request's words, its style and its palette as
    colour names."""
    parts = [prompt.strip()] if prompt.strip() else []
    if style and style.strip():
        parts.append(f"{style.strip()} style")
    colours = palette_words(palette)
    if colours:
        parts.append("color palette of " + ", ".join(colours))
    return ", ".join(parts)


def palette_words(palette: Iterable[str]) -> list[str]:
    """Hex colours as the nearest colour name (a model reads "navy", not "#000080"); entries
    that already are words are kept; duplicates dropped."""
    words: list[str] = []
    for entry in palette:
        value = entry.strip()
        match = _HEX_COLOUR.fullmatch(value)
        if match:
            digits = match.group(1)
            rgb = bytes.fromhex(digits if len(digits) == 6 else "".join(c * 2 for c in digits))
            word: str | None = min(_COLOUR_NAMES, key=lambda named: _distance(rgb, named[1]))[0]
        else:
            word = value.lower() if _COLOUR_WORD.fullmatch(value) else None
        if word and word not in words:
            words.append(word)
    return words


def _distance(a: bytes, b: bytes) -> float:
    """Colour distance weighted for how eyes see it (the "redmean" approximation)."""
    mean_red = (a[0] + b[0]) / 2
    red, green, blue = a[0] - b[0], a[1] - b[1], a[2] - b[2]
    return (2 + mean_red / 256) * red**2 + 4 * green**2 + (2 + (255 - mean_red) / 256) * blue**2


# -- images --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceImage:
    """A source image's format and size, as `inspect_source` reads them."""

    format: ImageFormat
    width: int
    height: int


# The source formats every remote provider takes, by Pillow's name for them.
_FORMATS: dict[str, ImageFormat] = {"png": "png", "jpeg": "jpeg", "webp": "webp"}


def inspect_source(data: bytes, provider: str) -> SourceImage:
    """The source image's format and size; bytes Pillow cannot read, or a format no provider
    takes (PNG, JPEG, WebP), are refused before anything is sent."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            image_format = _FORMATS.get((image.format or "").lower())
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ProviderRejected("the source is not an image", provider=provider) from exc
    if image_format is None:
        raise ProviderRejected("the source must be a PNG, JPEG or WebP image", provider=provider)
    return SourceImage(format=image_format, width=width, height=height)


def to_png(data: bytes) -> bytes:
    """The image re-encoded as PNG."""
    with Image.open(io.BytesIO(data)) as image:
        return encode_image(image, "png")


def decode_image(
    data: bytes, image_format: ImageFormat, *, provider: str, seed: int | None = None
) -> GeneratedImage:
    """Size and format read from the bytes, converted to the requested format when the
    provider sent another."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            width, height = image.size
            if (image.format or "").lower() != image_format:
                data = encode_image(image, image_format)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise MalformedResponse(
            f"{provider} sent an image that cannot be read", provider=provider
        ) from exc
    return GeneratedImage(data=data, format=image_format, width=width, height=height, seed=seed)


def encode_image(image: Image.Image, image_format: ImageFormat) -> bytes:
    """`image` as `image_format` bytes: JPEG and WebP at quality 92, JPEG in RGB or greyscale."""
    if image_format == "jpeg" and image.mode not in {"RGB", "L"}:
        image = image.convert("RGB")
    buffer = io.BytesIO()
    options = {} if image_format == "png" else {"quality": 92}
    image.save(buffer, format=image_format.upper(), **options)
    return buffer.getvalue()
