"""Laid-out pages drawn into a PDF with ReportLab, the bundled font embedded (subset).

Pictures go in as JPEG at `dpi` for the space they fill (ReportLab embeds JPEG data as it is),
so the file grows with what is shown, not with the size of the originals.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas

from creativeflow.documents.fonts import register_pdf_font, text_width
from creativeflow.stories.publishing.layout import Frame, Page, Picture, Rect, Tail, TextLine
from creativeflow.stories.publishing.pictures import MISSING, fit_picture, jpeg


class PdfPainter:
    def __init__(self, *, title: str, subject: str | None = None, dpi: int = 150) -> None:
        self.buffer = io.BytesIO()
        # The bundled font from the start: no page refers to an unembedded standard font.
        self.canvas = Canvas(
            self.buffer, pageCompression=1, initialFontName=register_pdf_font(), initialFontSize=10
        )
        self.canvas.setTitle(title)
        if subject:
            self.canvas.setSubject(subject)
        self.canvas.setCreator("CreativeFlow")
        self.font = register_pdf_font()
        self.dpi = dpi
        self.height = 0.0

    def paint(self, page: Page, images: Mapping[str, bytes | None]) -> None:
        canvas = self.canvas
        canvas.setPageSize((page.width, page.height))
        self.height = page.height
        for op in page.operations:
            if isinstance(op, Frame):
                self._frame(op)
            elif isinstance(op, Tail):
                self._tail(op)
            elif isinstance(op, Picture):
                self._picture(op, images.get(op.key))
            else:
                self._text(op)
        canvas.showPage()

    def finish(self) -> bytes:
        self.canvas.save()
        return self.buffer.getvalue()

    # -- operations (ReportLab's origin is the bottom left) --

    def _box(self, rect: Rect) -> tuple[float, float, float, float]:
        return rect.x, self.height - rect.y - rect.h, rect.w, rect.h

    def _frame(self, op: Frame) -> None:
        canvas = self.canvas
        if op.fill is not None:
            canvas.setFillColorRGB(*op.fill)
        if op.stroke is not None:
            canvas.setStrokeColorRGB(*op.stroke)
            canvas.setLineWidth(op.line)
        x, y, w, h = self._box(op.rect)
        stroke, fill = int(op.stroke is not None), int(op.fill is not None)
        if op.oval:
            canvas.ellipse(x, y, x + w, y + h, stroke=stroke, fill=fill)
        elif op.radius:
            canvas.roundRect(x, y, w, h, op.radius, stroke=stroke, fill=fill)
        else:
            canvas.rect(x, y, w, h, stroke=stroke, fill=fill)

    def _tail(self, op: Tail) -> None:
        canvas = self.canvas
        canvas.setFillColorRGB(*op.fill)
        canvas.setStrokeColorRGB(*op.stroke)
        canvas.setLineWidth(op.line)
        path = canvas.beginPath()
        (x, y), *rest = op.points
        path.moveTo(x, self.height - y)
        for x, y in rest:
            path.lineTo(x, self.height - y)
        path.close()
        canvas.drawPath(path, stroke=1, fill=1)

    def _picture(self, op: Picture, data: bytes | None) -> None:
        x, y, w, h = self._box(op.rect)
        scale = self.dpi / 72
        picture = fit_picture(data, round(w * scale), round(h * scale)) if data else None
        if picture is None:  # gone from storage, or unreadable: an empty frame, not a failure
            self._frame(Frame(op.rect, fill=MISSING, stroke=None))
            return
        self.canvas.drawImage(ImageReader(io.BytesIO(jpeg(picture))), x, y, w, h)

    def _text(self, op: TextLine) -> None:
        canvas = self.canvas
        x = op.x - text_width(op.text, op.size) / 2 if op.align == "center" else op.x
        y = self.height - op.baseline
        if op.outline is not None:  # the outline first, the letters filled over it
            canvas.setStrokeColorRGB(*op.outline)
            canvas.setLineWidth(op.size * 0.14)
            canvas.setLineJoin(1)
            self._run(x, y, op, render_mode=1)
        canvas.setFillColorRGB(*op.colour)
        self._run(x, y, op, render_mode=0)

    def _run(self, x: float, y: float, op: TextLine, *, render_mode: int) -> None:
        text = self.canvas.beginText()
        text.setTextRenderMode(render_mode)
        text.setFont(self.font, op.size)
        text.setTextOrigin(x, y)
        text.textOut(op.text)
        self.canvas.drawText(text)
