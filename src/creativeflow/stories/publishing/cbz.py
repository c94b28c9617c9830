"""Laid-out pages drawn as images with Pillow, and the CBZ that holds them.

A CBZ is a ZIP of page images in reading order, read by every comic reader; `ComicInfo.xml`
(the ComicRack schema most readers understand) names the title, summary, page count and, for
manga, the right-to-left reading. Pages are JPEG, stored without recompression.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw

from creativeflow.documents.fonts import raster_font
from creativeflow.stories.publishing.layout import (
    Colour,
    ComicSpec,
    Frame,
    Page,
    Picture,
    Rect,
    Tail,
    TextLine,
)
from creativeflow.stories.publishing.pictures import MISSING, fit_picture, jpeg


def _rgb(colour: Colour) -> tuple[int, int, int]:
    return (round(colour[0] * 255), round(colour[1] * 255), round(colour[2] * 255))


class RasterPainter:
    """Draws one page at `dpi` into a new RGB image."""

    def __init__(self, dpi: int = 150) -> None:
        self.scale = dpi / 72

    def paint(self, page: Page, images: Mapping[str, bytes | None]) -> Image.Image:
        s = self.scale
        canvas = Image.new("RGB", (round(page.width * s), round(page.height * s)), "white")
        draw = ImageDraw.Draw(canvas)
        for op in page.operations:
            if isinstance(op, Frame):
                self._frame(draw, op)
            elif isinstance(op, Tail):
                points = [(x * s, y * s) for x, y in op.points]
                draw.polygon(points, _rgb(op.fill), _rgb(op.stroke), self._line(op.line))
            elif isinstance(op, Picture):
                self._picture(canvas, draw, op, images.get(op.key))
            else:
                self._text(draw, op)
        return canvas

    def _line(self, points: float) -> int:
        return max(1, round(points * self.scale))

    def _box(self, rect: Rect) -> tuple[float, float, float, float]:
        s = self.scale
        return rect.x * s, rect.y * s, (rect.x + rect.w) * s, (rect.y + rect.h) * s

    def _frame(self, draw: ImageDraw.ImageDraw, op: Frame) -> None:
        fill = _rgb(op.fill) if op.fill is not None else None
        outline = _rgb(op.stroke) if op.stroke is not None else None
        width = self._line(op.line) if outline is not None else 0
        box = self._box(op.rect)
        if op.oval:
            draw.ellipse(box, fill, outline, width)
        elif op.radius:
            draw.rounded_rectangle(box, op.radius * self.scale, fill, outline, width)
        else:
            draw.rectangle(box, fill, outline, width)

    def _picture(
        self, canvas: Image.Image, draw: ImageDraw.ImageDraw, op: Picture, data: bytes | None
    ) -> None:
        left, top, right, bottom = (round(v) for v in self._box(op.rect))
        picture = fit_picture(data, right - left, bottom - top) if data else None
        if picture is None:
            draw.rectangle((left, top, right, bottom), _rgb(MISSING))
            return
        canvas.paste(picture, (left, top))

    def _text(self, draw: ImageDraw.ImageDraw, op: TextLine) -> None:
        s = self.scale
        font = raster_font(round(op.size * s))
        draw.text(
            (op.x * s, op.baseline * s),
            op.text,
            fill=_rgb(op.colour),
            font=font,
            anchor="ms" if op.align == "center" else "ls",
            stroke_width=round(op.size * s * 0.07) if op.outline is not None else 0,
            stroke_fill=_rgb(op.outline) if op.outline is not None else None,
        )


class CbzWriter:
    """Pages added one at a time to a ZIP; `finish` adds ComicInfo.xml and returns the file."""

    def __init__(self, comic: ComicSpec) -> None:
        self.comic = comic
        self.buffer = io.BytesIO()
        self.archive = zipfile.ZipFile(self.buffer, "w", zipfile.ZIP_STORED)
        self.pages = 0

    def add(self, image: Image.Image) -> None:
        self.pages += 1
        self.archive.writestr(f"page-{self.pages:04d}.jpg", jpeg(image, quality=88))

    def finish(self) -> bytes:
        self.archive.writestr(
            "ComicInfo.xml", comic_info(self.comic, self.pages), zipfile.ZIP_DEFLATED
        )
        self.archive.close()
        return self.buffer.getvalue()


def comic_info(comic: ComicSpec, pages: int) -> str:
    fields = [
        ("Title", comic.title),
        ("Summary", comic.logline),
        ("Genre", comic.genre),
        ("PageCount", str(pages)),
        ("Manga", "YesAndRightToLeft" if comic.reading_direction == "rtl" else "No"),
    ]
    body = "".join(f"  <{tag}>{escape(value)}</{tag}>\n" for tag, value in fields if value)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<ComicInfo xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema">\n'
        f"{body}</ComicInfo>\n"
    )
