"""The offline image provider: prompt-driven pictures at the asked size and format, repeatable
per seed, in the asked colours, with the asked text; variations and style transfers of real
images; unsafe or unsupported sources refused."""

from __future__ import annotations

import io
import itertools
import multiprocessing
import struct
import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat

from creativeflow.providers.base import (
    ImageEditRequest,
    ImageFormat,
    ImageProvider,
    ImageRequest,
)
from creativeflow.providers.errors import ProviderRejected, ProviderTimeout
from creativeflow.providers.image_filters import distance, parse_hex
from creativeflow.providers.local_image import LocalImageProvider, read_prompt

Colour = tuple[int, int, int]


@pytest.fixture
def provider() -> LocalImageProvider:
    return LocalImageProvider()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel, 0..255."""
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    return sum(ImageStat.Stat(diff).mean) / 3


def colour_share(image: Image.Image, colour: Colour, within: float) -> float:
    """The share of pixels within `within` (redmean distance) of `colour`."""
    rgb = image.convert("RGB")
    near = 0
    for count, found in rgb.getcolors(rgb.width * rgb.height) or []:
        assert isinstance(found, tuple)
        if distance((found[0], found[1], found[2]), colour) <= within:
            near += count
    return near / (rgb.width * rgb.height)


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk claiming `width` x `height`, with no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


BASE = ImageRequest(prompt="mountains at sunset", width=256, height=256, seed=5)


async def picture(provider: LocalImageProvider, **fields: Any) -> Image.Image:
    request = replace(BASE, **fields)
    return decode((await provider.generate(request)).images[0].data)


@pytest.fixture
async def source(provider: LocalImageProvider) -> bytes:
    """A real picture to transform: a city by the sea at sunset."""
    request = ImageRequest(
        prompt="city skyline by the ocean at sunset", width=256, height=192, seed=11
    )
    return (await provider.generate(request)).images[0].data


def test_satisfies_the_image_provider_protocol(provider: LocalImageProvider) -> None:
    assert isinstance(provider, ImageProvider)
    assert (provider.name, provider.model) == ("local", "local-pillow-1")


# --- generate ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "pil_format"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")]
)
async def test_output_decodes_at_the_requested_size_and_format(
    provider: LocalImageProvider, fmt: ImageFormat, pil_format: str
) -> None:
    request = ImageRequest(
        prompt="a banner for Acme Coffee", width=320, height=192, format=fmt, seed=1
    )
    result = await provider.generate(request)
    image = decode(result.images[0].data)
    assert (image.format, image.size) == (pil_format, (320, 192))
    generated = result.images[0]
    assert (generated.format, generated.width, generated.height, generated.seed) == (
        fmt,
        320,
        192,
        1,
    )
    assert (result.provider, result.model, result.usage.images) == ("local", "local-pillow-1", 1)
    assert result.metadata["local"] is True and result.duration_ms > 0


async def test_same_request_and_seed_give_the_same_bytes(provider: LocalImageProvider) -> None:
    request = ImageRequest(prompt="neon city at night with stars", width=256, height=256, seed=42)
    first, again = await provider.generate(request), await provider.generate(request)
    other = await provider.generate(
        ImageRequest(prompt=request.prompt, width=256, height=256, seed=43)
    )
    assert first.images[0].data == again.images[0].data
    assert other.images[0].data != first.images[0].data


async def test_an_unseeded_request_gets_a_reported_repeatable_seed(
    provider: LocalImageProvider,
) -> None:
    request = ImageRequest(prompt="forest by a lake", width=128, height=128)
    first, again = await provider.generate(request), await provider.generate(request)
    seed = first.images[0].seed
    assert isinstance(seed, int) and first.metadata["seed"] == seed
    assert again.images[0].data == first.images[0].data
    seeded = await provider.generate(
        ImageRequest(prompt=request.prompt, width=128, height=128, seed=seed)
    )
    assert seeded.images[0].data == first.images[0].data


async def test_image_i_uses_seed_plus_i_and_progress_follows_each(
    provider: LocalImageProvider,
) -> None:
    reports: list[tuple[float, str]] = []

    async def progress(fraction: float, message: str) -> None:
        reports.append((fraction, message))

    request = ImageRequest(prompt="ocean waves", width=128, height=128, count=3, seed=100)
    result = await provider.generate(request, progress)
    assert [image.seed for image in result.images] == [100, 101, 102]
    assert len({image.data for image in result.images}) == 3
    assert result.usage.images == 3
    single = await provider.generate(
        ImageRequest(prompt="ocean waves", width=128, height=128, seed=102)
    )
    assert single.images[0].data == result.images[2].data
    fractions = [fraction for fraction, _ in reports]
    assert len(fractions) == 3 and fractions == sorted(set(fractions)) and fractions[-1] == 1.0


async def test_requested_palette_colours_dominate_the_image(provider: LocalImageProvider) -> None:
    palette = ("#e63946", "#1d3557", "#f1c40f")
    result = await provider.generate(
        ImageRequest(
            prompt="abstract shapes", style="modern", palette=palette, width=256, height=256, seed=3
        )
    )
    image = decode(result.images[0].data)
    assert result.metadata["palette"][:3] == list(palette)
    for hex_colour in palette:
        assert colour_share(image, parse_hex(hex_colour), within=20) > 0.02, hex_colour


async def test_colour_words_choose_the_palette(provider: LocalImageProvider) -> None:
    result = await provider.generate(
        ImageRequest(
            prompt="minimal teal and gold geometric pattern", width=256, height=256, seed=9
        )
    )
    image = decode(result.images[0].data)
    assert result.metadata["style"] == "modern"
    assert colour_share(image, parse_hex("#0f766e"), within=20) > 0.1  # teal
    assert colour_share(image, parse_hex("#d4a017"), within=20) > 0.02  # gold


async def test_negative_colours_are_left_out(provider: LocalImageProvider) -> None:
    asked = ImageRequest(prompt="red and blue circles", width=128, height=128, seed=2)
    with_red = await provider.generate(asked)
    without = await provider.generate(
        ImageRequest(prompt=asked.prompt, negative_prompt="red", width=128, height=128, seed=2)
    )
    red = parse_hex("#d62828")
    assert any(distance(parse_hex(c), red) < 60 for c in with_red.metadata["palette"])
    assert all(distance(parse_hex(c), red) > 110 for c in without.metadata["palette"])
    assert colour_share(decode(without.images[0].data), red, within=60) < 0.005


async def test_banner_text_is_drawn_and_no_text_removes_only_it(
    provider: LocalImageProvider,
) -> None:
    banner = ImageRequest(
        'summer banner "Grand Opening" with mountains', width=384, height=216, seed=4
    )
    with_text = await provider.generate(banner)
    plain = await provider.generate(replace(banner, negative_prompt="text"))
    assert with_text.metadata["text"] == "Grand Opening" and plain.metadata["text"] is None
    a, b = decode(with_text.images[0].data), decode(plain.images[0].data)
    top = (0, 0, 384, 40)  # above the headline: the same picture
    assert ImageChops.difference(a.crop(top), b.crop(top)).getbbox() is None
    band = (38, 56, 346, 121)  # the headline box
    changed = (
        ImageChops.difference(a.crop(band), b.crop(band))
        .convert("L")
        .point(lambda v: 255 if v > 40 else 0)
    )
    assert ImageStat.Stat(changed).mean[0] / 255 > 0.08


def _jumps(image: Image.Image, y: int) -> int:
    """How often the luminance jumps along row `y` (letters make many jumps)."""
    gray = image.convert("L")
    row = gray.crop((0, y, gray.width, y + 1)).tobytes()
    return sum(1 for a, b in itertools.pairwise(row) if abs(a - b) > 60)


async def test_logo_draws_the_quoted_name_as_a_wordmark(provider: LocalImageProvider) -> None:
    logo = ImageRequest('logo for "Acme Coffee"', width=256, height=256, seed=8)
    result = await provider.generate(logo)
    plain = await provider.generate(replace(logo, negative_prompt="text, letters"))
    assert result.metadata["design_type"] == "logo" and result.metadata["text"] == "Acme Coffee"
    wordmark_row = 188  # the middle of the wordmark under the emblem
    assert _jumps(decode(result.images[0].data), wordmark_row) >= 14
    assert _jumps(decode(plain.images[0].data), wordmark_row) <= 6


async def test_an_unquoted_brand_name_is_found(provider: LocalImageProvider) -> None:
    result = await provider.generate(
        ImageRequest(
            prompt="a modern logo for a bakery called Rise & Shine", width=128, height=128, seed=1
        )
    )
    assert result.metadata["text"] == "Rise & Shine"
    illustration = await provider.generate(
        ImageRequest(prompt="Paris at night with the moon", width=128, height=128, seed=1)
    )
    assert illustration.metadata["design_type"] == "illustration"
    assert illustration.metadata["text"] is None  # only quoted text goes on a plain picture


async def test_prompt_negation_and_negative_prompt_remove_motifs(
    provider: LocalImageProvider,
) -> None:
    result = await provider.generate(
        ImageRequest(
            prompt="mountains and a forest at night, no moon",
            negative_prompt="trees",
            width=128,
            height=128,
            seed=1,
        )
    )
    assert result.metadata["motifs"] == ["stars", "mountains"]
    prompt = read_prompt("a poster without text, but with waves")
    assert "text" in prompt.negative and "waves" in prompt.words


async def test_styles_change_the_treatment(provider: LocalImageProvider) -> None:
    noir = await picture(provider, prompt="film noir city street at night")
    red, green, blue = noir.convert("RGB").split()
    assert ImageChops.difference(red, green).getbbox() is None
    assert ImageChops.difference(green, blue).getbbox() is None
    neon = await picture(
        provider, prompt="cyberpunk neon skyline", palette=("#ffffff", "#dddddd", "#00f0ff")
    )
    light = await picture(provider, prompt="skyline", palette=("#ffffff", "#dddddd", "#00f0ff"))
    assert (
        ImageStat.Stat(neon.convert("L")).mean[0] < ImageStat.Stat(light.convert("L")).mean[0] - 60
    )
    watercolor = await picture(provider, prompt="watercolor mountains at sunset")
    flat = await picture(provider, prompt="mountains at sunset")
    assert mean_difference(watercolor, flat) > 3


async def test_panel_gets_a_comic_frame(provider: LocalImageProvider) -> None:
    result = await provider.generate(
        ImageRequest(prompt='comic panel "Meanwhile..." in the city', width=256, height=256, seed=2)
    )
    image = decode(result.images[0].data).convert("RGB")
    assert result.metadata["design_type"] == "panel" and result.metadata["style"] == "comic"
    assert image.getpixel((2, 128)) == (255, 255, 255)  # gutter
    assert image.getpixel((8, 128)) == (17, 17, 17)  # ink border


@pytest.mark.parametrize(
    "fields",
    [
        {"width": 63},
        {"height": 4097},
        {"count": 0},
        {"count": 9},
        {"palette": ("#12345g",)},
        {"format": "gif"},
    ],
)
async def test_out_of_range_requests_are_rejected(
    provider: LocalImageProvider, fields: dict[str, Any]
) -> None:
    request = replace(BASE, **{"width": 128, "height": 128, **fields})
    with pytest.raises(ProviderRejected):
        await provider.generate(request)


async def test_slow_rendering_times_out(provider: LocalImageProvider) -> None:
    request = ImageRequest(
        prompt="city at night", width=1024, height=1024, count=2, seed=1, timeout=0.001
    )
    with pytest.raises(ProviderTimeout):
        await provider.generate(request)


# --- transform -----------------------------------------------------------------------------


async def test_variations_differ_but_stay_close_to_the_source(
    provider: LocalImageProvider, source: bytes
) -> None:
    original = decode(source)
    request = ImageEditRequest(source=source, operation="variation", strength=0.5, count=3, seed=7)
    result = await provider.transform(request)
    images = [decode(image.data) for image in result.images]
    assert [image.seed for image in result.images] == [7, 8, 9]
    assert all(image.size == original.size for image in images)
    assert all((g.width, g.height) == original.size for g in result.images)
    for index, image in enumerate(images):
        assert 2 < mean_difference(image, original) < 45
        for other in images[index + 1 :]:
            assert mean_difference(image, other) > 2
    unrelated = await picture(provider, prompt="pastel abstract shapes", width=256, height=192)
    assert mean_difference(images[0], original) < mean_difference(unrelated, original)
    again = await provider.transform(request)
    assert [i.data for i in again.images] == [i.data for i in result.images]


async def test_variation_strength_scales_the_change(
    provider: LocalImageProvider, source: bytes
) -> None:
    original = decode(source)

    async def varied(strength: float) -> Image.Image:
        request = ImageEditRequest(source=source, operation="variation", strength=strength, seed=3)
        return decode((await provider.transform(request)).images[0].data)

    assert (
        ImageChops.difference((await varied(0.0)).convert("RGB"), original.convert("RGB")).getbbox()
        is None
    )
    assert mean_difference(await varied(0.2), original) < mean_difference(
        await varied(1.0), original
    )


async def test_style_transfer_maps_onto_the_palette(
    provider: LocalImageProvider, source: bytes
) -> None:
    palette = ("#264653", "#e9c46a", "#e76f51")
    full = await provider.transform(
        ImageEditRequest(
            source=source,
            operation="style_transfer",
            style="modern",
            palette=palette,
            strength=1.0,
            seed=1,
        )
    )
    image = decode(full.images[0].data)
    assert image.size == decode(source).size
    assert full.metadata["style"] == "modern" and full.metadata["palette"][:3] == list(palette)
    on_palette = sum(colour_share(image, parse_hex(c), within=12) for c in full.metadata["palette"])
    assert on_palette > 0.95
    assert colour_share(decode(source), parse_hex("#264653"), within=12) < 0.05
    half = await provider.transform(
        ImageEditRequest(
            source=source,
            operation="style_transfer",
            style="modern",
            palette=palette,
            strength=0.5,
            seed=1,
        )
    )
    assert mean_difference(decode(half.images[0].data), decode(source)) < mean_difference(
        image, decode(source)
    )


async def test_style_transfer_uses_the_style_palette_and_filters(
    provider: LocalImageProvider, source: bytes
) -> None:
    result = await provider.transform(
        ImageEditRequest(
            source=source, operation="style_transfer", prompt="film noir", strength=1.0, seed=1
        )
    )
    image = decode(result.images[0].data).convert("RGB")
    assert result.metadata["style"] == "noir"
    red, green, blue = image.split()
    assert (
        ImageChops.difference(red, blue).getbbox() is None
        and ImageChops.difference(red, green).getbbox() is None
    )
    comic = await provider.transform(
        ImageEditRequest(
            source=source, operation="style_transfer", style="comic", strength=1.0, seed=1
        )
    )
    assert colour_share(decode(comic.images[0].data), (17, 17, 17), within=12) > 0.03  # ink lines


def _encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


async def test_exif_orientation_and_transparency_are_honoured(provider: LocalImageProvider) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to display
    jpeg = _encoded(Image.new("RGB", (96, 64), (200, 60, 40)), "JPEG", exif=exif)
    result = await provider.transform(ImageEditRequest(source=jpeg, operation="variation", seed=1))
    assert (result.images[0].width, result.images[0].height) == (64, 96)
    assert decode(result.images[0].data).size == (64, 96)
    clear = Image.new("RGBA", (80, 80), (0, 0, 0, 0))
    clear.paste((30, 120, 200, 255), (20, 20, 60, 60))
    out = await provider.transform(
        ImageEditRequest(
            source=_encoded(clear, "PNG"), operation="style_transfer", style="pastel", seed=1
        )
    )
    restyled = decode(out.images[0].data)
    assert restyled.mode == "RGBA" and restyled.getpixel((2, 2))[3] == 0  # type: ignore[index]


@pytest.mark.parametrize(
    "data",
    [
        b"not an image at all",
        _encoded(Image.new("RGB", (16, 16)), "GIF"),
        _encoded(Image.new("RGB", (16, 16)), "BMP"),
        png_header(8000, 6000),  # 48 megapixels claimed, over the 40 cap
        png_header(100_000, 100_000),  # a decompression bomb
        _encoded(Image.new("RGB", (64, 64), (9, 9, 9)), "PNG")[:60],  # truncated
    ],
    ids=["garbage", "gif", "bmp", "too-many-pixels", "bomb", "truncated"],
)
async def test_unsafe_or_unsupported_sources_are_rejected(
    provider: LocalImageProvider, data: bytes
) -> None:
    with pytest.raises(ProviderRejected):
        await provider.transform(ImageEditRequest(source=data, operation="variation", seed=1))


async def test_bad_edit_requests_are_rejected(provider: LocalImageProvider, source: bytes) -> None:
    for request in (
        ImageEditRequest(source=source, operation="variation", strength=1.5),
        ImageEditRequest(source=source, operation="variation", count=9),
        ImageEditRequest(source=b"", operation="variation"),
        ImageEditRequest(source=source, operation="sharpen"),  # type: ignore[arg-type]
    ):
        with pytest.raises(ProviderRejected):
            await provider.transform(request)


# --- executors -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def process_pool() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        yield pool


async def test_a_process_pool_gives_the_same_bytes(
    provider: LocalImageProvider, process_pool: ProcessPoolExecutor, source: bytes
) -> None:
    pooled = LocalImageProvider(process_pool)
    request = ImageRequest(prompt='poster "Open Air" with trees', width=128, height=160, seed=5)
    assert (await pooled.generate(request)).images[0].data == (
        await provider.generate(request)
    ).images[0].data
    edit = ImageEditRequest(source=source, operation="style_transfer", style="comic", seed=2)
    assert (await pooled.transform(edit)).images[0].data == (await provider.transform(edit)).images[
        0
    ].data
    with pytest.raises(ProviderRejected):  # a refusal raised inside the worker crosses intact
        await pooled.transform(
            ImageEditRequest(
                source=_encoded(Image.new("RGB", (64, 64)), "PNG")[:60], operation="variation"
            )
        )
