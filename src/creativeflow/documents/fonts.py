"""The typeface every generated document uses: NanumGothic (SIL OFL 1.1, `fonts/OFL.txt`),
bundled so that Hangul, Latin (with its accents) and common punctuation render and are
embedded on any machine. ReportLab's built-in CID fonts would name a Korean font without
embedding it, and a reader without that font shows boxes.

ReportLab embeds a subset of the glyphs a document uses, so a PDF carries kilobytes of the
font, not its 4.7 MB. Pillow and ReportLab read the same file, so text measured for a PDF page
measures the same on a raster page.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

from PIL import ImageFont
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

FONT_NAME = "NanumGothic"
FONT_PATH = Path(__file__).with_name("fonts") / "NanumGothic.ttf"

_registration = threading.Lock()


def register_pdf_font() -> str:
    """Register the font with ReportLab (once per process; thread-safe) and return its name."""
    with _registration:
        if FONT_NAME not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(FONT_NAME, str(FONT_PATH)))
    return FONT_NAME


def text_width(text: str, size: float) -> float:
    """The width of `text` at `size` points, in points."""
    return float(pdfmetrics.stringWidth(text, register_pdf_font(), size))


@functools.lru_cache(maxsize=64)
def raster_font(size_px: int) -> ImageFont.FreeTypeFont:
    """The font at a pixel size, for Pillow (cached: loading parses the whole file)."""
    return ImageFont.truetype(str(FONT_PATH), max(1, size_px))
