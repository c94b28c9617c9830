"""Image bytes in and out: formats told apart by their bytes, decoding under a pixel cap,
re-encoding without metadata, dominant colours and thumbnails.

Everything here decodes or encodes whole images: call it in a worker thread, never on the
event loop. Failures are the images API's own exceptions (415, 413, 422), ready for a client.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from creativeflow.assets.errors import ImageTooManyPixels, UnsupportedImage
from creativeflow.shared.core.exceptions import ValidationException

# Our names for the formats (as stored in `images.format`), and Pillow's.
PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
ACCEPTED = "JPEG, PNG or WebP"
# The first bytes that tell the three formats apart.
MAGIC_LENGTH = 12
THUMBNAIL_SIDE = 256
THUMBNAIL_CONTENT_TYPE = "image/webp"
DOMINANT_COLOURS = 5
# Colours are counted on a small sample: the proportions survive, the work does not grow
# with the image.
_COLOUR_SAMPLE_SIDE = 128
# Lossy WebP has no quantisation tables to carry over (JPEG does): a high quality keeps a
# re-encoded upload visually the same.
_WEBP_QUALITY = 90
_THUMBNAIL_QUALITY = 80


def sniff_format(head: bytes) -> str | None:
    """The format its first bytes announce (`jpeg`, `png`, `webp`), or None for anything else."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(head) >= MAGIC_LENGTH and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


@dataclass(frozen=True, slots=True)
class DominantColour:
    hex: str
    share: float

    def document(self) -> dict[str, Any]:
        return {"hex": self.hex, "share": self.share}


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """An image ready to store: re-encoded bytes and what was learnt decoding it."""

    data: bytes
    format: str
    width: int
    height: int
    dominant_colors: list[DominantColour]


@dataclass(frozen=True, slots=True)
class ImageFacts:
    width: int
    height: int
    format: str
    dominant_colors: list[DominantColour]


def _unreadable(image_format: str | None = None) -> UnsupportedImage:
    named = f"{image_format.upper()} " if image_format else ""
    return UnsupportedImage(
        f"The file is not a readable {named}image (truncated or corrupt); send a "
        f"complete {ACCEPTED} file"
    )


@contextmanager
def _decoded(
    source: str | Path | IO[bytes], image_format: str, max_pixels: int
) -> Iterator[Image.Image]:
    """The image opened as `image_format` only, refused before any pixel is decoded when it
    has more than `max_pixels` or several frames, then fully decoded (a truncated file fails
    here, not later). Errors of the caller's own work with it pass through unchanged."""
    try:
        image = Image.open(source, formats=[PILLOW_FORMATS[image_format]])
    except Image.DecompressionBombError:
        # Pillow's own cap (twice MAX_IMAGE_PIXELS), met before ours could look.
        raise ImageTooManyPixels(
            f"The image declares too many pixels; at most {max_pixels:,} are accepted",
            data={"max_pixels": max_pixels},
        ) from None
    except (UnidentifiedImageError, SyntaxError, ValueError, OSError, EOFError):
        raise _unreadable(image_format) from None
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise ImageTooManyPixels(
                f"The image is {width}x{height} pixels; at most {max_pixels:,} pixels are accepted",
                data={"width": width, "height": height, "max_pixels": max_pixels},
            )
        try:
            frames = getattr(image, "n_frames", 1)
            image.load()
        except (SyntaxError, ValueError, OSError, EOFError):
            raise _unreadable(image_format) from None
        if frames > 1:
            raise ValidationException(
                "file: animated images are not accepted",
                errors=[{"field": "file", "message": "animated images are not accepted"}],
                code="ANIMATED_IMAGE_NOT_SUPPORTED",
            )
        yield image


# -- uploads ---------------------------------------------------------------------------------


def prepare_upload(path: Path, image_format: str, *, max_pixels: int) -> PreparedImage:
    """Decode an uploaded file (already sniffed as `image_format`), turn it upright by its EXIF
    orientation, and re-encode it in its own format without EXIF, XMP, comments or text
    chunks. The ICC colour profile stays: it is colour, not a record about the picture or its
    maker, and dropping it would shift the colours of wide-gamut photos."""
    with _decoded(path, image_format, max_pixels) as image:
        icc_profile = image.info.get("icc_profile")
        transparency = image.info.get("transparency")
        jpeg_options = _jpeg_options(image) if image_format == "jpeg" else {}
        lossless_webp = image_format == "webp" and _webp_is_lossless(path)
        ImageOps.exif_transpose(image, in_place=True)
        # Nothing the source carried is written again unless named below.
        image.info = {}
        options: dict[str, Any] = {}
        if icc_profile:
            options["icc_profile"] = icc_profile
        if image_format == "jpeg":
            options.update(jpeg_options)
        elif image_format == "png":
            if transparency is not None:
                options["transparency"] = transparency
        elif lossless_webp:
            options.update(lossless=True, exact=True)
        else:
            options.update(quality=_WEBP_QUALITY)
        buffer = io.BytesIO()
        image.save(buffer, PILLOW_FORMATS[image_format], **options)
        colours = dominant_colours(image)
        width, height = image.size
    return PreparedImage(buffer.getvalue(), image_format, width, height, colours)


def _jpeg_options(image: Image.Image) -> dict[str, Any]:
    """Re-encode with the source's own quantisation tables and chroma subsampling: the same
    quality as the upload, no second generation loss from a guessed quality setting."""
    options: dict[str, Any] = {}
    tables = getattr(image, "quantization", None)
    if tables:
        options["qtables"] = tables
    if isinstance(image, JpegImagePlugin.JpegImageFile):
        sampling = JpegImagePlugin.get_sampling(image)
        if sampling != -1:
            options["subsampling"] = sampling
    return options


def _webp_is_lossless(path: Path) -> bool:
    """Whether the WebP's image chunk is VP8L (lossless) rather than VP8 (lossy)."""
    with path.open("rb") as handle:
        handle.seek(MAGIC_LENGTH)
        while len(header := handle.read(8)) == 8:
            fourcc, size = header[:4], int.from_bytes(header[4:], "little")
            if fourcc == b"VP8L":
                return True
            if fourcc == b"VP8 ":
                return False
            handle.seek(size + (size & 1), os.SEEK_CUR)
    return False


# -- images from providers and storage ------------------------------------------------------


def describe(data: bytes, image_format: str, *, max_pixels: int) -> ImageFacts:
    """Size and dominant colours of stored bytes (a generated image)."""
    with _decoded(io.BytesIO(data), image_format, max_pixels) as image:
        width, height = image.size
        return ImageFacts(width, height, image_format, dominant_colours(image))


def make_thumbnail(data: bytes, image_format: str, *, max_pixels: int) -> bytes:
    """A WebP at most THUMBNAIL_SIDE pixels on its long side (never enlarged), with the
    image's colour profile. Stored images are already upright."""
    with _decoded(io.BytesIO(data), image_format, max_pixels) as image:
        icc_profile = image.info.get("icc_profile")
        small = _display_mode(image)
        small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        options: dict[str, Any] = {"quality": _THUMBNAIL_QUALITY, "method": 4}
        if icc_profile:
            options["icc_profile"] = icc_profile
        small.save(buffer, "WEBP", **options)
    return buffer.getvalue()


def _display_mode(image: Image.Image) -> Image.Image:
    """RGB, or RGBA when the image has transparency (16-bit greyscale scaled to 8 bits)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda value: value * (1 / 256)).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        return image.convert("RGBA")
    return image.convert("RGB")


def dominant_colours(image: Image.Image, count: int = DOMINANT_COLOURS) -> list[DominantColour]:
    """The most common colours of the visible pixels, as hex with their share (0..1), most
    common first: a median-cut palette of a small nearest-neighbour sample, so colours stay
    exact (no blending at edges) and shares stay proportional."""
    width, height = image.size
    scale = min(1.0, _COLOUR_SAMPLE_SIDE / max(width, height, 1))
    sample = image.resize(
        (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.NEAREST
    )
    rgba = _display_mode(sample).convert("RGBA")
    raw = rgba.tobytes()
    if min(raw[3::4]) >= 128:
        visible = rgba.convert("RGB")
    else:  # only the pixels one can see count
        opaque = bytearray()
        for offset in range(0, len(raw), 4):
            if raw[offset + 3] >= 128:
                opaque += raw[offset : offset + 3]
        if not opaque:
            return []
        visible = Image.frombytes("RGB", (len(opaque) // 3, 1), bytes(opaque))
    pixel_count = visible.width * visible.height
    palette_image = visible.quantize(colors=count, method=Image.Quantize.MEDIANCUT)
    palette = palette_image.getpalette() or []
    totals: dict[str, int] = {}
    for pixels_of_colour, index in palette_image.getcolors(maxcolors=256) or []:
        start = int(index) * 3  # type: ignore[arg-type]  # a palette image's colours are indexes
        red, green, blue = palette[start : start + 3]
        key = f"#{red:02x}{green:02x}{blue:02x}"
        totals[key] = totals.get(key, 0) + pixels_of_colour
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:count]
    return [DominantColour(hex=key, share=round(n / pixel_count, 4)) for key, n in ranked]
