"""Colour maths, named palettes, whole-image filters and the image-to-image operations
(variation, style transfer) of the offline image provider; `rendering` draws with them.

All functions are pure: plain values in, a new image or value out. Randomness comes only from
seeds passed in (Pillow's own noise cannot be seeded), so the same call gives the same pixels.
"""

from __future__ import annotations

import colorsys
import io
import math
import random
import string
from collections.abc import Sequence

from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter, ImageOps

RGB = tuple[int, int, int]
Pal = tuple[RGB, ...]

WHITE: RGB = (255, 255, 255)
BLACK: RGB = (0, 0, 0)
INK: RGB = (17, 17, 17)
SEPIA: Pal = ((38, 24, 12), (112, 66, 20), (232, 212, 172))


# --- colours -------------------------------------------------------------------------------


def mix(a: RGB, b: RGB, t: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def luminance(colour: RGB) -> float:
    """WCAG relative luminance, 0 (black) to 1 (white)."""
    channels = []
    for value in colour:
        c = value / 255
        channels.append(c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
    return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]


def contrast(a: RGB, b: RGB) -> float:
    """WCAG contrast ratio, 1 to 21."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def distance(a: RGB, b: RGB) -> float:
    """Perceptually weighted RGB distance ("redmean"), 0 to about 765."""
    mean_red = (a[0] + b[0]) / 2
    dr, dg, db = a[0] - b[0], a[1] - b[1], a[2] - b[2]
    return math.sqrt(
        (2 + mean_red / 256) * dr * dr + 4 * dg * dg + (2 + (255 - mean_red) / 256) * db * db
    )


def from_hsv(hue: float, saturation: float, value: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, min(1.0, saturation), min(1.0, value))
    return (round(r * 255), round(g * 255), round(b * 255))


def to_hsv(colour: RGB) -> tuple[float, float, float]:
    return colorsys.rgb_to_hsv(colour[0] / 255, colour[1] / 255, colour[2] / 255)


def parse_hex(value: str) -> RGB:
    """`#1a2b3c` or `#abc` as an RGB triple; ValueError for anything else."""
    text = value.strip().removeprefix("#")
    if len(text) == 3:
        text = "".join(char * 2 for char in text)
    if len(text) != 6 or any(char not in string.hexdigits for char in text):
        raise ValueError(f"not a hex colour: {value!r}")
    return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))


def to_hex(colour: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def complete_palette(colours: Sequence[RGB], size: int = 5) -> Pal:
    """At least `size` colours: the given ones first, then shades and a complement of them."""
    out = list(dict.fromkeys(colours))
    base = out[0]
    hue, sat, val = to_hsv(base)
    candidates = [
        from_hsv(hue + 0.5, max(sat, 0.45), max(val, 0.7)),
        mix(base, WHITE, 0.6),
        mix(base, BLACK, 0.5),
        from_hsv(hue + 0.08, max(sat, 0.4), min(1.0, val + 0.2)),
        mix(out[-1], WHITE, 0.35),
        from_hsv(hue - 0.08, max(sat, 0.4), max(val - 0.2, 0.3)),
    ]
    for colour in candidates:
        if len(out) >= size:
            break
        if all(distance(colour, kept) > 60 for kept in out):
            out.append(colour)
    while len(out) < size:
        out.append(mix(out[len(out) % len(colours)], WHITE, 0.2 * len(out) / size))
    return tuple(out)


def seeded_palette(rng: random.Random) -> Pal:
    """Five harmonious colours: two background tones and three accents on one colour scheme."""
    hue = rng.random()
    offsets = rng.choice(
        (
            (0.0, 0.06, -0.06, 0.12, -0.1),  # analogous
            (0.0, 0.04, 0.5, 0.46, 0.54),  # complementary
            (0.0, 0.33, 0.67, 0.05, 0.38),  # triadic
            (0.0, 0.42, 0.58, 0.03, 0.5),  # split complementary
        )
    )
    dark = rng.random() < 0.4
    colours = []
    for index, offset in enumerate(offsets):
        if index < 2:
            sat = rng.uniform(0.35, 0.7) if dark else rng.uniform(0.15, 0.45)
            val = rng.uniform(0.16, 0.34) if dark else rng.uniform(0.84, 0.97)
        else:
            sat, val = rng.uniform(0.5, 0.9), rng.uniform(0.6, 0.95)
        colours.append(from_hsv(hue + offset, sat, val))
    return tuple(colours)


def styled_palette(palette: Sequence[RGB], style: str) -> Pal:
    """The palette as the style paints it (pastel is lighter, neon glows on a dark ground)."""
    if style == "pastel":
        return tuple(mix(colour, WHITE, 0.45) for colour in palette)
    if style == "neon":
        ground = [mix(colour, BLACK, 0.82 - 0.12 * i) for i, colour in enumerate(palette[:2])]
        lights = []
        for colour in palette[2:]:
            hue, sat, _ = to_hsv(colour)
            lights.append(from_hsv(hue, max(sat, 0.75), 1.0))
        return (*ground, *lights)
    if style == "vintage":
        out = []
        for colour in palette:
            hue, sat, val = to_hsv(colour)
            out.append(mix(from_hsv(hue, sat * 0.55, val), SEPIA[1], 0.15))
        return tuple(out)
    return tuple(palette)


# Colour and mood words -> hex colours, most characteristic first.
COLOUR_WORDS = {
    "red": "#d62828 #9d0208 #f28482",
    "crimson": "#9b111e #dc143c #f4a3a8",
    "orange": "#f77f00 #fcbf49 #9c4a00",
    "coral": "#ff6f61 #ffb4a2 #b23a48",
    "yellow": "#ffd60a #ffe66d #b08900",
    "gold": "#d4a017 #f5d061 #8a6a00",
    "green": "#2a9d55 #80ed99 #1b4332",
    "lime": "#a3e635 #d9f99d #4d7c0f",
    "mint": "#98f5e1 #cffaf0 #3aa890",
    "teal": "#0f766e #2dd4bf #134e4a",
    "turquoise": "#30d5c8 #a0f0ea #11766f",
    "cyan": "#00b4d8 #90e0ef #03045e",
    "blue": "#1d4ed8 #60a5fa #1e1b4b",
    "navy": "#14213d #2b3a67 #8d99ae",
    "purple": "#7b2cbf #c77dff #3c096c",
    "violet": "#8f00ff #c8a2ff #4b0082",
    "lavender": "#b497d6 #e6dcf5 #6a4c93",
    "magenta": "#d100d1 #ff70ff #6a006a",
    "pink": "#ff5d8f #ffc2d4 #a4133c",
    "brown": "#7f5539 #b08968 #3e2723",
    "beige": "#e9dcc9 #f5efe6 #a68a64",
    "black": "#111111 #3a3a3a #6b6b6b",
    "white": "#f8f9fa #dee2e6 #adb5bd",
    "gray": "#6c757d #ced4da #343a40",
    "grey": "#6c757d #ced4da #343a40",
    "silver": "#c0c0c0 #e8e8e8 #7d7d7d",
    "sunset": "#ff7e5f #feb47b #6a3093 #ffd56b #c0392b",
    "sunrise": "#ffb88c #ffd6a5 #de6262 #fff3b0 #7a5195",
    "ocean": "#03045e #0077b6 #00b4d8 #90e0ef #caf0f8",
    "forest": "#1b4332 #2d6a4f #52b788 #95d5b2 #d8f3dc",
    "neon": "#0d0221 #ff00c8 #00f0ff #faff00 #7a04eb",
    "autumn": "#6f1d1b #bb9457 #e76f51 #f4a261 #432818",
    "winter": "#e0fbfc #98c1d9 #3d5a80 #293241 #ffffff",
    "spring": "#f7d1cd #d1e3dd #a7c957 #f2e8cf #6a994e",
    "desert": "#e9c46a #f4a261 #e76f51 #fefae0 #8d5524",
    "fire": "#370617 #d00000 #f48c06 #ffba08 #6a040f",
    "ice": "#e0f7ff #a8dadc #457b9d #1d3557 #f1faee",
    "earth": "#582f0e #7f4f24 #936639 #a4ac86 #414833",
    "midnight": "#03071e #14213d #3a0ca3 #4361ee #e0e1dd",
    "coffee": "#3e2723 #6f4e37 #c8a27a #f3e5d8 #a0522d",
    "tropical": "#06d6a0 #ffd166 #ef476f #118ab2 #f8ffe5",
    "royal": "#240046 #5a189a #ffd700 #9d4edd #f8f0e3",
    "candy": "#ff99c8 #fcf6bd #d0f4de #a9def9 #e4c1f9",
}
STYLE_PALETTES = {
    "noir": "#0b0b0b #3a3a3a #8a8a8a #d9d9d9 #f5f5f5",
    "neon": "#0d0221 #7a04eb #ff00c8 #00f0ff #faff00",
    "pastel": "#ffd6e0 #c1e1ff #d4f0c0 #fff1b8 #e4d4ff",
    "vintage": "#2b1d0e #7a4e2d #b08d57 #e3c9a0 #f4ead5",
    "comic": "#111111 #e63946 #f1c40f #1d70b8 #f8f4e3",
    "watercolor": "#2f4858 #33658a #86bbd8 #f6ae2d #f5f1e6",
    "modern": "#1f2937 #3b82f6 #10b981 #f3f4f6 #f59e0b",
}


# --- filters -------------------------------------------------------------------------------


def rng(seed: int) -> random.Random:
    """The seeded generator every drawing choice comes from."""
    return random.Random(seed)  # noqa: S311 - creative choices, not security


def noise_image(size: tuple[int, int], seed: int) -> Image.Image:
    """Uniform seeded noise (Pillow's own noise is not seedable)."""
    return Image.frombytes("L", size, rng(seed).randbytes(size[0] * size[1]))


def add_grain(image: Image.Image, seed: int, amount: int) -> Image.Image:
    """Film grain of +-`amount` levels."""
    lut = [max(0, min(255, 128 + round((v - 127.5) * amount / 127.5))) for v in range(256)]
    grain = noise_image(image.size, seed).point(lut)
    return ImageChops.add(image, Image.merge("RGB", (grain, grain, grain)), 1.0, -128)


def paper_texture(image: Image.Image, seed: int, amount: float) -> Image.Image:
    """Multiplies in a soft, blotchy paper grain; `amount` 0..1 is the darkest grain's loss."""
    w, h = image.size
    small = noise_image((max(1, w // 3), max(1, h // 3)), seed)
    texture = small.resize(image.size, Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(1))
    texture = texture.point([255 - round(amount * v) for v in range(256)])
    return ImageChops.multiply(image, Image.merge("RGB", (texture, texture, texture)))


def vignette(image: Image.Image, strength: float) -> Image.Image:
    """Darkens the corners: `strength` 0..1 is the darkening at the far corners."""
    mask = Image.radial_gradient("L").resize(image.size, Image.Resampling.BICUBIC)
    mask = mask.point([round(255 * strength * (v / 255) ** 2.2) for v in range(256)])
    return Image.composite(Image.new("RGB", image.size, BLACK), image, mask)


def sepia(image: Image.Image, amount: float) -> Image.Image:
    return Image.blend(image, gradient_map(image, SEPIA), amount)


def gradient_map(image: Image.Image, palette: Sequence[RGB]) -> Image.Image:
    """Maps luminance onto the palette ordered dark to light, so shapes keep their tones."""
    ordered = sorted(palette, key=luminance)
    if len(ordered) == 1:
        ordered = [ordered[0], ordered[0]]
    luts: list[list[int]] = [[], [], []]
    for value in range(256):
        position = value / 255 * (len(ordered) - 1)
        index = min(int(position), len(ordered) - 2)
        colour = mix(ordered[index], ordered[index + 1], position - index)
        for channel in range(3):
            luts[channel].append(colour[channel])
    gray = image.convert("L")
    return Image.merge("RGB", [gray.point(lut) for lut in luts])


def quantize_to(image: Image.Image, palette: Sequence[RGB]) -> Image.Image:
    """Every pixel replaced by its nearest palette colour (flat, print-like colour)."""
    flat = [channel for colour in palette for channel in colour]
    flat += list(palette[0]) * (256 - len(palette))
    holder = Image.new("P", (1, 1))
    holder.putpalette(flat)
    return image.convert("RGB").quantize(palette=holder, dither=Image.Dither.NONE).convert("RGB")


def ink_lines(image: Image.Image, source: Image.Image, width: int) -> Image.Image:
    """Ink contour lines on `image` where `source` (same size) has edges, as comics ink them."""
    gray = source.convert("L").filter(ImageFilter.GaussianBlur(1))
    mask = gray.filter(ImageFilter.FIND_EDGES).point([255 if v > 22 else 0 for v in range(256)])
    if width > 1:  # thicken by blur and threshold: a rank filter is far slower on big images
        mask = mask.filter(ImageFilter.BoxBlur(width / 2)).point(
            [255 if v > 40 else 0 for v in range(256)]
        )
    return Image.composite(Image.new("RGB", image.size, INK), image, mask)


def halftone(image: Image.Image, spacing: int, alpha: int) -> Image.Image:
    """Printed halftone: ink dots on a grid, larger where the image is darker."""
    w, h = image.size
    cols, rows = math.ceil(w / spacing), math.ceil(h / spacing)
    tones = image.convert("L").resize((cols, rows), Image.Resampling.BOX).tobytes()
    out = image.copy()
    draw = ImageDraw.Draw(out, "RGBA")
    for row in range(rows):
        shift = spacing / 2 if row % 2 else 0.0
        for col in range(cols):
            radius = spacing * 0.55 * (1 - tones[row * cols + col] / 255) ** 0.9
            if radius < 0.7:
                continue
            x, y = col * spacing + shift + spacing / 2, row * spacing + spacing / 2
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(*INK, alpha))
    return out


def glow(image: Image.Image, layer: Image.Image, radius: float) -> Image.Image:
    """Adds a blurred light layer twice (halo) and once sharp (core), like neon tubes."""
    halo = layer.filter(ImageFilter.GaussianBlur(radius))
    return ImageChops.screen(ImageChops.screen(ImageChops.screen(image, halo), halo), layer)


def encode(image: Image.Image, fmt: str) -> bytes:
    """PNG, JPEG or WebP bytes; JPEG gets transparency flattened onto white."""
    buffer = io.BytesIO()
    if fmt == "jpeg":
        if image.mode == "RGBA":
            flat = Image.new("RGB", image.size, WHITE)
            flat.paste(image, mask=image.getchannel("A"))
            image = flat
        image.convert("RGB").save(buffer, "JPEG", quality=90)
    elif fmt == "webp":
        image.save(buffer, "WEBP", quality=90, method=4)
    else:
        # zlib's effort dominates large renders; past 4 megapixels, speed beats a few percent.
        level = 6 if image.width * image.height <= 4_000_000 else 1
        image.save(buffer, "PNG", compress_level=level)
    return buffer.getvalue()


def gradient_mask(size: tuple[int, int], radial: bool, angle: float) -> Image.Image:
    """0..255 ramp: along `angle` (radians, 0 = left to right), or from the centre outwards."""
    w, h = size
    sw, sh = (96, max(2, round(96 * h / w))) if w >= h else (max(2, round(96 * w / h)), 96)
    cos, sin = math.cos(angle), math.sin(angle)
    extent = abs(sw * cos) + abs(sh * sin)
    values = []
    for y in range(sh):
        for x in range(sw):
            dx, dy = x + 0.5 - sw / 2, y + 0.5 - sh / 2
            if radial:
                t = math.hypot(dx / sw, dy / sh) / math.hypot(0.5, 0.5)
            else:
                t = (dx * cos + dy * sin) / extent + 0.5
            values.append(max(0, min(255, round(255 * t))))
    mask = Image.new("L", (sw, sh))
    mask.putdata(values)
    return mask.resize(size, Image.Resampling.BICUBIC)


# --- style treatments --------------------------------------------------------------


def finish_scene(image: Image.Image, style: str, seed: int) -> Image.Image:
    """The style's treatment of the picture (before any text, which must stay crisp)."""
    unit = min(image.size)
    if style == "watercolor":
        image = image.filter(ImageFilter.GaussianBlur(unit / 500))
        return paper_texture(image, seed, 0.12)
    if style == "noir":
        gray = ImageOps.autocontrast(ImageOps.grayscale(image), cutoff=1)
        return ImageEnhance.Contrast(gray).enhance(1.35).convert("RGB")
    if style == "pastel":
        image = ImageEnhance.Contrast(image).enhance(0.85)
        return image.filter(ImageFilter.GaussianBlur(unit / 700))
    if style == "vintage":
        return ImageEnhance.Color(sepia(image, 0.35)).enhance(0.75)
    if style == "comic":
        return halftone(image, max(4, unit // 70), 55)
    return image


def finish_final(image: Image.Image, style: str, seed: int) -> Image.Image:
    """Whole-frame effects that belong on top of the text too (grain, vignette)."""
    unit = min(image.size)
    if style == "noir":
        return add_grain(vignette(image, 0.55), seed, 16)
    if style == "vintage":
        return add_grain(vignette(image, 0.4), seed, 10)
    if style == "watercolor":
        return vignette(image, 0.15)
    if style == "neon" and unit >= 128:
        return vignette(image, 0.3)
    return image


# --- image to image ----------------------------------------------------------------


def _split(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    if image.mode == "RGBA":
        return image.convert("RGB"), image.getchannel("A")
    return image, None


def _join(rgb: Image.Image, alpha: Image.Image | None) -> Image.Image:
    if alpha is not None:
        rgb.putalpha(alpha)
    return rgb


def vary(image: Image.Image, seed: int, strength: float) -> Image.Image:
    """A seeded variation: a small rotation, zoom and shift (never showing an empty corner),
    sometimes a mirror, then hue, saturation, brightness and contrast jitter and grain, all
    scaled by `strength` (0 returns the image unchanged)."""
    chooser, s = rng(seed), max(0.0, min(1.0, strength))
    if s == 0:
        return image.copy()
    w, h = image.size
    angle = math.radians(chooser.uniform(-10, 10) * s)
    cos, sin = abs(math.cos(angle)), abs(math.sin(angle))
    zoom = max((w * cos + h * sin) / w, (w * sin + h * cos) / h) * (
        1 + chooser.uniform(0.02, 0.12) * s
    )
    room_x = max(0.0, w / 2 - (w * cos + h * sin) / (2 * zoom))
    room_y = max(0.0, h / 2 - (w * sin + h * cos) / (2 * zoom))
    tx, ty = chooser.uniform(-0.9, 0.9) * room_x, chooser.uniform(-0.9, 0.9) * room_y
    a, b = math.cos(angle) / zoom, -math.sin(angle) / zoom
    d, e = math.sin(angle) / zoom, math.cos(angle) / zoom
    if chooser.random() < 0.5 * s:
        a, d = -a, -d
    cx, cy = w / 2, h / 2
    affine = (a, b, cx + tx - (a * cx + b * cy), d, e, cy + ty - (d * cx + e * cy))
    moved = image.transform(image.size, Image.Transform.AFFINE, affine, Image.Resampling.BICUBIC)
    rgb, alpha = _split(moved)
    shift = round(chooser.uniform(-0.08, 0.08) * s * 256)
    hue, sat, val = rgb.convert("HSV").split()
    rgb = Image.merge("HSV", (hue.point([(v + shift) % 256 for v in range(256)]), sat, val))
    rgb = rgb.convert("RGB")
    for enhancer, spread in (
        (ImageEnhance.Color, 0.35),
        (ImageEnhance.Brightness, 0.12),
        (ImageEnhance.Contrast, 0.15),
    ):
        rgb = enhancer(rgb).enhance(1 + chooser.uniform(-spread, spread) * s)
    if grain := round(16 * s):
        rgb = add_grain(rgb, chooser.getrandbits(32), grain)
    return _join(rgb, alpha)


def restyle(
    image: Image.Image, seed: int, strength: float, style: str, palette: Pal
) -> Image.Image:
    """The image's tones mapped onto `palette` (a gradient map; flat styles quantise to it) and
    given the style's filters (ink lines and halftone for comic, blur and paper for watercolor,
    contrast, vignette and grain for noir, glowing edges for neon...), blended by `strength`."""
    chooser, s = rng(seed), max(0.0, min(1.0, strength))
    rgb, alpha = _split(image)
    gamma = 1 + chooser.uniform(-0.12, 0.12)  # each seed reads the tones a little differently
    if style == "neon":
        gamma *= 1.8  # mostly night, so the lines glow
    tone = ImageOps.autocontrast(rgb.convert("L"), cutoff=1)
    tone = tone.point([round(255 * (v / 255) ** gamma) for v in range(256)])
    styled = gradient_map(tone, palette)
    if style in ("comic", "modern"):
        styled = quantize_to(styled, palette)
    if style == "neon":
        outline = (
            rgb.convert("L").filter(ImageFilter.GaussianBlur(1.5)).filter(ImageFilter.FIND_EDGES)
        )
        outline = outline.point([0 if v < 12 else min(255, v * 6) for v in range(256)])
        bright = Image.new("RGB", rgb.size, max(palette, key=lambda c: to_hsv(c)[1] * to_hsv(c)[2]))
        light = Image.composite(bright, Image.new("RGB", rgb.size), outline)
        styled = glow(styled, light, max(1.5, min(rgb.size) / 200))
    styled = finish_scene(styled, style, chooser.getrandbits(32))
    if style == "comic":
        styled = ink_lines(styled, rgb, max(1, min(rgb.size) // 300))
    styled = finish_final(styled, style, chooser.getrandbits(32))
    return _join(Image.blend(rgb, styled, s), alpha)
