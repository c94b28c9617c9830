"""The offline text provider: answers every task from its inputs with classic NLP.

Nothing is downloaded and no model runs. A scene summary is the scene's best sentences in their
order; panels are the scene's beats with shots chosen by position and content; dialogue is
tone-specific templates filled with the situation's key phrases; an unknown task with a JSON
Schema gets an object built to that schema from the inputs' key phrases, sentences and keyword
weights (`schema_fill.SchemaFiller`). The same request and seed give the same answer; a request
without a seed gets one derived from its content, reported in the result.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import ValidationError

from creativeflow.providers.base import TextRequest, TextResult, Usage
from creativeflow.providers.errors import ProviderRejected, ProviderTimeout
from creativeflow.providers.nlp import (
    ACTION_WORDS,
    APPEARANCE_WORDS,
    MOTIVE_CUE,
    OBJECT_WORDS,
    RELATION_WORDS,
    TRAITS,
    TextAnalysis,
    clauses,
    count_tokens,
    mentions,
    quotes,
    sentence_case,
    shorten,
    title_case,
)
from creativeflow.providers.schema_fill import SchemaFiller
from creativeflow.providers.tasks import (
    INSTRUCTIONS_LABEL,
    TASKS,
    ChapterOutlineInput,
    ChapterOutlineOutput,
    CharacterProfileInput,
    CharacterProfileOutput,
    DialogueInput,
    DialogueLine,
    DialogueOption,
    DialogueOutput,
    DialogueTone,
    OutlineScene,
    Panel,
    PanelDescriptionInput,
    PanelDescriptionOutput,
    Relationship,
    SceneSummaryInput,
    SceneSummaryOutput,
    ShotType,
    TaskInput,
    TaskOutput,
    TaskType,
    VisualPromptInput,
    VisualPromptOutput,
    material_of,
)

PROVIDER = "local"


def _unique(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    kept = []
    for item in items:
        if item and item.casefold() not in seen:
            seen.add(item.casefold())
            kept.append(item)
    return kept


def _noun(phrase: str) -> str:
    """A phrase ready for a template: "the stolen ledger"; names and scripts without
    articles (Korean) stay as they are."""
    return f"the {phrase}" if phrase.isascii() and phrase[:1].islower() else phrase


def _names_in(text: str, names: list[str]) -> list[str]:
    """The names (or a word of them: `Mira` for `Mira Vale`) that `text` mentions."""
    return [name for name in names if any(mentions(text, part) for part in name.split())]


# -- scene summary -----------------------------------------------------------------------------


def summarise_scene(data: SceneSummaryInput, rng: random.Random) -> SceneSummaryOutput:
    doc = TextAnalysis(data.scene_text, data.characters)
    best = doc.ranked_sentences()[: min(6, data.max_sentences + 2)]
    best.sort(key=lambda sentence: sentence.index)
    points = [sentence_case(shorten(doc.best_clause(sentence), 200)) for sentence in best]
    return SceneSummaryOutput(
        summary=shorten(" ".join(doc.summary(data.max_sentences)), 5000),
        key_points=_unique(points),
        characters=doc.character_names()[:20],
        keywords=doc.keywords(10, names=False) or doc.keywords(10),
        mood=doc.mood(),
    )


# -- character profile -------------------------------------------------------------------------

_ROLE_TRAITS = {
    "protagonist": ("determined", "curious", "resilient", "stubborn"),
    "antagonist": ("ruthless", "calculating", "proud", "patient"),
    "mentor": ("wise", "patient", "guarded", "dry-humoured"),
    "sidekick": ("loyal", "witty", "impulsive", "warm"),
    "rival": ("competitive", "proud", "sharp", "restless"),
}
_DEFAULT_TRAITS = ("observant", "guarded", "resourceful", "driven", "wry")
_VOICE_PATTERNS = (
    "short, clipped sentences",
    "questions more than answers",
    "long, careful sentences",
    "dry understatement under pressure",
    "plain words and few of them",
)
_MOTIVE_TEMPLATES = (
    "To keep the {thing} out of the wrong hands",
    "To learn the truth about the {thing}",
    "To hold on to the {thing}, whatever it costs",
    "To prove they were right about the {thing}",
)


def profile_character(data: CharacterProfileInput, rng: random.Random) -> CharacterProfileOutput:
    context = data.story_context or ""
    own = TextAnalysis(data.description, [data.name])
    world = TextAnalysis(f"{data.description}\n\n{context}", [data.name])
    summary = " ".join(own.summary(2))
    if data.role:
        summary = f"{data.name} is the story's {data.role}. {summary}"
    personality = _unique([*data.traits, *own.traits()])
    defaults = list(_ROLE_TRAITS.get((data.role or "").lower(), _DEFAULT_TRAITS))
    rng.shuffle(defaults)
    personality = _unique([*personality, *defaults])[: max(3, len(personality))]
    looks = [s.text for s in own.sentences if set(s.words) & APPEARANCE_WORDS]
    things = [word for word in own.keywords(12, names=False) if word not in TRAITS][:6] or ["past"]
    appearance = " ".join(looks[:3]) or (
        f"Not described in the material; visual cues from it: {', '.join(things[:3])}."
    )
    motives = []
    for sentence in [*own.sentences, *world.sentences_mentioning(data.name.split()[0])]:
        match = MOTIVE_CUE.search(sentence.text)
        if match:
            motives.append(sentence_case(shorten(sentence.text[match.start() :].rstrip(". "), 200)))
    if not motives:
        templates = rng.sample(_MOTIVE_TEMPLATES, k=2)
        motives = [
            template.format(thing=thing) for template, thing in zip(templates, things, strict=False)
        ]
    relationships = []
    own_parts = {part.lower() for part in data.name.split()}
    for other in world.character_names():
        if own_parts & {part.lower() for part in other.split()}:
            continue
        shared = [s for s in world.sentences if _names_in(s.text, [other])]
        text = shared[0].text if shared else other
        lowered = f" {text.lower()} "
        relation = next((word for word in RELATION_WORDS if f" {word} " in lowered), None)
        described = relation or shorten(world.best_clause(shared[0]) if shared else text, 200)
        relationships.append(Relationship(character=other[:80], relationship=described))
    voice = (
        f"{sentence_case(personality[0])} and {personality[1]}; speaks in "
        f"{rng.choice(_VOICE_PATTERNS)}, and keeps coming back to {' and '.join(things[:2])}."
    )
    sample = quotes(f"{data.description} {context}")
    if sample:
        voice += f' Sample line: "{shorten(sample[0], 160)}"'
    return CharacterProfileOutput(
        name=data.name,
        summary=shorten(summary, 3000),
        personality=personality[:20],
        appearance=shorten(appearance, 2000),
        motivations=_unique(motives)[:5],
        relationships=relationships[:20],
        voice=shorten(voice, 1000),
    )


# -- panel descriptions ------------------------------------------------------------------------

_ANGLES = ("eye level", "low angle", "high angle", "slight dutch angle")
_LENSES = {
    ShotType.ESTABLISHING: "wide lens, deep focus, the whole setting in frame",
    ShotType.WIDE: "24mm, full figures in their surroundings",
    ShotType.MEDIUM: "50mm, framed from the waist up",
    ShotType.MEDIUM_CLOSE_UP: "chest up, 85mm",
    ShotType.CLOSE_UP: "85mm, face filling the frame, shallow depth of field",
    ShotType.EXTREME_CLOSE_UP: "macro, eyes or hands filling the frame",
    ShotType.OVER_THE_SHOULDER: "over the listener's shoulder toward the speaker",
    ShotType.POINT_OF_VIEW: "through the character's eyes",
    ShotType.INSERT: "tight on the object, background soft",
}


def _beats(doc: TextAnalysis, count: int) -> list[str]:
    """The scene cut into `count` beats in order: sentences grouped evenly; with too few
    sentences the longest are cut at their clauses; with too few clauses the last repeats
    (as a reaction panel)."""
    units = [s.text for s in doc.sentences] or [doc.text]
    while len(units) < count:
        longest = max(range(len(units)), key=lambda i: len(clauses(units[i])))
        parts = clauses(units[longest])
        if len(parts) < 2:
            break
        units[longest : longest + 1] = [sentence_case(part) + "." for part in parts]
    if len(units) >= count:
        bounds = [round(i * len(units) / count) for i in range(count + 1)]
        return [" ".join(units[bounds[i] : bounds[i + 1]]) for i in range(count)]
    return units + [units[-1]] * (count - len(units))


def _shot(position: int, count: int, beat: str, speakers: int, rng: random.Random) -> ShotType:
    words = set(re.findall(r"\w+", beat.lower()))
    if position == 0:
        return ShotType.ESTABLISHING
    spoken = bool(quotes(beat))
    if position == count - 1 and count > 2:
        return ShotType.CLOSE_UP if spoken else rng.choice([ShotType.CLOSE_UP, ShotType.WIDE])
    if spoken:
        options = [ShotType.OVER_THE_SHOULDER, ShotType.MEDIUM] if speakers > 1 else [
            ShotType.MEDIUM_CLOSE_UP, ShotType.CLOSE_UP]  # fmt: skip
    elif words & ACTION_WORDS:
        options = [ShotType.WIDE, ShotType.MEDIUM]
    elif words & OBJECT_WORDS:
        options = [ShotType.INSERT, ShotType.EXTREME_CLOSE_UP]
    else:
        options = [ShotType.MEDIUM, ShotType.MEDIUM_CLOSE_UP, ShotType.POINT_OF_VIEW]
    return rng.choice(options)


def describe_panels(data: PanelDescriptionInput, rng: random.Random) -> PanelDescriptionOutput:
    doc = TextAnalysis(data.scene_text, data.characters)
    names = doc.character_names()
    beats = _beats(doc, data.panel_count)
    result: list[Panel] = []
    for position, beat in enumerate(beats):
        repeat = position > 0 and beat == beats[position - 1]
        present = _names_in(beat, names)
        shot = _shot(position, len(beats), beat, len(present), rng)
        description = beat
        if repeat:
            shot = ShotType.CLOSE_UP
            description = f"Reaction: {' and '.join(present) or 'the scene'} in the moment after."
        elif position == 0 and doc.places():
            description = f"{doc.places()[0]}. {beat}"
        if data.style:
            description += f" Drawn in {data.style}."
        spoken = quotes(beat)
        result.append(
            Panel(
                index=position + 1,
                shot=shot,
                description=shorten(description, 2000),
                characters=present[:20],
                dialogue_hint=shorten(spoken[0], 500) if spoken and not repeat else None,
                camera=f"{rng.choice(_ANGLES)}, {_LENSES[shot]}",
            )
        )
    return PanelDescriptionOutput(panels=result)


# -- dialogue ----------------------------------------------------------------------------------

# Per tone: openers | replies, one template a "|". {topic} and {thing} are the situation's
# topics, {other} the person spoken to; {Topic}/{Thing} start a sentence.
_TEMPLATES: dict[DialogueTone, tuple[str, str]] = {
    DialogueTone.NEUTRAL: (
        "{other}, we need to talk about {topic}.|So. {Topic}. Where do we start?|I've been "
        "thinking about {topic}, {other}.",
        "Then let's start with {thing}.|{Topic} can wait. {Thing} can't.|I hear you. What about"
        " {thing}?|Fine. But {thing} changes things.|Let's be careful with {thing}.",
    ),
    DialogueTone.DRAMATIC: (
        "Everything comes down to {topic}, {other}.|If {topic} falls, we all fall with it.|You "
        "don't understand what {topic} means to me.",
        "Then tell me what {thing} is to you!|I gave up everything for {thing}.|No. Not "
        "{thing}. Not now.|This ends tonight, with {thing}.|You'd throw away {thing} for this?",
    ),
    DialogueTone.HUMOROUS: (
        "Quick question, {other}: why is it always {topic}?|Good news: {topic}. Bad news: also "
        "{topic}.|I had one job, {other}, and it was {topic}.",
        "In my defence, {thing} started it.|Sure, add {thing} to the list of bad ideas.|You "
        "call that a plan? I call it {thing}.|I'm not panicking. {Thing} is panicking.|Next "
        "time, you handle {thing}.",
    ),
    DialogueTone.TENSE: (
        "Keep your voice down, {other}. They know about {topic}.|Don't move. {Topic}.|We have "
        "minutes, not hours. {Topic}, now.",
        "Then we leave {thing} behind.|If they find {thing}, we're finished.|Listen. Did you "
        "hear that?|Trust me on {thing}. Just this once.|No time for {thing}. Move!",
    ),
    DialogueTone.ROMANTIC: (
        "{other}... about {topic}. I meant every word.|Stay. Just until {topic} is over.|I keep"
        " thinking about you and {topic}.",
        "Then don't let {thing} come between us.|I'd face {thing} again, if it's with you.|You "
        "always made {thing} feel smaller.|Say it again. Slowly.|Whatever {thing} brings, we "
        "face it together.",
    ),
    DialogueTone.HOPEFUL: (
        "We can still fix {topic}, {other}.|Look: {topic}. It's not over yet.|Maybe {topic} is "
        "where it turns around.",
        "Then we start with {thing}.|If {thing} worked once, it can work again.|I want to "
        "believe that.|Together, {thing} doesn't stand a chance.|Tomorrow, {thing}. Tonight, we"
        " rest.",
    ),
    DialogueTone.MELANCHOLIC: (
        "It was never about {topic}, was it, {other}?|I keep coming back to {topic}.|We lost so"
        " much to {topic}.",
        "{Thing} is all that's left.|I know. I miss it too.|Some days {thing} is all I "
        "remember.|Let it go, {other}. Please.|Maybe {thing} was the price.",
    ),
    DialogueTone.ANGRY: (
        "You lied to me about {topic}, {other}!|Don't you dare bring up {topic}.|I'm done "
        "covering for {topic}.",
        "And whose fault is {thing}?|Say that again. I dare you.|You don't get to decide "
        "{thing}!|Fine! Keep {thing}. Keep all of it.|Get out of my way, {other}.",
    ),
}
_MOOD_TONES = {
    "tense": DialogueTone.TENSE,
    "mysterious": DialogueTone.TENSE,
    "melancholic": DialogueTone.MELANCHOLIC,
    "joyful": DialogueTone.HUMOROUS,
    "romantic": DialogueTone.ROMANTIC,
    "angry": DialogueTone.ANGRY,
    "triumphant": DialogueTone.HOPEFUL,
    "calm": DialogueTone.NEUTRAL,
}


def write_dialogue(data: DialogueInput, rng: random.Random) -> DialogueOutput:
    doc = TextAnalysis(data.situation, data.characters)
    topics = [_noun(t) for t in doc.topics(8) or doc.keywords(8, names=False) or ["this"]]
    if data.tone is not None:
        tones = [data.tone] * data.options
    else:
        # The situation's own mood first, then other tones for contrast.
        first = _MOOD_TONES.get(doc.mood(), DialogueTone.DRAMATIC)
        others = [tone for tone in DialogueTone if tone != first]
        tones = [first, *rng.sample(others, k=data.options - 1)]
    people = data.characters
    options = []
    for number, tone in enumerate(tones):
        openers, replies = (part.split("|") for part in _TEMPLATES[tone])
        picks = rng.sample(replies, k=min(len(replies), data.lines_per_option - 1))
        picks += rng.choices(replies, k=data.lines_per_option - 1 - len(picks))
        lines = [rng.choice(openers), *picks]
        start = (number + rng.randrange(len(people))) % len(people)
        offset = rng.randrange(len(topics))
        spoken = []
        for line_number, template in enumerate(lines):
            speaker = people[(start + line_number) % len(people)]
            addressee = people[(start + line_number + 1) % len(people)]
            topic = topics[offset % len(topics)]
            thing = topics[(offset + line_number) % len(topics)]
            text = template.format(
                topic=topic, Topic=sentence_case(topic), thing=thing, Thing=sentence_case(thing),
                other=addressee if addressee != speaker else "you",
            )  # fmt: skip
            spoken.append(DialogueLine(character=speaker, text=shorten(text, 1000)))
        options.append(DialogueOption(tone=tone.value, lines=spoken))
    return DialogueOutput(options=options)


# -- chapter outline ---------------------------------------------------------------------------

# Beats by position in the chapter (up to a fraction of it); their templates fill the scenes
# the synopsis says nothing of.
_STRUCTURE = (
    (0.15, "Opening", "{lead} is drawn into {phrase}."),
    (0.4, "Complication", "{phrase} turns out to be bigger than {lead} thought."),
    (0.65, "Rising stakes", "{lead} pushes deeper into {phrase}, and {other} pays for it."),
    (0.9, "Crisis", "Everything {lead} built around {phrase} starts to fall apart."),
    (1.01, "Turn", "{lead} makes a choice about {phrase} that changes what comes next."),
)


def outline_chapter(data: ChapterOutlineInput, rng: random.Random) -> ChapterOutlineOutput:
    source = data.synopsis or data.premise
    history = " ".join(data.previous_chapters)
    doc = TextAnalysis(source, data.characters)
    everything = TextAnalysis(f"{data.premise}\n\n{source}\n\n{history}", data.characters)
    names = everything.character_names()
    leads = names or ["the protagonist"]
    phrases = doc.key_phrases(data.scene_count + 5, names=False) or doc.keywords(5) or ["it"]
    units = [s.text for s in doc.sentences]
    count = data.scene_count
    # Sentences in order over the scenes: grouped when there are more, spread when fewer.
    chunks = [""] * count
    if len(units) >= count:
        bounds = [round(i * len(units) / count) for i in range(count + 1)]
        chunks = [" ".join(units[bounds[i] : bounds[i + 1]]) for i in range(count)]
    else:
        for number, unit in enumerate(units):
            chunks[number * count // len(units)] = unit
    scenes = []
    for position, chunk in enumerate(chunks):
        fraction = position / (count - 1) if count > 1 else 1.0
        beat, template = next((n, t) for limit, n, t in _STRUCTURE if fraction < limit)
        phrase = phrases[position % len(phrases)]
        present = _names_in(chunk, names) if chunk else []
        lead = present[0] if present else leads[position % min(2, len(leads))]
        if not chunk:
            others = [name for name in leads if name != lead] or ["someone close"]
            chunk = template.format(lead=lead, other=rng.choice(others), phrase=_noun(phrase))
            chunk = sentence_case(chunk)
        if position == 0 and data.previous_chapters:
            last = TextAnalysis(data.previous_chapters[-1]).sentences
            if last:
                chunk = f"Picking up from the last chapter ({last[-1].text.rstrip('.')}): {chunk}"
        scene_phrases = TextAnalysis(chunk, names).topics(5) or [phrase]
        scenes.append(
            OutlineScene(
                index=position + 1,
                title=shorten(f"{beat}: {title_case(scene_phrases[0])}", 200),
                summary=shorten(chunk, 2000),
                characters=(present or [lead] if names else [])[:20],
            )
        )
    ranked = doc.ranked_sentences()
    logline = ranked[0].text if ranked else data.premise
    top = phrases[0]
    title = data.title or title_case(f"the {top}" if top.isascii() and top[:1].islower() else top)
    if data.chapter_number and not data.title:
        title = f"Chapter {data.chapter_number}: {title}"
    return ChapterOutlineOutput(
        title=shorten(title, 200), logline=shorten(logline, 600), scenes=scenes
    )


# -- visual prompt -----------------------------------------------------------------------------

_COLOURS = {
    "black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128),
    "crimson": (190, 30, 45), "red": (230, 50, 40), "orange": (240, 130, 30),
    "amber": (255, 190, 0), "gold": (212, 175, 55), "yellow": (245, 220, 60),
    "olive": (128, 128, 0), "green": (40, 160, 80), "teal": (0, 128, 128),
    "cyan": (0, 190, 220), "sky blue": (135, 206, 235), "blue": (40, 90, 230),
    "navy": (0, 31, 63), "indigo": (75, 0, 130), "purple": (142, 68, 173),
    "magenta": (200, 30, 130), "pink": (245, 160, 190), "brown": (120, 80, 60),
    "beige": (230, 220, 190), "charcoal": (54, 69, 79), "cream": (255, 250, 220),
}  # fmt: skip
_LIGHTING = {
    "tense": ("hard rim light", "harsh sodium streetlight", "deep shadows"),
    "mysterious": ("fog-diffused light", "single lantern glow", "moonlit haze"),
    "melancholic": ("overcast light", "rain-soaked reflections", "cold blue hour"),
    "joyful": ("bright morning sun", "warm golden hour", "soft bounce light"),
    "romantic": ("warm candlelight", "golden hour backlight", "soft bokeh lights"),
}
_QUALITY = ("highly detailed", "clean line art", "sharp focus", "dynamic composition")
_NEGATIVE = ("blurry", "low quality", "distorted", "watermark", "signature", "text")


def colour_name(hex_colour: str) -> str:
    """The nearest named colour to `#rgb` or `#rrggbb`."""
    digits = hex_colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    rgb = tuple(int(digits[i : i + 2], 16) for i in (0, 2, 4))
    return min(
        _COLOURS,
        key=lambda name: sum((a - b) ** 2 for a, b in zip(rgb, _COLOURS[name], strict=True)),
    )


def compose_visual_prompt(data: VisualPromptInput, rng: random.Random) -> VisualPromptOutput:
    doc = TextAnalysis(data.description, data.characters)
    ranked = doc.ranked_sentences()
    subject = ranked[0].text.rstrip(" .!") if ranked else data.description
    names = data.characters or doc.character_names()[:3]
    location = data.location or next(iter(doc.places()), None)
    mood = data.mood or doc.mood()
    style = data.style or "graphic novel illustration"
    parts = [shorten(subject, 200), *(f"featuring {name}" for name in names[:3])]
    if location:
        parts.append(f"set in {location}")
    parts += [p for p in doc.key_phrases(6, names=False) if p.lower() not in subject.lower()]
    parts += [f"{style} style", f"{mood} mood" if mood != "neutral" else ""]
    parts.append(rng.choice(_LIGHTING.get(mood, ("cinematic lighting", "soft diffused light"))))
    palette = [colour.lower() for colour in data.palette]
    if palette:
        parts.append("colour palette of " + " and ".join(_unique(map(colour_name, palette))))
    parts += rng.sample(_QUALITY, k=2)
    negative = _unique([*_NEGATIVE, "extra limbs", "deformed hands", *data.avoid])
    return VisualPromptOutput(
        prompt=shorten(", ".join(_unique(parts)), 2000),
        negative_prompt=shorten(", ".join(negative), 1000),
        style=style,
        palette=palette,
        aspect_ratio=data.aspect.value,
    )


# -- the provider ------------------------------------------------------------------------------

_GENERATORS: dict[TaskType, tuple[Callable[[Any, random.Random], TaskOutput], str]] = {
    TaskType.SCENE_SUMMARY: (summarise_scene, "extractive-summary+tf-keywords+lexicon-mood"),
    TaskType.CHARACTER_PROFILE: (profile_character, "extractive-profile+trait-lexicon"),
    TaskType.PANEL_DESCRIPTION: (describe_panels, "beat-segmentation+positional-shots"),
    TaskType.DIALOGUE: (write_dialogue, "tone-templates+key-phrases"),
    TaskType.CHAPTER_OUTLINE: (outline_chapter, "sentence-distribution+story-structure"),
    TaskType.VISUAL_PROMPT: (compose_visual_prompt, "key-phrase-prompt"),
}


def _texts(value: Any) -> Iterable[str]:
    """Every string inside a JSON value, in order."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def _material(data: TaskInput) -> TaskInput:
    """The input without its directions (`INSTRUCTIONS_LABEL` blocks): this provider cannot
    follow them, and must not take them for story. An optional field that held nothing else
    is left out; a required one keeps its text."""
    changes: dict[str, Any] = {}
    for name, value in data:
        if isinstance(value, str) and INSTRUCTIONS_LABEL in value:
            material = material_of(value)
            if material:
                changes[name] = material
            elif not type(data).model_fields[name].is_required():
                changes[name] = None
    return data.model_copy(update=changes) if changes else data


def derive_seed(request: TextRequest) -> int:
    """A seed from the request's content, so an unseeded request is still repeatable."""
    content = [request.task, request.system, request.prompt, request.inputs, request.output_schema]
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:4], "big")


def generate(request: TextRequest, seed: int) -> tuple[dict[str, Any] | str, str]:
    """The answer to `request` and how it was made (CPU work: call it in a thread)."""
    rng = random.Random(seed)  # noqa: S311 - creative choices, not security
    if request.task in set(TaskType):
        task = TaskType(request.task)
        generator, method = _GENERATORS[task]
        try:
            data = TASKS[task].input_model.model_validate(request.inputs)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "inputs"
            raise ProviderRejected(
                f"invalid {task} input '{where}': {first['msg']}", provider=PROVIDER
            ) from None
        return generator(_material(data), rng).model_dump(mode="json"), method
    text = "\n\n".join(_texts(request.inputs)) or request.prompt
    if request.output_schema is not None:
        filler = SchemaFiller(request.output_schema, TextAnalysis(text), rng)
        return filler.fill(request.output_schema), "schema-fill+key-phrases"
    doc = TextAnalysis(f"{request.prompt}\n\n{text}" if request.inputs else request.prompt)
    answer = " ".join(doc.summary(5)) or ", ".join(doc.keywords(10))
    return answer, "extractive-summary"


class LocalTextProvider:
    """Deterministic offline text provider (`TEXT_PROVIDER=local`)."""

    name = PROVIDER
    model = "local-nlp-1"

    def __init__(self) -> None:
        pass  # nothing to configure: no keys, no network, no model files

    async def complete(self, request: TextRequest) -> TextResult:
        seed = request.seed if request.seed is not None else derive_seed(request)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(request.timeout):
                output, method = await asyncio.to_thread(generate, request, seed)
        except TimeoutError:
            raise ProviderTimeout(
                f"local text generation took longer than {request.timeout} s", provider=PROVIDER
            ) from None
        asked = " ".join([request.system, request.prompt, *_texts(request.inputs)])
        answer = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
        return TextResult(
            output=output,
            provider=self.name,
            model=self.model,
            usage=Usage(input_tokens=count_tokens(asked), output_tokens=count_tokens(answer)),
            duration_ms=(time.perf_counter() - started) * 1000,
            seed=seed,
            metadata={"local": True, "method": method},
        )

    async def aclose(self) -> None:
        """Nothing to release: the provider holds no connections or files."""
