"""A scene's text and a `panel_description` answer made into panels: pure functions, no I/O.

What the text provider describes is kept as it said it; everything else is decided here, the
same way whichever provider answered:

- `shot`: the task's shot on the content model's `Shot` (a medium close-up is a medium shot;
  anything else unknown is null); `camera_angle` from the camera text (eye level, low, high,
  bird's-eye, worm's-eye, dutch), the whole camera text kept in the panel's notes.
- `character_ids`: the project's characters named (whole word, any case; a first name alone
  when no other character shares it) in the panel's description or its characters list, then
  the speakers of its bubbles.
- `location_id`: a project location named in the panel, else the panel before's (a scene
  stays where it is until the text moves it), else the scene's most common panel location,
  else a location the text names anywhere, else null.
- `dialogue`: the text's lines, in order: script lines (`NAME: text`, `Name (thinking):`,
  `Caption:`, `SFX:`) and quoted speech (`"..."`, `“...”`), the speaker being the script name
  or the name beside a speech verb around the quote ("said Mara", "Mara asked"). A speaker who
  is a project character is the bubble's `speaker_id`; another name starts the bubble's text
  ("Oru: ..."). Each line goes to the first panel (from the previous line's on) whose
  description holds it, else to the panel at its place in the text.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from creativeflow.stories.consistency.text import Named, NameFinder
from creativeflow.stories.content.models import BubbleKind, CameraAngle, Shot

MAX_PANELS = 12
MAX_BUBBLES = 50  # a panel's limit (content schemas)
BUBBLE_LENGTH = 2000
NOTES_PREFIX = "Camera: "

_SHOTS = {shot.value: shot for shot in Shot} | {"medium_close_up": Shot.MEDIUM}
_ANGLES = (
    (re.compile(r"\bbird'?s?[- ]?eye|\boverhead|\btop[- ]down", re.I), CameraAngle.BIRDS_EYE),
    (re.compile(r"\bworm'?s?[- ]?eye", re.I), CameraAngle.WORMS_EYE),
    (re.compile(r"\bdutch|\bcanted|\btilted", re.I), CameraAngle.DUTCH),
    (re.compile(r"\blow[- ]angle", re.I), CameraAngle.LOW),
    (re.compile(r"\bhigh[- ]angle", re.I), CameraAngle.HIGH),
    (re.compile(r"\beye[- ]level", re.I), CameraAngle.EYE_LEVEL),
)
_SPEECH_VERBS = (
    "said|says|asked|asks|replied|replies|answered|answers|whispered|whispers|shouted|shouts|"
    "yelled|yells|cried|cries|called|calls|muttered|mutters|murmured|murmurs|added|adds|"
    "snapped|snaps|growled|growls|screamed|screams|told|tells|began|begins|continued|"
    "continues|insisted|insists|warned|warns|demanded|demands|laughed|laughs|sighed|sighs|"
    "thought|thinks|wondered|wonders"
)
_THINKING = {"thought", "thinks", "wondered", "wonders"}
_PRONOUNS = {"he", "she", "they", "i", "we", "you", "it", "someone", "everyone", "nobody"}
_NAME = (
    r"(?:(?:Dr|Mr|Mrs|Ms|Mx|St|Capt|Prof)\.[ \t]+)?"
    r"[A-Z][\w'\u2019-]*(?:[ \t]+[A-Z][\w'\u2019-]*){0,2}"
)
_AFTER = re.compile(
    rf"^[\s,]*(?:(?P<verb>{_SPEECH_VERBS})[ \t]+(?P<name>{_NAME})"
    rf"|(?P<name2>{_NAME})[ \t]+(?P<verb2>{_SPEECH_VERBS}))\b"
)
_BEFORE = re.compile(rf"(?P<name>{_NAME})[ \t]+(?P<verb>{_SPEECH_VERBS})[ \t]*[,:]?[ \t]*$")
_QUOTE = re.compile(r"[\"“]([^\"“”]{1,2000}?)[\"”]")
_SCRIPT = re.compile(
    r"^[ \t]*(?P<name>[A-Z][\w'\u2019.-]*(?:[ \t]+[\w'\u2019.-]+){0,2}?)[ \t]*"
    r"(?:\((?P<aside>[^)]{1,30})\))?[ \t]*:[ \t]+(?P<text>\S.*)$"
)
# Labels that start a line like a speaker does but are not one (the scene text's own
# "Notes:", a script's headings).
_NOT_SPEAKERS = {
    "notes", "note", "scene", "chapter", "setting", "time", "location", "summary", "int",
    "ext", "instructions", "panel", "page", "title", "later", "meanwhile",
}  # fmt: skip
_LABELS = {"caption": BubbleKind.CAPTION, "sfx": BubbleKind.SFX, "thought": BubbleKind.THOUGHT}


# -- names ---------------------------------------------------------------------------------------


def name_finder(entries: Iterable[tuple[uuid.UUID, str]]) -> NameFinder:
    """A finder of the names, and of each name's first word where no other entry shares it
    (`Mara` for `Mara Lee`)."""
    named = [Named(entry_id, name) for entry_id, name in entries if name.strip()]
    firsts: dict[str, set[uuid.UUID]] = {}
    for entry in named:
        words = entry.name.split()
        if len(words) > 1 and len(words[0]) > 2:
            firsts.setdefault(words[0].casefold(), set()).add(entry.id)
    full = {entry.name.casefold() for entry in named}
    aliases = [
        Named(entry.id, entry.name.split()[0])
        for entry in named
        if len(entry.name.split()) > 1
        and len(firsts.get(entry.name.split()[0].casefold(), ())) == 1
        and entry.name.split()[0].casefold() not in full
    ]
    return NameFinder([*named, *aliases])


def _whole(finder: NameFinder, name: str) -> uuid.UUID | None:
    """The entry `name` is (all of it), if any."""
    for entry in finder.find(name):
        if re.fullmatch(r"\s*".join(map(re.escape, entry.name.split())), name.strip(), re.I):
            return entry.id
    return None


# -- panel count -------------------------------------------------------------------------------


def paragraphs(text: str) -> list[str]:
    return [block.strip() for block in re.split(r"\n\s*\n", text) if block.strip()]


def default_panel_count(text: str) -> int:
    """One panel per paragraph; a text of one paragraph, one per two sentences (at least
    one, at most 12)."""
    blocks = paragraphs(text)
    if len(blocks) == 1:
        sentences = re.findall(r"[^.!?…]+[.!?…]+[\"'”\u2019)]*|[^.!?…]+$", blocks[0])
        count = math.ceil(len([s for s in sentences if s.strip()]) / 2)
    else:
        count = len(blocks)
    return max(1, min(MAX_PANELS, count))


# -- dialogue ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """A line of dialogue found in the text: where it starts, its kind, its words and who
    says it (`speaker_id` when they are a project character, else maybe their name)."""

    offset: int
    kind: BubbleKind
    text: str
    speaker_id: uuid.UUID | None = None
    speaker_name: str | None = None

    def bubble(self) -> dict[str, Any]:
        text = self.text
        if self.speaker_id is None and self.speaker_name:
            text = f"{self.speaker_name}: {text}"
        return {
            "kind": self.kind.value,
            "text": text[:BUBBLE_LENGTH],
            "speaker_id": None if self.speaker_id is None else str(self.speaker_id),
        }


def _speaker(name: str | None, finder: NameFinder) -> tuple[uuid.UUID | None, str | None]:
    """A speaker's character id (the name, or the one character named in it: "Then Mara")
    and the name as written."""
    if not name or name.casefold() in _PRONOUNS:
        return None, None
    speaker_id = _whole(finder, name)
    if speaker_id is None:
        inside = finder.find(name)
        if len(inside) == 1:
            return inside[0].id, inside[0].name
    return speaker_id, name


def _script_line(line: str, offset: int, finder: NameFinder) -> Line | None:
    match = _SCRIPT.match(line)
    if match is None:
        return None
    name, aside = match["name"].strip(), (match["aside"] or "").strip().casefold()
    text = match["text"].strip().strip('"“”').strip()
    if not text:
        return None
    label = name.casefold()
    if label in _LABELS:
        return Line(offset, _LABELS[label], text)
    if label in _NOT_SPEAKERS:  # "Notes: MARA: I am here." holds a line after its label
        return _script_line(match["text"], offset + match.start("text"), finder)
    speaker_id = _whole(finder, name)
    # An unknown name counts as a speaker in a screenplay's capitals ("ORU:") only; "Warning:
    # the bridge is out" is prose.
    if speaker_id is None and not (name.isupper() and len(name) > 1):
        return None
    kind = BubbleKind.THOUGHT if aside.startswith("think") else BubbleKind.SPEECH
    shown = name if speaker_id is not None or not name.isupper() else name.title()
    return Line(offset, kind, text, speaker_id, shown)


def _quoted(block: str, offset: int, finder: NameFinder) -> list[Line]:
    """The quotes of a block of prose. A quote with no speaker beside a speech verb is the
    one character the sentence of narration before it (in its paragraph) names, or else
    continues the quote before it in the same paragraph (`"Wait," Mara said. "Listen."`)."""
    found: list[Line] = []
    previous_end = 0
    for match in _QUOTE.finditer(block):
        text = " ".join(match[1].split())
        if not text:
            continue
        if text.endswith(","):  # `"We go," she said.`: the bubble ends the sentence
            text = text[:-1] + "."
        after = _AFTER.match(block[match.end() : match.end() + 80])
        before = _BEFORE.search(block[max(previous_end, match.start() - 80) : match.start()])
        name, verb = None, None
        if after is not None:
            name = after["name"] or after["name2"]
            verb = after["verb"] or after["verb2"]
            if name and name.casefold() in _PRONOUNS:
                name = None
        if name is None and before is not None and before["name"].casefold() not in _PRONOUNS:
            name, verb = before["name"], before["verb"]
        speaker_id, speaker_name = _speaker(name, finder)
        kind = BubbleKind.THOUGHT if verb and verb.lower() in _THINKING else BubbleKind.SPEECH
        if name is None:
            between = block[previous_end : match.start()]
            paragraph = re.split(r"\n\s*\n", between)[-1]
            sentences = [part for part in re.split(r"(?<=[.!?…])\s+", paragraph) if part.strip()]
            beat = finder.find(sentences[-1] if sentences else "")
            if len(beat) == 1:  # an action beat: `Jonah frowned. "What?"`
                speaker_id, speaker_name = beat[0].id, beat[0].name
            elif found and paragraph == between and not beat:
                last = found[-1]
                speaker_id, speaker_name, kind = last.speaker_id, last.speaker_name, last.kind
        found.append(Line(offset + match.start(), kind, text, speaker_id, speaker_name))
        previous_end = match.end()
    return found


def dialogue_lines(text: str, characters: NameFinder) -> list[Line]:
    """The text's dialogue in order: script lines, and quotes in the prose between them (a
    quote may run over a line break)."""
    lines: list[Line] = []
    prose: list[str] = []
    prose_start = 0
    offset = 0

    def flush() -> None:
        if prose:
            lines.extend(_quoted("\n".join(prose), prose_start, characters))
            prose.clear()

    for raw in text.split("\n"):
        scripted = _script_line(raw, offset, characters)
        if scripted is not None:
            flush()
            lines.append(scripted)
        else:
            if not prose:
                prose_start = offset
            prose.append(raw)
        offset += len(raw) + 1
    flush()
    return lines


# -- panels --------------------------------------------------------------------------------------


@dataclass
class Cast:
    """The project's characters and locations as the storyboard finds them."""

    characters: list[tuple[uuid.UUID, str]]
    locations: list[tuple[uuid.UUID, str]]
    scene_location_id: uuid.UUID | None = None  # its panels' most common location
    character_finder: NameFinder = field(init=False)
    location_finder: NameFinder = field(init=False)

    def __post_init__(self) -> None:
        self.character_finder = name_finder(self.characters)
        self.location_finder = NameFinder(Named(i, name) for i, name in self.locations)


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[\"“”]", "", text).split()).casefold()


def _panel_of(line: Line, descriptions: Sequence[str], start: int, length: int) -> int:
    needle = _normal(line.text).rstrip(".,!?…")[:60]
    for index in range(start, len(descriptions)):
        if needle and needle in descriptions[index]:
            return index
    at = math.floor(line.offset / max(1, length) * len(descriptions))
    return max(start, min(at, len(descriptions) - 1))


def assign_lines(
    lines: Sequence[Line], descriptions: Sequence[str], length: int
) -> list[list[Line]]:
    """Each panel's lines, in order (at most MAX_BUBBLES a panel: more go to the next)."""
    normal = [_normal(description) for description in descriptions]
    assigned: list[list[Line]] = [[] for _ in descriptions]
    cursor = 0
    for line in lines:
        cursor = _panel_of(line, normal, cursor, length)
        while len(assigned[cursor]) >= MAX_BUBBLES and cursor < len(assigned) - 1:
            cursor += 1
        if len(assigned[cursor]) < MAX_BUBBLES:
            assigned[cursor].append(line)
    return assigned


def camera_angle(camera: str | None) -> CameraAngle | None:
    for pattern, angle in _ANGLES:
        if camera and pattern.search(camera):
            return angle
    return None


def build_panels(output: dict[str, Any], text: str, cast: Cast) -> list[dict[str, Any]]:
    """The storyboard's panels (`PanelCreate` fields, and what was found, kept beside them)
    from a validated `panel_description` output and the scene's text."""
    described = sorted(output.get("panels") or [], key=lambda panel: panel.get("index", 0))
    descriptions = [str(panel.get("description") or "") for panel in described]
    lines = assign_lines(dialogue_lines(text, cast.character_finder), descriptions, len(text))
    named_anywhere = cast.location_finder.find(text)
    carried: uuid.UUID | None = None
    panels = []
    for number, (panel, spoken) in enumerate(zip(described, lines, strict=True), 1):
        description = str(panel.get("description") or "")
        names = [str(name) for name in panel.get("characters") or []]
        found = cast.character_finder.find(" \n".join([description, *names]))
        character_ids = [entry.id for entry in found]
        for line in spoken:
            if line.speaker_id is not None and line.speaker_id not in character_ids:
                character_ids.append(line.speaker_id)
        unmatched = [
            name
            for name in names
            if _whole(cast.character_finder, name) is None
            and _whole(cast.location_finder, name) is None
        ]
        places = cast.location_finder.find(description)
        location_id = (
            places[0].id
            if places
            else carried
            or cast.scene_location_id
            or (named_anywhere[0].id if named_anywhere else None)
        )
        carried = location_id
        shot = _SHOTS.get(str(panel.get("shot") or ""))
        camera = str(panel.get("camera") or "").strip()
        angle = camera_angle(camera)
        panels.append(
            {
                "description": description,
                "shot": None if shot is None else shot.value,
                "camera_angle": None if angle is None else angle.value,
                "mood": None,
                "notes": f"{NOTES_PREFIX}{camera}" if camera else None,
                "character_ids": [str(character_id) for character_id in character_ids],
                "location_id": None if location_id is None else str(location_id),
                "dialogue": [line.bubble() for line in spoken],
                # Beside the panel (selecting ignores them): what the provider said.
                "index": number,
                "characters": names,
                "unmatched_names": unmatched,
                "dialogue_hint": panel.get("dialogue_hint"),
            }
        )
    return panels
