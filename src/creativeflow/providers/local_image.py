"""The offline image provider: prompt-driven pictures drawn with Pillow, and image-to-image
variations and style transfer.

No model runs and nothing is downloaded. The prompt is read for words: colours and moods pick
the palette (`teal`, `gold`, `sunset`, `ocean`...), style words the treatment (`watercolor`,
`noir`, `neon`, `comic`...), scene words the motifs (mountains, waves, a skyline, sun or moon),
design words the layout (logo, banner, poster, panel, story, social) and a quoted phrase or a
brand-like name the text drawn on it. The negative prompt takes words away. The same request and
seed give the same bytes; a request without a seed gets one derived from its content, reported
in the result. Drawing runs in an executor (a thread pool by default, or a process pool).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from creativeflow.providers.base import (
    GeneratedImage,
    ImageEditRequest,
    ImageRequest,
    ImageResult,
    Progress,
    Usage,
)
from creativeflow.providers.errors import ProviderRejected, ProviderTimeout, ProviderUnavailable
from creativeflow.providers.image_filters import (
    COLOUR_WORDS,
    RGB,
    STYLE_PALETTES,
    Pal,
    complete_palette,
    distance,
    encode,
    parse_hex,
    restyle,
    rng,
    seeded_palette,
    to_hex,
    vary,
)
from creativeflow.providers.rendering import MOTIFS, STYLES, Scene, render_scene

PROVIDER = "local"
FORMATS = ("png", "jpeg", "webp")
SOURCE_FORMATS = ("PNG", "JPEG", "WEBP")
MAX_SOURCE_PIXELS = 40_000_000
MIN_SIDE, MAX_SIDE, MAX_COUNT, MAX_PALETTE = 64, 4096, 8, 16
# The sizes the design studio asks for per design type (ArtNex "Ideogram API Integration").
DESIGN_SIZES = {
    "logo": (1024, 1024),
    "banner": (1920, 1080),
    "product_mockup": (1024, 1024),
    "social": (1080, 1080),
    "story": (1080, 1920),
}

STYLE_WORDS = {
    "modern": "modern minimal minimalist flat clean corporate sleek simple",
    "watercolor": "watercolor watercolour painterly aquarelle painted wash",
    "noir": "noir monochrome grayscale greyscale gritty moody",
    "neon": "neon cyberpunk synthwave vaporwave retrowave glowing glow futuristic",
    "pastel": "pastel soft dreamy kawaii gentle",
    "vintage": "vintage retro antique sepia nostalgic old-fashioned",
    "comic": "comic comics manga cartoon cartoony halftone inked",
    "illustration": "illustration illustrated",
}
DESIGN_WORDS = {  # in priority order: a "comic panel for a story" is a panel
    "logo": "logo logotype emblem icon badge monogram wordmark brandmark",
    "panel": "panel panels storyboard strip",
    "banner": "banner header billboard hero leaderboard cover",
    "poster": "poster flyer placard",
    "social": "social post instagram feed square",
    "story": "story stories reel reels vertical tiktok",
}


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


MOTIF_WORDS = {
    "mountains": "mountain mountains hill hills landscape valley peak peaks alps summit cliffs",
    "waves": "ocean sea seas wave waves beach water lake river coast surf harbor harbour",
    "sun": "sun sunny sunrise sunset dawn dusk summer daylight solar",
    "moon": "moon night midnight lunar moonlit crescent",
    "stars": "star stars starry space galaxy cosmic night universe constellation",
    "skyline": "city skyline urban downtown street buildings metropolis town skyscrapers",
    "trees": "forest tree trees woods woodland jungle pine pines grove park",
    "abstract": "abstract geometric shapes shape pattern circles bubbles",
}
TEXT_WORDS = _word_set(
    "text texts word words letter letters lettering typography title titles wordmark "
    "caption captions writing font name slogan tagline"
)
PHRASES = {
    "black and white": "monochrome",
    "b&w": "monochrome",
    "film noir": "noir",
    "pop art": "comic",
    "graphic novel": "comic",
    "comic strip": "strip",
    "social media": "social",
    "night sky": "night",
    "outer space": "space",
}
STOP = _word_set(
    "a an the and or of for with in on at to by from into over under as is are be it its this "
    "that these those my our your their some any very more most much few many no not without "
    "style styled design designed image picture photo art artwork featuring feature using "
    "colour colours color colors palette tones tone vibe look looking high quality detailed "
    "every each called named over"
)
NEGATORS = frozenset({"no", "without", "not", "minus", "except"})


def _index(table: dict[str, str]) -> dict[str, tuple[str, ...]]:
    index: dict[str, tuple[str, ...]] = {}
    for key, words in table.items():
        for word in words.split():
            index[word] = (*index.get(word, ()), key)
    return index


STYLE_INDEX, DESIGN_INDEX, MOTIF_INDEX = map(_index, (STYLE_WORDS, DESIGN_WORDS, MOTIF_WORDS))
# Words that describe the picture rather than name anything in it.
GENERIC = frozenset(STYLE_INDEX) | frozenset(DESIGN_INDEX) | STOP
VOCABULARY = GENERIC | frozenset(COLOUR_WORDS)
_TOKEN = re.compile(r"[a-z0-9&]+(?:['\u2019-][a-z0-9]+)*|[.,;:!?()]")
_QUOTED = re.compile(r"[\"“”«»]([^\"“”«»]{1,60})[\"“”«»]|(?<!\w)'([^']{1,60})'(?!\w)")
_NAME_WORD = r"(?:[A-Z0-9][\w&'\u2019.-]*)"
_NAME_RUN = re.compile(rf"{_NAME_WORD}(?:\s+(?:&\s+)?{_NAME_WORD})*")
_NAME_CUE = re.compile(
    rf"\b(?:called|named|brand(?:ed)?|for|titled|reads?|saying)\s+({_NAME_RUN.pattern})"
)


@dataclass(frozen=True, slots=True)
class Prompt:
    """A prompt read for words: kept words in order, words the prompt or the negative prompt
    rule out, and quoted phrases."""

    words: tuple[str, ...]
    negative: frozenset[str]
    quotes: tuple[str, ...]

    @property
    def keywords(self) -> list[str]:
        return [w for w in dict.fromkeys(self.words) if w not in VOCABULARY and len(w) > 2]


def _tokens(text: str) -> list[str]:
    lowered = f" {text.lower()} "
    for phrase, word in PHRASES.items():
        lowered = lowered.replace(f" {phrase} ", f" {word} ")
    return _TOKEN.findall(lowered)


def read_prompt(prompt: str, negative_prompt: str = "") -> Prompt:
    """Words of the prompt; "no text", "without mountains" move words to the negative set."""
    quotes = tuple(q.strip() for pair in _QUOTED.findall(prompt) for q in pair if q.strip())
    unquoted = _QUOTED.sub(" , ", prompt)
    kept: list[str] = []
    negative = {t for t in _tokens(negative_prompt) if t.isalnum() and t not in STOP}
    negating = 0
    for token in _tokens(unquoted):
        if token in NEGATORS:
            negating = 4  # a negation covers the next few words of its clause
        elif not token[0].isalnum() or token == "but":
            negating = 0
        elif negating:
            negating -= 1
            if token not in STOP:
                negative.add(token)
        else:
            kept.append(token)
    return Prompt(tuple(w for w in kept if w not in negative), frozenset(negative), quotes)


def _first(words: Iterable[str], index: dict[str, tuple[str, ...]]) -> str | None:
    return next((index[w][0] for w in words if w in index), None)


def design_type_of(prompt: Prompt) -> str:
    found = {index[0] for w in prompt.words if (index := DESIGN_INDEX.get(w))}
    return next((kind for kind in DESIGN_WORDS if kind in found), "illustration")


def resolve_style(name: str | None, prompt: Prompt, default: str) -> str:
    """The request's style (a name or words naming one), else the prompt's, else `default`."""
    if name:
        asked = [name.strip().lower(), *_tokens(name)]
        style = next((w for w in asked if w in STYLES), None) or _first(asked, STYLE_INDEX)
        if style:
            return style
    return _first(prompt.words, STYLE_INDEX) or default


def _hexes(values: Iterable[str]) -> list[RGB]:
    return [parse_hex(value) for value in values]


def _banned_colours(prompt: Prompt) -> list[RGB]:
    return _hexes(h for w in prompt.negative if w in COLOUR_WORDS for h in COLOUR_WORDS[w].split())


def _without(colours: Sequence[RGB], banned: Sequence[RGB]) -> list[RGB]:
    return [c for c in colours if all(distance(c, b) > 110 for b in banned)]


def choose_palette(explicit: Sequence[str], prompt: Prompt, seed: int, style: str = "") -> Pal:
    """The request's colours, else the prompt's colour words, else (for transfers) the style's,
    else a seeded harmonious palette; colours the negative prompt names are left out."""
    banned = _banned_colours(prompt)
    if explicit:
        given = _hexes(explicit)
        return complete_palette(_without(given, banned) or given)
    families = [COLOUR_WORDS[w].split() for w in dict.fromkeys(prompt.words) if w in COLOUR_WORDS]
    named = _without(_hexes(f[i] for i in range(5) for f in families if i < len(f)), banned)
    if named:
        return complete_palette(named[:6])
    if style in STYLE_PALETTES:
        return tuple(_hexes(STYLE_PALETTES[style].split()))
    chooser = rng(seed)
    palette = seeded_palette(chooser)
    for _ in range(12):  # re-roll until no colour is one the negative prompt rules out
        if len(_without(palette, banned)) == len(palette):
            break
        palette = seeded_palette(chooser)
    return palette


def choose_motifs(prompt: Prompt, design: str) -> tuple[str, ...]:
    found = {m for w in prompt.words for m in MOTIF_INDEX.get(w, ())}
    banned = {m for w in prompt.negative for m in MOTIF_INDEX.get(w, ())}
    chosen = tuple(m for m in MOTIFS if m in found and m not in banned)
    if not chosen and design != "logo" and "abstract" not in banned:
        return ("abstract",)
    return chosen


def brand_name(prompt: str) -> str | None:
    """A capitalised name in the prompt ("logo for Acme Coffee", "a bakery called Rise")."""

    def trimmed(run: str) -> str:
        words = run.split()
        while words and words[0].lower() in GENERIC:
            words.pop(0)
        while words and words[-1].lower() in GENERIC:
            words.pop()
        return " ".join(words[:5]).strip(" .,'\u2019")

    for match in _NAME_CUE.finditer(prompt):
        if name := trimmed(match.group(1)):
            return name
    runs = []
    for match in _NAME_RUN.finditer(prompt):
        name = trimmed(match.group(0))
        opener = match.start() == 0 and " " not in name
        # A lone capital at the start is sentence case, unless it is shaped like a brand.
        if name and not (opener and not re.search(r"[A-Z].*[A-Z]|\d", name)):
            runs.append(name)
    return max(runs, key=lambda n: len(n.split()), default=None)


def _clause_line(prompt: str, name: str) -> str | None:
    """The prompt's most descriptive clause (for a banner's sub-line), in sentence case."""
    best, best_score = None, 1
    for clause in re.split(r"[,.;:!?\n\u2014\u2013]+", _QUOTED.sub(",", prompt).replace(name, ",")):
        words = clause.split()
        while words and words[0].lower() in VOCABULARY:
            words.pop(0)
        score = sum(1 for w in words if w.lower() not in VOCABULARY)
        if score > best_score:
            best, best_score = " ".join(words[:7]), score
    return best[:1].upper() + best[1:] if best else None


def choose_text(raw: str, prompt: Prompt, design: str) -> tuple[str | None, str | None]:
    """Headline and sub-line: quoted phrases first; for every design but plain pictures and
    panels also a brand-like name (banners and posters fall back to the key words)."""
    if prompt.negative & TEXT_WORDS:
        return None, None
    quotes = list(prompt.quotes)
    text = quotes[0] if quotes else None
    if text is None and design not in ("illustration", "panel"):
        text = brand_name(raw)
        if text is None and design in ("banner", "poster") and prompt.keywords:
            text = " ".join(word.capitalize() for word in prompt.keywords[:3])
    if text is None:
        return None, None
    subline = quotes[1] if len(quotes) > 1 else None
    if subline is None and design == "banner":
        subline = _clause_line(raw, text)
    return text, subline


def plan_scene(request: ImageRequest, seed: int) -> Scene:
    """What image `seed` of `request` shows (cheap; the drawing is `render_scene`)."""
    prompt = read_prompt(request.prompt, request.negative_prompt)
    design = design_type_of(prompt)
    default = {"logo": "modern", "panel": "comic"}.get(design, "illustration")
    text, subline = choose_text(request.prompt, prompt, design)
    return Scene(
        width=request.width,
        height=request.height,
        seed=seed,
        palette=choose_palette(request.palette, prompt, seed),
        style=resolve_style(request.style, prompt, default),
        design_type=design,
        motifs=choose_motifs(prompt, design),
        text=text,
        subline=subline,
        format=request.format,
    )


# --- image to image ------------------------------------------------------------------------


class SourceImageError(ValueError):
    """The source bytes are not an image this provider accepts. A plain ValueError so that it
    crosses a process pool intact (ProviderError's keyword-only init does not unpickle)."""


def inspect_source(data: bytes) -> tuple[str, int, int]:
    """Format and displayed size (after EXIF rotation) from the header only: refuses other
    formats and images over the pixel cap before any pixel is decoded."""
    try:
        with Image.open(io.BytesIO(data), formats=SOURCE_FORMATS) as image:
            fmt, (w, h) = str(image.format), image.size
            orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Image.DecompressionBombError:
        raise SourceImageError("the source image has too many pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise SourceImageError("the source is not a readable PNG, JPEG or WebP image") from None
    if w * h > MAX_SOURCE_PIXELS:
        raise SourceImageError(f"the source image is {w}x{h}; at most 40 megapixels are accepted")
    return (fmt, h, w) if orientation in (5, 6, 7, 8) else (fmt, w, h)


def decode_source(data: bytes) -> Image.Image:
    """The source pixels upright, as RGB (or RGBA when the source has transparency)."""
    inspect_source(data)
    try:
        with Image.open(io.BytesIO(data), formats=SOURCE_FORMATS) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError):
        raise SourceImageError("the source image is truncated or corrupt") from None
    if upright.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit greyscale PNG
        upright = upright.point(lambda v: v * (1 / 256)).convert("L")
    if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info:
        return upright.convert("RGBA")
    return upright.convert("RGB")


def render_variation(request: ImageEditRequest, seed: int) -> bytes:
    """Variation `seed` of the request's source, encoded (CPU work: run it in an executor)."""
    return encode(vary(decode_source(request.source), seed, request.strength), request.format)


def render_style_transfer(request: ImageEditRequest, seed: int, style: str, palette: Pal) -> bytes:
    """The source restyled, encoded (CPU work: run it in an executor)."""
    image = decode_source(request.source)
    return encode(restyle(image, seed, request.strength, style, palette), request.format)


# --- the provider --------------------------------------------------------------------------


def _rejected(message: str) -> ProviderRejected:
    return ProviderRejected(message, provider=PROVIDER)


def _check_common(count: object, fmt: object, palette: Sequence[str]) -> None:
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_COUNT:
        raise _rejected(f"count must be 1..{MAX_COUNT}, not {count!r}")
    if fmt not in FORMATS:
        raise _rejected(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if len(palette) > MAX_PALETTE:
        raise _rejected(f"a palette has at most {MAX_PALETTE} colours")
    try:
        _hexes(palette)
    except (ValueError, AttributeError):
        raise _rejected(f"palette colours must be hex like #1a2b3c: {list(palette)!r}") from None


def check_generate(request: ImageRequest) -> None:
    for side, value in (("width", request.width), ("height", request.height)):
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not MIN_SIDE <= value <= MAX_SIDE
        ):
            raise _rejected(f"{side} must be {MIN_SIDE}..{MAX_SIDE} pixels, not {value!r}")
    _check_common(request.count, request.format, request.palette)


def check_edit(request: ImageEditRequest) -> None:
    if request.operation not in ("variation", "style_transfer"):
        raise _rejected(f"unknown image operation {request.operation!r}")
    if not isinstance(request.strength, int | float) or not 0 <= request.strength <= 1:
        raise _rejected(f"strength must be 0..1, not {request.strength!r}")
    if not isinstance(request.source, bytes | bytearray) or not request.source:
        raise _rejected("the source image is empty")
    _check_common(request.count, request.format, request.palette)


def derive_seed(*parts: Any) -> int:
    """A seed from the request's content, so an unseeded request is still repeatable."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:4], "big")


Job = tuple[Callable[..., bytes], tuple[Any, ...]]


class LocalImageProvider:
    """Deterministic offline image provider (`IMAGE_PROVIDER=local`)."""

    name = PROVIDER
    model = "local-pillow-1"

    def __init__(self, executor: Executor | None = None) -> None:
        # None: the event loop's default thread pool. Everything sent to it is top-level and
        # picklable, so a ProcessPoolExecutor works too.
        self.executor = executor

    async def generate(
        self, request: ImageRequest, progress: Progress | None = None
    ) -> ImageResult:
        check_generate(request)
        started = time.perf_counter()
        base = (
            request.seed
            if request.seed is not None
            else derive_seed(
                "generate",
                request.prompt,
                request.negative_prompt,
                request.width,
                request.height,
                request.style,
                list(request.palette),
                request.format,
            )
        )
        scenes = [plan_scene(request, base + i) for i in range(request.count)]
        data = await self._run(
            [(render_scene, (scene,)) for scene in scenes], request.timeout, progress
        )
        first, palettes = scenes[0], [[to_hex(c) for c in scene.palette] for scene in scenes]
        metadata: dict[str, Any] = {
            "local": True,
            "seed": base,
            "style": first.style,
            "palette": palettes[0],
            "design_type": first.design_type,
            "text": first.text,
            "subline": first.subline,
            "motifs": list(first.motifs),
            "keywords": read_prompt(request.prompt, request.negative_prompt).keywords[:12],
        }
        if any(p != palettes[0] for p in palettes):
            metadata["palettes"] = palettes  # seeded palettes differ from image to image
        images = [
            GeneratedImage(blob, request.format, request.width, request.height, scene.seed)
            for blob, scene in zip(data, scenes, strict=True)
        ]
        return self._result(images, started, metadata)

    async def transform(
        self, request: ImageEditRequest, progress: Progress | None = None
    ) -> ImageResult:
        check_edit(request)
        started = time.perf_counter()
        try:
            source_format, width, height = inspect_source(bytes(request.source))
        except SourceImageError as error:
            raise _rejected(str(error)) from None
        base = (
            request.seed
            if request.seed is not None
            else derive_seed(
                "transform",
                request.operation,
                request.prompt,
                request.style,
                list(request.palette),
                request.strength,
                request.format,
                hashlib.sha256(request.source).hexdigest(),
            )
        )
        seeds = [base + i for i in range(request.count)]
        metadata: dict[str, Any] = {
            "local": True,
            "seed": base,
            "operation": request.operation,
            "strength": request.strength,
            "source_format": source_format.lower(),
        }
        jobs: list[Job]
        if request.operation == "variation":
            jobs = [(render_variation, (request, seed)) for seed in seeds]
        else:
            prompt = read_prompt(request.prompt)
            style = resolve_style(request.style, prompt, "illustration")
            palette = choose_palette(request.palette, prompt, base, style)
            metadata.update(style=style, palette=[to_hex(c) for c in palette])
            jobs = [(render_style_transfer, (request, seed, style, palette)) for seed in seeds]
        data = await self._run(jobs, request.timeout, progress)
        images = [
            GeneratedImage(blob, request.format, width, height, seed)
            for blob, seed in zip(data, seeds, strict=True)
        ]
        return self._result(images, started, metadata)

    async def aclose(self) -> None:
        """Nothing to release: the executor belongs to whoever passed it in."""

    async def _run(self, jobs: list[Job], limit: float, progress: Progress | None) -> list[bytes]:
        """Runs every job in the executor at once and reports each one that finishes."""
        loop = asyncio.get_running_loop()
        futures = [loop.run_in_executor(self.executor, fn, *args) for fn, args in jobs]
        try:
            async with asyncio.timeout(limit):
                for done, finished in enumerate(asyncio.as_completed(futures), start=1):
                    await finished
                    if progress is not None:
                        await progress(done / len(jobs), f"image {done} of {len(jobs)} rendered")
        except TimeoutError:
            raise ProviderTimeout(
                f"local image rendering took longer than {limit} s", provider=PROVIDER
            ) from None
        except SourceImageError as error:
            raise _rejected(str(error)) from None
        except BrokenProcessPool:
            raise ProviderUnavailable(
                "the image worker process pool is broken", provider=PROVIDER
            ) from None
        finally:
            for future in futures:
                future.cancel()  # no-op for finished ones; frees queued work after a failure
        return [future.result() for future in futures]

    def _result(
        self, images: list[GeneratedImage], started: float, metadata: dict[str, Any]
    ) -> ImageResult:
        return ImageResult(
            images=images,
            provider=self.name,
            model=self.model,
            usage=Usage(images=len(images)),
            duration_ms=(time.perf_counter() - started) * 1000,
            metadata=metadata,
        )
