"""A stored image made ready for a frame: decoded, cropped to the frame's proportions and
scaled to the pixels it will fill, so a page never carries more than it shows."""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

MISSING = (0.85, 0.85, 0.85)


def fit_picture(data: bytes, width_px: int, height_px: int) -> Image.Image | None:
    """The image cropped about its centre and resized to exactly `width_px` x `height_px`;
    None when the stored bytes are not a readable image (the frame is then drawn empty)."""
    size = (max(1, width_px), max(1, height_px))
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", size)  # JPEG: decode at a reduced scale when that is enough
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    return ImageOps.fit(rgb, size, Image.Resampling.LANCZOS)


def jpeg(image: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, optimize=True)
    return buffer.getvalue()
