"""Pure drawing for the offline image provider: seeded motifs (mountains, waves, skylines,
sun and moon...), gradient grounds, style treatments, fitted text and per-design layouts.

`render_scene(scene) -> bytes` is a pure function of a picklable `Scene`, so it can run in a
thread or a process pool and the same scene always gives the same bytes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageStat

from creativeflow.providers.image_filters import (
    BLACK,
    INK,
    RGB,
    WHITE,
    Pal,
    contrast,
    encode,
    finish_final,
    finish_scene,
    glow,
    gradient_mask,
    luminance,
    mix,
    styled_palette,
)

Point = tuple[float, float]
Box = tuple[float, float, float, float]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

STYLES = ("illustration", "modern", "watercolor", "noir", "neon", "pastel", "vintage", "comic")
DESIGN_TYPES = ("logo", "banner", "poster", "panel", "story", "social", "illustration")
# Drawing order, far to near.
MOTIFS = ("stars", "sun", "moon", "abstract", "mountains", "skyline", "trees", "waves")
SCENIC = frozenset(MOTIFS) - {"abstract"}

_FLAT = frozenset({"modern", "comic"})
_SHADOWED = frozenset({"illustration", "pastel", "vintage", "noir"})


# --- shapes --------------------------------------------------------------------------------


def ellipse_points(cx: float, cy: float, rx: float, ry: float, n: int = 48) -> list[Point]:
    step = 2 * math.pi / n
    return [(cx + rx * math.cos(i * step), cy + ry * math.sin(i * step)) for i in range(n)]


def polygon_points(cx: float, cy: float, r: float, sides: int, turn: float) -> list[Point]:
    step = 2 * math.pi / sides
    return [
        (cx + r * math.cos(turn + i * step), cy + r * math.sin(turn + i * step))
        for i in range(sides)
    ]


class Painter:
    """Draws one depth layer of shapes with the style's treatment: soft shadows, flat fills,
    ink outlines (comic), jittered translucent washes (watercolor) or glowing tubes (neon).
    Shapes are drawn on `flush`, shadows first, so a layer shades what is behind it."""

    def __init__(self, size: tuple[int, int], style: str, rng: random.Random) -> None:
        self.size, self.style, self.rng = size, style, rng
        self.unit = min(size)
        self.line = max(2, round(self.unit / 160))
        self.shapes: list[tuple[list[Point], RGB, int, bool]] = []

    def shape(
        self, points: list[Point], colour: RGB, alpha: int = 255, detail: bool = False
    ) -> None:
        """A filled polygon; `detail` marks small marks (stars, windows) drawn plainly."""
        self.shapes.append((points, colour, alpha, detail))

    def ellipse(
        self,
        cx: float,
        cy: float,
        rx: float,
        ry: float,
        colour: RGB,
        alpha: int = 255,
        detail: bool = False,
    ) -> None:
        self.shape(ellipse_points(cx, cy, rx, ry, 16 if detail else 48), colour, alpha, detail)

    def flush(self, canvas: Image.Image) -> Image.Image:
        style, main = self.style, [s for s in self.shapes if not s[3]]
        if style in _SHADOWED and main:
            shadow = Image.new("L", self.size, 0)
            shade = ImageDraw.Draw(shadow)
            dx, dy = self.unit * 0.012, self.unit * 0.018
            for points, _, alpha, _ in main:
                shade.polygon([(x + dx, y + dy) for x, y in points], fill=round(alpha * 0.3))
            shadow = shadow.filter(ImageFilter.GaussianBlur(self.unit * 0.015))
            canvas = Image.composite(Image.new("RGB", self.size, BLACK), canvas, shadow)
        draw = ImageDraw.Draw(canvas, "RGBA")
        tubes = Image.new("RGB", self.size, BLACK) if style == "neon" else None
        for points, colour, alpha, detail in self.shapes:
            if detail:
                draw.polygon(points, fill=(*colour, alpha))
            elif style == "neon" and tubes is not None:
                draw.polygon(points, fill=(*mix(colour, BLACK, 0.86), 255))
                ImageDraw.Draw(tubes).line(
                    [*points, points[0]], fill=colour, width=self.line, joint="curve"
                )
            elif style == "watercolor":
                jitter = self.unit * 0.008
                for _ in range(3):
                    wobbly = [
                        (x + self.rng.gauss(0, jitter), y + self.rng.gauss(0, jitter))
                        for x, y in points
                    ]
                    draw.polygon(wobbly, fill=(*colour, round(alpha * 0.42)))
            elif style == "comic":
                draw.polygon(points, fill=(*colour, 255), outline=(*INK, 255), width=self.line)
            else:
                draw.polygon(points, fill=(*colour, alpha if style != "modern" else 255))
        if tubes is not None:
            canvas = glow(canvas, tubes, self.line * 2.5)
        if style == "watercolor":
            canvas = canvas.filter(ImageFilter.GaussianBlur(self.unit / 450))
        self.shapes = []
        return canvas


# --- motifs --------------------------------------------------------------------------------

Drawer = Callable[[Painter, float, Pal, frozenset[str]], None]


def _accent(palette: Pal, index: int) -> RGB:
    accents = palette[2:] or palette
    return accents[index % len(accents)]


def _margin_base(painter: Painter, top: list[Point]) -> list[Point]:
    w, h = painter.size
    m = painter.unit * 0.05
    return [*top, (w + m, h + m), (-m, h + m)]


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[Point]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _stars(p: Painter, horizon: float, pal: Pal, motifs: frozenset[str]) -> None:
    w, h = p.size
    colour = mix(_accent(pal, -1), WHITE, 0.75)
    for _ in range(min(260, max(12, w * h // 6000))):
        x, y = p.rng.uniform(0, w), p.rng.uniform(0, horizon * 0.9)
        r = p.unit * p.rng.uniform(0.002, 0.006)
        if p.rng.random() < 0.12:  # a four-pointed sparkle
            reach = [4 * r if a % 2 == 0 else r for a in range(8)]
            sparkle = [
                (x + reach[a] * math.cos(a * math.pi / 4), y + reach[a] * math.sin(a * math.pi / 4))
                for a in range(8)
            ]
            p.shape(sparkle, colour, 235, detail=True)
        else:
            p.ellipse(x, y, r, r, colour, p.rng.randint(150, 255), detail=True)


def _sun(p: Painter, horizon: float, pal: Pal, motifs: frozenset[str]) -> None:
    w, h = p.size
    colour = max(pal[2:] or pal, key=lambda c: c[0] - c[2] + 200 * luminance(c))
    r = p.unit * p.rng.uniform(0.09, 0.14)
    cx, cy = w * p.rng.uniform(0.25, 0.75), min(horizon - r * 0.2, h * p.rng.uniform(0.25, 0.42))
    for scale, alpha in ((1.9, 45), (1.45, 80)):
        p.ellipse(cx, cy, r * scale, r * scale, mix(colour, WHITE, 0.3), alpha, detail=True)
    p.ellipse(cx, cy, r, r, colour)


def _moon(p: Painter, horizon: float, pal: Pal, motifs: frozenset[str]) -> None:
    w, h = p.size
    r = p.unit * p.rng.uniform(0.07, 0.11)
    cx, cy = (
        w * (p.rng.choice((0.2, 0.78)) + p.rng.uniform(-0.05, 0.05)),
        h * p.rng.uniform(0.16, 0.3),
    )
    sx, sy, sr = cx + r * 0.45, cy - r * 0.25, r * 0.88  # the shadow disc that cuts the crescent
    away = math.atan2(cy - sy, cx - sx)
    turns = [i * math.pi / 32 for i in range(65)]
    outer = [
        (cx + r * math.cos(away - math.pi + t), cy + r * math.sin(away - math.pi + t))
        for t in turns
    ]
    inner = [
        (sx + sr * math.cos(away + math.pi - t), sy + sr * math.sin(away + math.pi - t))
        for t in turns
    ]
    crescent = [pt for pt in outer if math.dist(pt, (sx, sy)) >= sr]
    crescent += [pt for pt in inner if math.dist(pt, (cx, cy)) <= r]
    p.shape(crescent, mix(max(pal, key=luminance), WHITE, 0.55))


def _blob(cx: float, cy: float, r: float, rng: random.Random) -> list[Point]:
    phases = [rng.uniform(0, math.tau) for _ in range(3)]
    points = []
    for a in (i * math.tau / 60 for i in range(60)):
        reach = r * (1 + 0.18 * sum(math.sin((k + 2) * a + ph) for k, ph in enumerate(phases)))
        points.append((cx + reach * math.cos(a), cy + reach * math.sin(a)))
    return points


def _abstract(p: Painter, horizon: float, pal: Pal, motifs: frozenset[str]) -> None:
    w, h = p.size
    sides = {"triangle": 3, "square": 4, "hexagon": 6}
    for index in range(p.rng.randint(4, 6) if p.style == "modern" else p.rng.randint(6, 10)):
        cx, cy, r = p.rng.uniform(0, w), p.rng.uniform(0, h), p.unit * p.rng.uniform(0.06, 0.26)
        kind = p.rng.choice(("circle", "circle", "triangle", "square", "hexagon", "blob"))
        if kind == "circle":
            points = ellipse_points(cx, cy, r, r)
        elif kind == "blob":
            points = _blob(cx, cy, r, p.rng)
        else:
            points = polygon_points(cx, cy, r, sides[kind], p.rng.uniform(0, math.tau))
        p.shape(points, _accent(pal, index), p.rng.randint(180, 240))


def _ridge(p: Painter, base: float, amplitude: float) -> list[Point]:
    """A mountain profile by midpoint displacement, peaks up to `amplitude` above `base`."""
    n = 64
    heights = [0.0] * (n + 1)
    heights[0], heights[n] = (p.rng.uniform(0.1, 0.6) * amplitude for _ in range(2))
    step, spread = n, amplitude * 0.7
    while step > 1:
        half = step // 2
        for i in range(half, n, step):
            middle = (heights[i - half] + heights[i + half]) / 2
            heights[i] = middle + p.rng.uniform(-spread, spread)
        step, spread = half, spread * 0.55
    w = p.size[0]
    return [
        (w * (i * 1.04 / n - 0.02), base - max(0.0, min(amplitude, v)))
        for i, v in enumerate(heights)
    ]


def _mountains(p: Painter, horizon: float, pal: Pal, motifs: frozenset[str]) -> None:
    h = p.size[1]
    ridges = p.rng.randint(2, 3)
    for j in range(ridges):
        fade = 0.55 * (ridges - 1 - j) / ridges  # far ridges melt into the sky
        colour = mix(mix(_accent(pal, j), BLACK, 0.15 * j), pal[1], fade)
        ridge = _ridge(p, horizon + j * h * 0.07, h * (0.24 - 0.05 * j))
        p.shape(_margin_base(p, ridge), colour)


def _ground(p: Painter, top: float, pal: Pal) -> None:
    w = p.size[0]
    p.shape(_margin_base(p, [(-w * 0.05, top), (w * 1.05, top)]), mix(pal[1], BLACK, 0.45))


def _skyline(p: Painter, horizon: float, pal: Pal, motifs: frozenset[str]) -> None:
    w, h = p.size
    ground = min(h * 0.93, horizon + h * 0.12)
    win = max(2.0, p.unit * 0.012)
    lit = mix(max(pal, key=lambda c: c[0] + c[1] - c[2]), WHITE, 0.5)
    for row in range(2):  # a hazy far row, then a near row with lit windows
        colour = mix(mix(_accent(pal, row + 1), BLACK, 0.35 + 0.2 * row), pal[1], 0.4 * (1 - row))
        x = -p.rng.uniform(0, w * 0.03)
        while x < w:
            bw, bh = (
                w * p.rng.uniform(0.045, 0.11),
                h * p.rng.uniform(0.12, 0.4) * (1.2 - 0.3 * row),
            )
            roof = ground - bh
            p.shape(_rect(x, roof, x + bw, ground), colour)
            if p.rng.random() < 0.2:
                p.shape(
                    _rect(x + bw * 0.45, roof - h * 0.04, x + bw * 0.5, roof), colour, detail=True
                )
            y = roof + win * 1.5
            while row == 1 and y < ground - win * 2:
                for column in range(int((bw - win) // (win * 2.2))):
                    if p.rng.random() < 0.35:
                        left = x + win + column * win * 2.2
                        p.shape(_rect(left, y, left + win, y + win * 1.3), lit, 230, detail=True)
                y += win * 2.6
            x += bw + p.rng.uniform(0, w * 0.015)
    _ground(p, ground, pal)


def _trees(p: Painter, horizon: float, pal: Pal, motifs: frozenset[str]) -> None:
    w, h = p.size
    ground = min(h * 0.9, horizon + h * 0.1)
    if "skyline" not in motifs:
        _ground(p, ground, pal)
    count = max(5, round(9 * w / h))
    for depth, x in sorted((p.rng.uniform(0, h * 0.07), p.rng.uniform(0, w)) for _ in range(count)):
        base, tall = ground + depth, h * p.rng.uniform(0.14, 0.3)
        colour = mix(_accent(pal, 1), BLACK, p.rng.uniform(0.25, 0.5))
        trunk = tall * 0.05
        p.shape(
            _rect(x - trunk, base - tall * 0.2, x + trunk, base), mix(colour, (60, 40, 20), 0.5)
        )
        for tier in range(3):
            bottom, top = base - tall * (0.15 + tier * 0.25), base - tall * (0.55 + tier * 0.22)
            half = tall * (0.3 - tier * 0.07)
            p.shape(
                [(x - half, bottom), (x, top), (x + half, bottom)], mix(colour, WHITE, 0.06 * tier)
            )


def _waves(p: Painter, horizon: float, pal: Pal, motifs: frozenset[str]) -> None:
    w, h = p.size
    behind = motifs & {"mountains", "skyline", "trees"}
    top = min(h * 0.9, horizon + h * 0.12 if behind else max(horizon, h * 0.6))
    cool = sorted(pal[2:] or pal, key=lambda c: c[0] - c[2])
    for band in range(4):
        y0 = top + (h - top) * band / 4
        amp = p.unit * p.rng.uniform(0.01, 0.025) * (1 + band * 0.4)
        freq, phase = p.rng.uniform(1.5, 3.5) * math.tau / w, p.rng.uniform(0, math.tau)
        xs = (w * (i * 1.1 / 63 - 0.05) for i in range(64))
        crest = [(x, y0 + amp * math.sin(freq * x + phase)) for x in xs]
        p.shape(_margin_base(p, crest), mix(cool[band % len(cool)], BLACK, 0.12 * band), 235)


DRAWERS: dict[str, Drawer] = {
    "stars": _stars,
    "sun": _sun,
    "moon": _moon,
    "abstract": _abstract,
    "mountains": _mountains,
    "skyline": _skyline,
    "trees": _trees,
    "waves": _waves,
}


# --- composition ---------------------------------------------------------------------------


def background(
    size: tuple[int, int], pal: Pal, style: str, rng: random.Random, radial: bool
) -> Image.Image:
    """Flat styles: the first colour with a block of the second; others: a gradient of both."""
    w, h = size
    if style in _FLAT:
        canvas = Image.new("RGB", size, pal[0])
        draw = ImageDraw.Draw(canvas)
        if rng.random() < 0.5:
            draw.rectangle((0, round(h * rng.uniform(0.6, 0.72)), w, h), fill=pal[1])
        else:
            cut = rng.uniform(0.25, 0.45)
            draw.polygon([(w * cut, h), (w, h * (1 - cut)), (w, h)], fill=pal[1])
        return canvas
    angle = math.pi / 2 + rng.uniform(-0.4, 0.4)  # mostly top to bottom, like a sky
    mask = gradient_mask(size, radial, angle)
    return Image.composite(Image.new("RGB", size, pal[1]), Image.new("RGB", size, pal[0]), mask)


def compose(
    size: tuple[int, int],
    pal: Pal,
    style: str,
    motifs: Sequence[str],
    rng: random.Random,
    radial: bool = False,
) -> Image.Image:
    """Background plus every motif, far to near, each one its own shaded layer."""
    canvas = background(size, pal, style, rng, radial)
    chosen = frozenset(motifs)
    horizon = size[1] * rng.uniform(0.58, 0.7)
    for motif in MOTIFS:
        if motif in chosen:
            painter = Painter(size, style, rng)
            DRAWERS[motif](painter, horizon, pal, chosen)
            canvas = painter.flush(canvas)
    return canvas


# --- text ----------------------------------------------------------------------------------

_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "/Library/Fonts", "C:/Windows/Fonts")
_FONT_FILES = {
    True: ("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf", "Arial Bold.ttf", "arialbd.ttf"),
    False: ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "Arial.ttf", "arial.ttf"),
}


@lru_cache(maxsize=2)
def font_path(bold: bool) -> str | None:
    """A scalable system font (DejaVu Sans where installed), or None for Pillow's own."""
    for name in _FONT_FILES[bold]:
        for folder in _FONT_DIRS:
            root = Path(folder)
            if root.is_dir():
                found = next(iter(sorted(root.rglob(name))), None)
                if found is not None:
                    return str(found)
    return None


@lru_cache(maxsize=256)
def load_font(size: int, bold: bool = True) -> Font:
    path = font_path(bold)
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size=size)


def _block_size(lines: Sequence[str], font: Font, size: int) -> tuple[float, float]:
    widths = [font.getbbox(line)[2] - font.getbbox(line)[0] for line in lines]
    return max(widths), size * 1.2 * len(lines)


def fit_text(text: str, max_w: float, max_h: float, bold: bool = True) -> tuple[int, list[str]]:
    """The largest font size (and line split: one line, or two balanced ones) that fits."""
    words = text.split()
    options = [[text]]
    if len(words) > 1:
        cut = min(range(1, len(words)), key=lambda k: abs(len(" ".join(words[:k])) - len(text) / 2))
        options.append([" ".join(words[:cut]), " ".join(words[cut:])])
    best: tuple[int, list[str]] | None = None
    for lines in options:
        low, high = 6, max(6, int(max_h))
        while low < high:
            mid = (low + high + 1) // 2
            width, height = _block_size(lines, load_font(mid, bold), mid)
            if width <= max_w and height <= max_h:
                low = mid
            else:
                high = mid - 1
        if best is None or low > best[0] * 1.25:  # two lines only when clearly larger
            best = (low, lines)
    assert best is not None
    return best


def text_colours(behind: RGB, pal: Sequence[RGB], style: str) -> tuple[RGB, RGB]:
    """A fill that reads on `behind` (a palette colour at WCAG 4.5:1 if one does, else white
    or ink) and the opposite for its outline."""
    candidates = [] if style == "noir" else list(pal)
    best = max(candidates, key=lambda c: contrast(c, behind), default=WHITE)
    if contrast(best, behind) < 4.5:
        best = max((WHITE, INK), key=lambda c: contrast(c, behind))
    outline = INK if contrast(best, WHITE) < contrast(best, INK) else WHITE
    return best, outline


def draw_text(
    canvas: Image.Image,
    text: str,
    box: Box,
    pal: Sequence[RGB],
    style: str,
    bold: bool = True,
    scrim: bool = False,
    colours: tuple[RGB, RGB] | None = None,
) -> Image.Image:
    """`text` as large as fits in `box`, centred, in a colour that contrasts with what is
    behind it; `scrim` lays a translucent panel behind it when the picture there is busy."""
    x0, y0, x1, y1 = box
    size, lines = fit_text(text, x1 - x0, y1 - y0, bold)
    font = load_font(size, bold)
    stroke = 0 if style == "modern" else max(1, round(size * (0.07 if style == "comic" else 0.035)))
    cx, line_h = (x0 + x1) / 2, size * 1.2
    top = (y0 + y1) / 2 - line_h * len(lines) / 2
    spots = [(cx, top + line_h * (i + 0.5)) for i in range(len(lines))]
    measure = ImageDraw.Draw(canvas)
    boxes = [
        measure.textbbox(at, line, font=font, anchor="mm", stroke_width=stroke)
        for at, line in zip(spots, lines, strict=True)
    ]
    lefts, tops, rights, bottoms = zip(*boxes, strict=True)
    bounds = (min(lefts), min(tops), max(rights), max(bottoms))
    region = canvas.crop(tuple(round(v) for v in bounds))
    red, green, blue = (round(v) for v in ImageStat.Stat(region).mean[:3])
    behind = (red, green, blue)
    fill, outline = colours or text_colours(behind, pal, style)
    if scrim and ImageStat.Stat(region.convert("L")).stddev[0] > 28:
        pad = size * 0.35
        panel = mix(behind, outline, 0.6)
        ImageDraw.Draw(canvas, "RGBA").rounded_rectangle(
            (bounds[0] - pad, bounds[1] - pad, bounds[2] + pad, bounds[3] + pad),
            radius=pad,
            fill=(*panel, 170),
        )
    if style == "neon":
        tubes = Image.new("RGB", canvas.size, BLACK)
        for at, line in zip(spots, lines, strict=True):
            ImageDraw.Draw(tubes).text(at, line, font=font, fill=fill, anchor="mm")
        return glow(canvas, tubes, max(2.0, size / 10))
    draw = ImageDraw.Draw(canvas)
    for at, line in zip(spots, lines, strict=True):
        draw.text(
            at, line, font=font, fill=fill, anchor="mm", stroke_width=stroke, stroke_fill=outline
        )
    return canvas


# --- layout --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scene:
    """Everything that decides one image; `render_scene` is a pure function of it."""

    width: int
    height: int
    seed: int
    palette: Pal  # at least three: two background tones, then accents
    style: str
    design_type: str
    motifs: tuple[str, ...]
    text: str | None = None
    subline: str | None = None
    format: str = "png"


# Headline and sub-line boxes as fractions of the frame, per design type.
_TEXT_BOXES = {
    "banner": ((0.1, 0.26, 0.9, 0.56), (0.18, 0.6, 0.82, 0.7)),
    "poster": ((0.08, 0.68, 0.92, 0.85), (0.14, 0.86, 0.86, 0.93)),
    "story": ((0.08, 0.1, 0.92, 0.24), (0.14, 0.25, 0.86, 0.31)),
    "social": ((0.1, 0.36, 0.9, 0.56), (0.18, 0.58, 0.82, 0.66)),
    "illustration": ((0.08, 0.76, 0.92, 0.9), (0.14, 0.9, 0.86, 0.96)),
}


def _scaled(box: Box, w: int, h: int) -> Box:
    return (box[0] * w, box[1] * h, box[2] * w, box[3] * h)


def _initials(text: str) -> str:
    words = [word for word in text.split() if word[:1].isalnum()]
    return "".join(word[0] for word in words[:2]).upper() or text[:1].upper()


def _wording(
    canvas: Image.Image, scene: Scene, pal: Pal, boxes: Sequence[Box], scrim: bool
) -> Image.Image:
    """The headline in the first box and the sub-line (smaller, regular weight) in the second."""
    if scene.text:
        canvas = draw_text(canvas, scene.text, boxes[0], pal, scene.style, scrim=scrim)
        if scene.subline:
            canvas = draw_text(canvas, scene.subline, boxes[1], pal, scene.style, False, scrim)
    return canvas


def _logo(scene: Scene, pal: Pal, rng: random.Random) -> Image.Image:
    """A centred emblem (a ring around a small scene, or a seeded mark with the initials)
    above the wordmark."""
    w, h, style = scene.width, scene.height, scene.style
    ground = (pal[0], mix(pal[0], pal[1], 0.35), *pal[2:])
    if style in _FLAT:
        canvas = Image.new("RGB", (w, h), pal[0])
    else:
        canvas = background((w, h), ground, style, rng, radial=True)
    r = min(w, h) * (0.24 if scene.text else 0.34)
    cx, cy = w / 2, h * (0.38 if scene.text else 0.5)
    painter = Painter((w, h), style, rng)
    painter.ellipse(cx, cy, r, r, _accent(pal, 0))
    painter.ellipse(cx, cy, r * 0.86, r * 0.86, pal[1])
    canvas = painter.flush(canvas)
    scenic = [m for m in scene.motifs if m in SCENIC]
    if scenic:
        side = max(2, round(r * 1.72))
        tones = (pal[1], mix(pal[1], pal[0], 0.4), *pal[2:])
        inner = compose((side, side), tones, style, scenic, rng)
        mask = Image.new("L", (side, side), 0)
        ImageDraw.Draw(mask).ellipse((0, 0, side - 1, side - 1), fill=255)
        canvas.paste(inner, (round(cx - side / 2), round(cy - side / 2)), mask)
    else:
        turn = rng.uniform(0, math.tau)
        painter.shape(polygon_points(cx, cy, r * 0.66, rng.randint(3, 6), turn), _accent(pal, 1))
        painter.ellipse(cx, cy, r * 0.3, r * 0.3, _accent(pal, 2), 220)
        canvas = painter.flush(canvas)
    canvas = finish_scene(canvas, style, rng.getrandbits(32))
    if scene.text and not scenic:
        mark = (cx - r * 0.5, cy - r * 0.4, cx + r * 0.5, cy + r * 0.4)
        canvas = draw_text(canvas, _initials(scene.text), mark, pal, style)
    top = cy + r * 1.15
    boxes = [
        (w * 0.08, top, w * 0.92, top + h * 0.16),
        (w * 0.18, top + h * 0.17, w * 0.82, top + h * 0.23),
    ]
    return _wording(canvas, scene, pal, boxes, scrim=False)


def _panel(canvas: Image.Image, scene: Scene, pal: Pal) -> Image.Image:
    """A comic frame: white gutter, ink border and, with text, a caption box."""
    w, h = canvas.size
    unit = min(w, h)
    gutter, line = max(2, round(unit * 0.025)), max(2, round(unit * 0.012))
    draw = ImageDraw.Draw(canvas)
    if scene.text:
        box = (gutter + line, gutter + line, round(w * 0.62), round(gutter + line + h * 0.14))
        draw.rectangle(box, fill=(255, 244, 194), outline=INK, width=line)
        dx, dy = unit * 0.03, unit * 0.02
        inner = (box[0] + dx, box[1] + dy, box[2] - dx, box[3] - dy)
        canvas = draw_text(canvas, scene.text, inner, pal, "modern", colours=(INK, WHITE))
        draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, w - 1, h - 1), outline=WHITE, width=gutter)
    draw.rectangle((gutter, gutter, w - 1 - gutter, h - 1 - gutter), outline=INK, width=line)
    return canvas


def render_scene(scene: Scene) -> bytes:
    """The encoded image for `scene` (CPU work: run it in an executor)."""
    rng = random.Random(scene.seed)  # noqa: S311 - creative choices, not security
    pal, size, style = (
        styled_palette(scene.palette, scene.style),
        (scene.width, scene.height),
        scene.style,
    )
    if scene.design_type == "logo":
        canvas = _logo(scene, pal, rng)
    else:
        radial = scene.design_type in ("social", "story")
        canvas = compose(size, pal, style, scene.motifs, rng, radial)
        canvas = finish_scene(canvas, style, rng.getrandbits(32))
        if scene.design_type == "panel":
            canvas = _panel(canvas, scene, pal)
        else:
            boxes = [_scaled(box, *size) for box in _TEXT_BOXES[scene.design_type]]
            canvas = _wording(canvas, scene, pal, boxes, scrim=True)
    return encode(finish_final(canvas, style, rng.getrandbits(32)), scene.format)
