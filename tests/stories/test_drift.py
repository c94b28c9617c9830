"""Drift between a panel's image and a character's references, from image features alone."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from creativeflow.stories.consistency.features import (
    DEFAULT_DRIFT_THRESHOLD,
    ImageFeatures,
    drift,
    features_of,
    hash_distance,
    palette_distance,
)

SIZE = (320, 400)
RED = (196, 30, 40)
GREEN = (40, 160, 60)


def character(jacket: tuple[int, int, int] = RED) -> Image.Image:
    """A figure in a jacket before a sky and a lawn, with a little texture."""
    image = Image.new("RGB", SIZE, (120, 170, 225))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 290, 320, 400), fill=(90, 140, 70))
    draw.rectangle((95, 150, 225, 330), fill=jacket)  # jacket
    draw.rectangle((110, 330, 150, 395), fill=(40, 45, 70))  # legs
    draw.rectangle((170, 330, 210, 395), fill=(40, 45, 70))
    draw.ellipse((120, 50, 200, 150), fill=(235, 190, 160))  # face
    draw.pieslice((115, 40, 205, 120), 180, 360, fill=(60, 35, 20))  # hair
    grain = random.Random(7).randbytes(SIZE[0] * SIZE[1] * 3)
    noise = Image.frombytes("RGB", SIZE, grain).point(lambda v: 128 + (v - 128) // 10)
    return ImageChops.add(image, noise, offset=-128).filter(ImageFilter.GaussianBlur(1))


def unrelated() -> Image.Image:
    """Another picture altogether: a dusk street of yellow windows and violet walls."""
    image = Image.new("RGB", SIZE, (70, 30, 90))
    draw = ImageDraw.Draw(image)
    for left in range(0, 320, 80):
        draw.rectangle((left + 10, 20, left + 60, 260), fill=(150, 110, 160))
        for top in range(40, 240, 50):
            draw.rectangle((left + 20, top, left + 50, top + 25), fill=(250, 215, 80))
    draw.polygon([(0, 400), (320, 300), (320, 400)], fill=(30, 30, 35))
    return image


def encoded(image: Image.Image, image_format: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def features(image: Image.Image) -> ImageFeatures:
    return features_of(encoded(image))


def re_encoded(image: Image.Image) -> ImageFeatures:
    """The same picture as a JPEG at quality 60, at 70% of its size."""
    small = image.resize((round(SIZE[0] * 0.7), round(SIZE[1] * 0.7)), Image.Resampling.LANCZOS)
    return features_of(encoded(small, "JPEG", quality=60))


def plain(colour: tuple[int, int, int]) -> ImageFeatures:
    return features(Image.new("RGB", (64, 64), colour))


def test_the_same_image_does_not_drift() -> None:
    original = features(character())
    again = features(character())
    assert again == original
    assert hash_distance(original, again) == 0
    assert palette_distance(original, again) == 0
    assert drift(original, [again]) == 0


def test_a_re_encoded_and_resized_copy_stays_well_below_the_threshold() -> None:
    original = features(character())
    copy = re_encoded(character())
    assert (copy.width, copy.height) == (224, 280)
    # Measured: hash 0.0312 (2 bits of 64), palette 0.0116, drift 0.0214.
    assert hash_distance(original, copy) <= 4 / 64
    assert palette_distance(original, copy) < 0.03
    assert drift(original, [copy]) < DEFAULT_DRIFT_THRESHOLD / 3


def test_a_recoloured_jacket_moves_the_palette_not_the_composition() -> None:
    original = features(character())
    copy = re_encoded(character())
    green = features(character(jacket=GREEN))
    # Measured: palette 0.2296 (re-encoded 0.0116), hash 0.0312 (2 bits), drift 0.1304.
    assert palette_distance(original, green) > 0.15
    assert palette_distance(original, green) > 10 * palette_distance(original, copy)
    assert hash_distance(original, green) < 0.15
    assert drift(original, [green]) > DEFAULT_DRIFT_THRESHOLD


def test_an_unrelated_image_drifts_above_the_threshold() -> None:
    original = features(character())
    other = features(unrelated())
    # Measured: hash 0.5 (32 bits), palette 0.5204, drift 0.5102.
    assert hash_distance(original, other) > 0.35
    assert palette_distance(original, other) > 0.35
    assert drift(original, [other]) > 3 * DEFAULT_DRIFT_THRESHOLD


def test_hash_distance_is_symmetric_and_in_range() -> None:
    images = [
        features(character()),
        re_encoded(character()),
        features(character(jacket=GREEN)),
        features(unrelated()),
    ]
    for a in images:
        for b in images:
            assert hash_distance(a, b) == hash_distance(b, a)
            assert 0 <= hash_distance(a, b) <= 1
            assert palette_distance(a, b) == pytest.approx(palette_distance(b, a))
            assert 0 <= palette_distance(a, b) <= 1


def test_black_and_white_palettes_are_one_apart() -> None:
    black, white = plain((0, 0, 0)), plain((255, 255, 255))
    assert palette_distance(black, white) == pytest.approx(1, abs=0.005)
    assert palette_distance(black, black) == 0
    # Mid grey is L* 53.6; saturated red and green are further apart than black and white in
    # CIE76 (ΔE 116 here) and count as 1.
    assert palette_distance(black, plain((128, 128, 128))) == pytest.approx(0.536, abs=0.005)
    assert palette_distance(plain(RED), plain(GREEN)) == 1


def test_drift_is_the_distance_to_the_closest_reference() -> None:
    panel = re_encoded(character())
    far, near = features(unrelated()), features(character())
    assert drift(panel, [far, near]) == drift(panel, [near]) == drift(panel, [near, far])
    assert drift(panel, [far]) > drift(panel, [far, near])


def test_the_weight_chooses_between_composition_and_colour() -> None:
    original, green = features(character()), features(character(jacket=GREEN))
    assert drift(original, [green], hash_weight=1) == hash_distance(original, green)
    assert drift(original, [green], hash_weight=0) == palette_distance(original, green)
    with pytest.raises(ValueError, match="hash_weight"):
        drift(original, [green], hash_weight=1.5)


def test_drift_needs_a_reference() -> None:
    with pytest.raises(ValueError, match="at least one reference"):
        drift(features(character()), [])


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", encoded(Image.new("RGB", (40, 40)), "PNG")[:60]],
    ids=["empty", "text", "truncated-png"],
)
def test_unreadable_bytes_are_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="not a readable image"):
        features_of(data)
