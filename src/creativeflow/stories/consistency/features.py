"""Image features for character drift: a perceptual hash for composition and a palette for
colour, compared with distances in 0..1 that combine into one drift score.

Pure functions on bytes, no database or HTTP. Decoding is CPU work: call `features_of` in a
worker thread, never on the event loop (~25 ms for a 320x400 PNG). Pillow and the standard
library only: NumPy is not a dependency, and an 8x32 DCT and a few colour conversions do not
need it.
"""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageOps, UnidentifiedImageError

from creativeflow.assets.imaging import DominantColour, dominant_colours

HASH_BITS = 64
_HASH_SIDE = 8  # the 8x8 lowest frequencies make the 64 bits
_DCT_SIDE = 32  # the image is shrunk to 32x32 before the DCT
# CIE76 ΔE between black (L*=0) and white (L*=100). Saturated hues can be further apart (sRGB
# red to green is 170): such pairs count as 1, as different as black and white.
_DELTA_E_SCALE = 100.0
# Drift above this is reported. Measured on tests/stories/test_drift.py's pictures (hash weight
# 0.5): the same picture as JPEG q60 at 70% size 0.021 (WebP q50 at 50%: 0.057, 20% brighter:
# 0.060), its jacket recoloured red → green 0.130 (→ blue 0.116), an unrelated picture 0.510.
# 0.1 is about the geometric mean of the re-encode and the unrelated picture (5x from each) and
# flags a recoloured jacket, the drift a writer wants to hear about. Whole-image features: a
# new pose or background drifts too (a mirror image 0.22, a 5% crop 0.096).
DEFAULT_DRIFT_THRESHOLD = 0.1

# sRGB (D65) linear RGB → XYZ, and the D65 reference white.
_RGB_TO_XYZ = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)
_D65_WHITE = (0.95047, 1.0, 1.08883)

Lab = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class ImageFeatures:
    """What drift is measured on: a 64-bit DCT perceptual hash of the luminance, the dominant
    colours with their shares (most common first), and the decoded size."""

    phash: int
    palette: tuple[DominantColour, ...]
    width: int
    height: int


def features_of(data: bytes) -> ImageFeatures:
    """Decode an image (any format Pillow reads; the first frame; upright by its EXIF
    orientation) and compute its features. Raises ValueError when the bytes are not a
    readable image."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except (UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise ValueError(f"not a readable image: {error}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ValueError(f"not a readable image (truncated or corrupt): {error}") from None
    width, height = image.size
    return ImageFeatures(
        phash=perceptual_hash(image),
        palette=tuple(dominant_colours(image)),
        width=width,
        height=height,
    )


@cache
def _dct_rows(size: int, rows: int) -> tuple[tuple[float, ...], ...]:
    """The first `rows` rows of the orthonormal DCT-II matrix C of order `size` (the DCT of
    a column x is C @ x): only the low frequencies are ever needed."""
    return tuple(
        tuple(
            math.sqrt((1 if k == 0 else 2) / size)
            * math.cos(math.pi * (2 * n + 1) * k / (2 * size))
            for n in range(size)
        )
        for k in range(rows)
    )


def perceptual_hash(image: Image.Image) -> int:
    """The 64-bit pHash: luminance shrunk to 32x32, its 2-D DCT (C X Cᵀ), the top-left 8x8
    coefficients, one bit per coefficient above their median. The median leaves out the DC
    term (the mean brightness, far larger than the rest), so it cannot shift the threshold;
    bit 63 is coefficient (0, 0), bit 0 is (7, 7). Transparent pixels count as white."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    grey = image.convert("L").resize((_DCT_SIDE, _DCT_SIDE), Image.Resampling.LANCZOS)
    raw = grey.tobytes()
    pixels = [raw[row * _DCT_SIDE : (row + 1) * _DCT_SIDE] for row in range(_DCT_SIDE)]
    dct = _dct_rows(_DCT_SIDE, _HASH_SIDE)
    # C X: the low vertical frequencies of every column, then (C X) Cᵀ along the rows.
    columns = [
        [sum(c * pixels[n][x] for n, c in enumerate(basis)) for x in range(_DCT_SIDE)]
        for basis in dct
    ]
    low = [sum(map(math.prod, zip(row, basis, strict=True))) for row in columns for basis in dct]
    median = statistics.median(low[1:])
    value = 0
    for coefficient in low:
        value = (value << 1) | (coefficient > median)
    return value


def hash_distance(a: ImageFeatures, b: ImageFeatures) -> float:
    """The share of the 64 hash bits that differ: 0 for the same picture, ~0.5 for unrelated
    ones (random bits), 1 for an exact inverse."""
    return (a.phash ^ b.phash).bit_count() / HASH_BITS


def _lab(colour: DominantColour) -> Lab:
    """CIELAB (D65) of a colour: sRGB → linear RGB → XYZ → L*a*b*."""
    srgb = [int(colour.hex[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in srgb]
    delta = 6 / 29
    fx, fy, fz = (
        t ** (1 / 3) if t > delta**3 else t / (3 * delta**2) + 4 / 29
        for t in (
            sum(map(math.prod, zip(row, linear, strict=True))) / white
            for row, white in zip(_RGB_TO_XYZ, _D65_WHITE, strict=True)
        )
    )
    return (116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz))


def _shares(palette: Sequence[DominantColour]) -> list[float]:
    """The shares scaled to sum to 1 (they are rounded, and may leave out a few pixels)."""
    shares = [max(colour.share, 0.0) for colour in palette]
    total = sum(shares)
    return [share / total for share in shares] if total > 0 else [1 / len(palette)] * len(palette)


def palette_distance(a: ImageFeatures, b: ImageFeatures) -> float:
    """How far apart two palettes are, 0..1: the cost of turning one palette's shares into
    the other's (an earth mover's distance, solved greedily), with CIE76 ΔE (Euclidean in
    CIELAB) as the cost of moving a share from one colour to another, divided by 100 (black
    to white).

    The greedy transport moves shares along the closest pairs of colours first, as much as
    both sides still have; it is exact for identical palettes (0) and for one-colour
    palettes, and never below the true EMD otherwise. Unlike "each colour's nearest colour",
    it sees shares on both sides: a mostly red palette with a touch of green is far from a
    mostly green one with a touch of red. A fully transparent image has no palette: two of
    them are 0 apart, one of them is 1 from anything else."""
    if not a.palette or not b.palette:
        return 0.0 if not a.palette and not b.palette else 1.0
    left, right = _shares(a.palette), _shares(b.palette)
    lab_b = [_lab(colour) for colour in b.palette]
    pairs = sorted(
        (math.dist(lab_a, lab), i, j)
        for i, lab_a in enumerate(_lab(colour) for colour in a.palette)
        for j, lab in enumerate(lab_b)
    )
    cost = 0.0
    for delta_e, i, j in pairs:
        moved = min(left[i], right[j])
        if moved > 0:
            cost += moved * delta_e
            left[i] -= moved
            right[j] -= moved
    return min(1.0, cost / _DELTA_E_SCALE)


def drift(
    panel: ImageFeatures, references: Sequence[ImageFeatures], *, hash_weight: float = 0.5
) -> float:
    """How far a panel is from a character's primary references, 0..1: for each reference
    `hash_weight * hash_distance + (1 - hash_weight) * palette_distance`, and the smallest
    of these (a panel close to any one reference, a front or a side view, is consistent)."""
    if not references:
        raise ValueError("drift needs at least one reference image")
    if not 0.0 <= hash_weight <= 1.0:
        raise ValueError(f"hash_weight must be between 0 and 1, not {hash_weight}")
    return min(
        hash_weight * hash_distance(panel, reference)
        + (1 - hash_weight) * palette_distance(panel, reference)
        for reference in references
    )
