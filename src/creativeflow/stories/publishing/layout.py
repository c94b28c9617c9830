"""Where everything goes on a comic's pages: pure geometry, in points, origin at the top left.

A comic is laid out into `Page`s of drawing operations (frames, pictures, tails, lines of
text). The PDF painter and the raster painter (CBZ) draw the same operations, so the two
exports show the same pages. Pages come one at a time, so a long comic is never laid out, nor
its images loaded, all at once.

Panels fill rows in reading order (right to left for manga), a row holding panels until their
widths fill it, a page holding rows until their heights fill it; each layout size is a share
of the page's live area. A row's panels are stretched to its width and, when a page is at least
`_FILL_FROM` full, its rows to the page's height. A splash takes a page alone. Each chapter
opens on a page of its own (its cover, or its title).

Lettering sits inside its panel: captions as boxes, speech as rounded balloons with a tail,
thoughts as ovals with a trail of bubbles, sound effects as large outlined letters; from the
top, alternating sides, unless a position hint says `bottom`, `left`, `right` or `center`.
When the dialogue does not fit, its size shrinks down to a floor, then it is cut with an
ellipsis and the comic's `warnings` say where.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from creativeflow.documents.fonts import text_width

Colour = tuple[float, float, float]
Align = Literal["left", "center"]

BLACK: Colour = (0.0, 0.0, 0.0)
WHITE: Colour = (1.0, 1.0, 1.0)
GREY: Colour = (0.45, 0.45, 0.45)
PLACEHOLDER: Colour = (0.93, 0.93, 0.93)
CAPTION: Colour = (1.0, 0.97, 0.82)

# Width x height in points (1/72 in).
PAGE_SIZES: dict[str, tuple[float, float]] = {
    "us_comic": (477.0, 738.0),  # 6.625 x 10.25 in
    "manga": (362.8, 515.9),  # B6, 128 x 182 mm
    "a4": (595.3, 841.9),
    "letter": (612.0, 792.0),
    "webtoon": (600.0, 1800.0),  # an 800 px strip at 96 dpi, cut into tall pages
    "square": (576.0, 576.0),
}
# A layout size's share of the live area: (width, height).
_SHARES: dict[str | None, tuple[float, float]] = {
    "splash": (1.0, 1.0),
    "half": (1.0, 1 / 2),
    "full_width": (1.0, 1 / 3),
    "third": (1 / 3, 1 / 3),
    "quarter": (1 / 2, 1 / 2),
    "inset": (1 / 3, 1 / 4),
    None: (1 / 2, 1 / 3),
}
_FILL_FROM = 0.6
_EPSILON = 1e-6
_MIN_TEXT = 4.5  # points: lettering is never set smaller


# -- what is laid out ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Lettering:
    kind: str  # speech, thought, caption, sfx
    text: str
    hint: str | None = None


@dataclass(frozen=True)
class PanelSpec:
    label: str  # "Chapter 1 · Scene 2 · Panel 3"
    size: str | None = None
    image: str | None = None  # a storage key
    shot: str | None = None
    description: str | None = None
    lettering: tuple[Lettering, ...] = ()


@dataclass(frozen=True)
class ChapterSpec:
    number: int
    title: str
    cover: str | None = None
    panels: tuple[PanelSpec, ...] = ()


@dataclass(frozen=True)
class ComicSpec:
    title: str
    page_format: str = "us_comic"
    reading_direction: str = "ltr"
    logline: str | None = None
    genre: str | None = None
    chapters: tuple[ChapterSpec, ...] = ()


# -- what is drawn -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float

    def inset(self, by: float) -> Rect:
        return Rect(self.x + by, self.y + by, max(0.0, self.w - 2 * by), max(0.0, self.h - 2 * by))


@dataclass(frozen=True)
class Frame:
    """A rectangle (rounded when `radius`) or, with `oval`, the ellipse inside it."""

    rect: Rect
    fill: Colour | None = None
    stroke: Colour | None = BLACK
    line: float = 1.0
    radius: float = 0.0
    oval: bool = False


@dataclass(frozen=True)
class Tail:
    points: tuple[tuple[float, float], ...]
    fill: Colour = WHITE
    stroke: Colour = BLACK
    line: float = 0.8


@dataclass(frozen=True)
class Picture:
    """An image filling `rect`, cropped to its proportions."""

    rect: Rect
    key: str


@dataclass(frozen=True)
class TextLine:
    x: float  # the left end, or the centre when `align` is center
    baseline: float
    text: str
    size: float
    align: Align = "left"
    colour: Colour = BLACK
    outline: Colour | None = None  # drawn around the letters (sound effects, titles)


Operation = Frame | Tail | Picture | TextLine


@dataclass
class Page:
    number: int
    width: float
    height: float
    operations: list[Operation] = field(default_factory=list)

    @property
    def image_keys(self) -> list[str]:
        return list(dict.fromkeys(op.key for op in self.operations if isinstance(op, Picture)))


# -- text ----------------------------------------------------------------------------------------


def wrap(text: str, size: float, width: float) -> list[str]:
    """Greedy word wrap at `size` points within `width`; a word wider than the line is broken
    between characters (long URLs, unspaced scripts)."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if text_width(candidate, size) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = ""
            for char in word:
                if line and text_width(line + char, size) > width:
                    lines.append(line)
                    line = ""
                line += char
        lines.append(line)
    return lines


def _ellipsize(line: str, size: float, width: float) -> str:
    while line and text_width(line + "…", size) > width:
        line = line[:-1]
    return line.rstrip() + "…"


# -- pages ---------------------------------------------------------------------------------------


class ComicLayout:
    """`pages()` yields the comic's pages in order; `warnings` then says what did not fit."""

    def __init__(self, comic: ComicSpec) -> None:
        self.comic = comic
        self.width, self.height = PAGE_SIZES.get(comic.page_format, PAGE_SIZES["us_comic"])
        self.margin = max(18.0, self.width * 0.055)
        self.gutter = self.width * 0.018
        self.live = Rect(
            self.margin, self.margin, self.width - 2 * self.margin, self.height - 2 * self.margin
        )
        self.text_size = max(6.0, self.width / 477 * 8.0)
        self.rtl = comic.reading_direction == "rtl"
        self.vertical = comic.reading_direction == "vertical" or comic.page_format == "webtoon"
        self.warnings: list[str] = []
        self._count = 0

    def pages(self) -> Iterator[Page]:
        yield self._title_page()
        for chapter in self.comic.chapters:
            yield self._chapter_page(chapter)
            yield from self._panel_pages(chapter.panels)

    # -- pages of panels --

    def _share(self, panel: PanelSpec) -> tuple[float, float]:
        width, height = _SHARES.get(panel.size, _SHARES[None])
        return (1.0, height) if self.vertical else (width, height)

    def _panel_pages(self, panels: Sequence[PanelSpec]) -> Iterator[Page]:
        rows: list[list[PanelSpec]] = []
        row: list[PanelSpec] = []
        for panel in panels:
            width, _ = self._share(panel)
            if panel.size == "splash":
                if row:
                    rows.append(row)
                if rows:
                    yield self._page_of(rows)
                rows, row = [], []
                yield self._page_of([[panel]])
                continue
            if row and sum(self._share(p)[0] for p in row) + width > 1 + _EPSILON:
                rows.append(row)
                row = []
            fits = self._rows_height(rows) + self._share(panel)[1] <= 1 + _EPSILON
            if not row and rows and not fits:
                yield self._page_of(rows)
                rows = []
            row.append(panel)
        if row:
            rows.append(row)
        if rows:
            yield self._page_of(rows)

    def _rows_height(self, rows: list[list[PanelSpec]]) -> float:
        return sum(max(self._share(p)[1] for p in row) for row in rows)

    def _page_of(self, rows: list[list[PanelSpec]]) -> Page:
        page = self._new_page()
        shares = [max(self._share(p)[1] for p in row) for row in rows]
        room = self.live.h - self.gutter * (len(rows) - 1)
        total = sum(shares) * self.live.h
        scale = room / total if sum(shares) >= _FILL_FROM else min(1.0, room / total)
        y = self.live.y
        for row, share in zip(rows, shares, strict=True):
            height = share * self.live.h * scale
            widths = [self._share(p)[0] for p in row]
            span = self.live.w - self.gutter * (len(row) - 1)
            x = self.live.x
            placed = []
            for panel, width in zip(row, widths, strict=True):
                w = width / sum(widths) * span
                placed.append((panel, Rect(x, y, w, height)))
                x += w + self.gutter
            if self.rtl:  # the first panel on the right: mirror the row
                placed = [
                    (panel, Rect(2 * self.live.x + self.live.w - r.x - r.w, r.y, r.w, r.h))
                    for panel, r in placed
                ]
            for panel, rect in placed:
                self._panel(page, panel, rect)
            y += height + self.gutter
        return page

    def _new_page(self) -> Page:
        self._count += 1
        page = Page(self._count, self.width, self.height)
        page.operations.append(
            TextLine(
                self.width / 2,
                self.height - self.margin / 2.4,
                str(self._count),
                self.text_size * 0.85,
                "center",
                GREY,
            )
        )
        return page

    # -- title and chapter pages --

    def _title_page(self) -> Page:
        page = self._new_page()
        size = self.text_size * 3.2
        y = self.height * 0.36
        for line in wrap(self.comic.title, size, self.live.w):
            page.operations.append(TextLine(self.width / 2, y, line, size, "center", BLACK, BLACK))
            y += size * 1.25
        y += self.text_size
        for text in (self.comic.logline, self.comic.genre):
            if not text:
                continue
            for line in wrap(text, self.text_size * 1.3, self.live.w * 0.8)[:8]:
                page.operations.append(
                    TextLine(self.width / 2, y, line, self.text_size * 1.3, "center", GREY)
                )
                y += self.text_size * 1.3 * 1.3
            y += self.text_size
        return page

    def _chapter_page(self, chapter: ChapterSpec) -> Page:
        page = self._new_page()
        heading = f"Chapter {chapter.number}"
        size = self.text_size * 2.4
        if chapter.cover is not None:
            page.operations.append(Picture(self.live, chapter.cover))
            page.operations.append(Frame(self.live, line=1.2))
            band = Rect(self.live.x, self.live.y + self.live.h * 0.78, self.live.w, size * 3.4)
            page.operations.append(Frame(band, fill=WHITE, line=1.0))
            y = band.y + size * 1.3
        else:
            y = self.height * 0.42
        page.operations.append(TextLine(self.width / 2, y, heading, size * 0.6, "center", GREY))
        y += size * 1.2
        for line in wrap(chapter.title, size, self.live.w * 0.9)[:2]:
            page.operations.append(TextLine(self.width / 2, y, line, size, "center", BLACK, BLACK))
            y += size * 1.2
        return page

    # -- one panel --

    def _panel(self, page: Page, panel: PanelSpec, rect: Rect) -> None:
        ops = page.operations
        if panel.image is not None:
            ops.append(Picture(rect, panel.image))
            ops.append(Frame(rect, line=1.2))
        else:
            ops.append(Frame(rect, fill=PLACEHOLDER, line=1.2))
            self._placeholder_text(ops, panel, rect)
        self._letter(ops, panel, rect)

    def _placeholder_text(self, ops: list[Operation], panel: PanelSpec, rect: Rect) -> None:
        size = self.text_size * 0.8
        inner = rect.inset(size)
        heading = panel.label + (f" · {panel.shot.replace('_', ' ')}" if panel.shot else "")
        lines = wrap(heading, size, inner.w)[:2]
        if panel.description:
            lines += wrap(panel.description, size, inner.w)
        room = max(0, int((inner.h - size) // (size * 1.25)))
        if len(lines) > room:
            lines = lines[:room]
            if lines:
                lines[-1] = _ellipsize(lines[-1], size, inner.w)
        # At the bottom of the frame: the lettering, drawn over it, starts at the top.
        y = inner.y + inner.h - size * 1.25 * (len(lines) - 1)
        for line in lines:
            ops.append(TextLine(inner.x, y, line, size, "left", GREY))
            y += size * 1.25

    def _letter(self, ops: list[Operation], panel: PanelSpec, rect: Rect) -> None:
        if not panel.lettering:
            return
        size = self.text_size
        while True:
            placed, complete = self._place(panel.lettering, rect, size, cut=False)
            if complete:
                break
            if size * 0.88 < _MIN_TEXT:
                placed, _ = self._place(panel.lettering, rect, size, cut=True)
                shown = len(placed)
                self.warnings.append(
                    f"{panel.label}: the dialogue was cut to fit the panel "
                    f"({shown} of {len(panel.lettering)} bubbles shown)"
                )
                break
            size *= 0.88
        ops.extend(op for bubble_ops in placed for op in bubble_ops)

    def _place(
        self, lettering: Sequence[Lettering], rect: Rect, size: float, *, cut: bool
    ) -> tuple[list[list[Operation]], bool]:
        """Each placed bubble's operations at `size`, and whether all fit. With `cut`, the
        first that does not fit is shortened and the rest dropped."""
        inner = rect.inset(max(3.0, size * 0.6))
        top, bottom = inner.y, inner.y + inner.h
        placed: list[list[Operation]] = []
        side = "right" if self.rtl else "left"
        for bubble in lettering:
            hint = (bubble.hint or "").lower()
            from_bottom = "bottom" in hint
            align = next((s for s in ("left", "right", "center") if s in hint), side)
            item = _Bubble(bubble, size, inner.w)
            room = bottom - top - item.tail
            if item.height > room:
                if not cut:
                    return placed, False
                item.cut_to(room)
                if not item.lines:
                    break
            x = {
                "left": inner.x,
                "right": inner.x + inner.w - item.width,
                "center": inner.x + (inner.w - item.width) / 2,
            }[align]
            if from_bottom:
                y = bottom - item.height
                bottom = y - item.tail - size * 0.4
            else:
                y = top
                top = y + item.height + item.tail + size * 0.4
            placed.append(
                item.operations(x, y, pointing_up=from_bottom, centre=rect.x + rect.w / 2)
            )
            if item.was_cut:
                break
            if "left" not in hint and "right" not in hint and "center" not in hint:
                side = "right" if side == "left" else "left"
        return placed, len(placed) == len(lettering)


class _Bubble:
    """One bubble's box, lines and tail at a text size."""

    def __init__(self, bubble: Lettering, size: float, room: float) -> None:
        self.kind = bubble.kind
        self.size = size * 1.9 if self.kind == "sfx" else size
        self.leading = self.size * 1.2
        share = {"caption": 0.92, "sfx": 1.0}.get(self.kind, 0.64)
        self.pad_x = 0.0 if self.kind == "sfx" else size * (0.5 if self.kind == "caption" else 0.9)
        self.pad_y = 0.0 if self.kind == "sfx" else size * 0.5
        text_room = max(self.size, room * share - 2 * self.pad_x)
        self.lines = wrap(bubble.text, self.size, text_room)
        self.text_room = text_room
        self.tail = size * 1.1 if self.kind in ("speech", "thought") else 0.0
        self.was_cut = False

    @property
    def width(self) -> float:
        widest = max((text_width(line, self.size) for line in self.lines), default=0.0)
        return widest + 2 * self.pad_x

    @property
    def height(self) -> float:
        return len(self.lines) * self.leading + 2 * self.pad_y

    def cut_to(self, room: float) -> None:
        fit = max(0, int((room - 2 * self.pad_y) // self.leading))
        if fit < len(self.lines):
            self.lines = self.lines[:fit]
            if self.lines:
                self.lines[-1] = _ellipsize(self.lines[-1], self.size, self.text_room)
            self.was_cut = True

    def operations(
        self, x: float, y: float, *, pointing_up: bool, centre: float
    ) -> list[Operation]:
        box = Rect(x, y, self.width, self.height)
        ops: list[Operation] = []
        if self.kind == "caption":
            ops.append(Frame(box, fill=CAPTION, line=0.8))
        elif self.kind == "speech":
            ops.append(self._tail(box, pointing_up, centre))
            ops.append(Frame(box, fill=WHITE, line=0.8, radius=min(box.h / 2, self.size * 1.4)))
        elif self.kind == "thought":
            oval = Rect(box.x - self.size * 0.3, box.y, box.w + self.size * 0.6, box.h)
            ops.append(Frame(oval, fill=WHITE, line=0.8, oval=True))
            ops.extend(self._trail(box, pointing_up, centre))
        centred = self.kind in ("speech", "thought")
        baseline = y + self.pad_y + self.size * 0.95
        for line in self.lines:
            anchor = x + box.w / 2 if centred else x + self.pad_x
            ops.append(
                TextLine(
                    anchor,
                    baseline,
                    line,
                    self.size,
                    "center" if centred else "left",
                    BLACK,
                    WHITE if self.kind == "sfx" else None,
                )
            )
            baseline += self.leading
        return ops

    def _tail(self, box: Rect, pointing_up: bool, centre: float) -> Tail:
        towards = 1.0 if centre > box.x + box.w / 2 else -1.0
        root = box.x + box.w * (0.5 + 0.15 * towards)
        edge = box.y if pointing_up else box.y + box.h
        tip_y = edge - self.tail if pointing_up else edge + self.tail
        inward = self.size * 0.45 if pointing_up else -self.size * 0.45
        return Tail(
            (
                (root - self.size * 0.45, edge + inward),
                (root + self.size * 0.45, edge + inward),
                (root + towards * self.size * 0.9, tip_y),
            )
        )

    def _trail(self, box: Rect, pointing_up: bool, centre: float) -> list[Operation]:
        towards = 1.0 if centre > box.x + box.w / 2 else -1.0
        x = box.x + box.w * (0.5 + 0.2 * towards)
        sign = -1.0 if pointing_up else 1.0
        edge = box.y if pointing_up else box.y + box.h
        trail: list[Operation] = []
        for step, radius in ((0.35, self.size * 0.28), (0.85, self.size * 0.18)):
            cx = x + towards * self.size * step
            cy = edge + sign * self.tail * step
            trail.append(
                Frame(
                    Rect(cx - radius, cy - radius, 2 * radius, 2 * radius),
                    WHITE,
                    line=0.7,
                    oval=True,
                )
            )
        return trail
