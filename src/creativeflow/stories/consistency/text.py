"""Text inconsistencies of panels: pure functions, no I/O.

Names are found whole-word and case-insensitively: "Mara" is in "mara's lamp" and "MARA!",
not in "Marathon"; a word is what `\\w` matches (letters and digits of any script), and a
name's own spaces match any run of whitespace. Of two names where one contains the other
("Mara", "Mara Lee"), the longer wins where both could match. Names glued to a Korean
particle ("미나는") are not whole words and are not found.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

_SPACES = r"\s+"


@dataclass(frozen=True, slots=True)
class Named:
    id: uuid.UUID
    name: str


class NameFinder:
    """Finds which of some names a text mentions."""

    def __init__(self, entries: Iterable[Named]) -> None:
        self.entries = sorted(
            (entry for entry in entries if entry.name.strip()),
            key=lambda entry: (-len(entry.name), entry.name),
        )
        if self.entries:
            alternatives = "|".join(
                "(" + _SPACES.join(re.escape(word) for word in entry.name.split()) + ")"
                for entry in self.entries
            )
            self.pattern: re.Pattern[str] | None = re.compile(
                rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE
            )
        else:
            self.pattern = None

    def find(self, text: str | None) -> list[Named]:
        """The names the text mentions, each once, in order of first mention."""
        if not text or self.pattern is None:
            return []
        found: dict[uuid.UUID, Named] = {}
        for match in self.pattern.finditer(text):
            entry = self.entries[(match.lastindex or 1) - 1]
            found.setdefault(entry.id, entry)
        return list(found.values())


@dataclass(frozen=True, slots=True)
class PanelText:
    description: str | None
    dialogue: Sequence[dict[str, Any]]
    cast: frozenset[uuid.UUID]
    location_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    field: str
    message: str
    character_id: uuid.UUID | None = None
    location_id: uuid.UUID | None = None


def _speaker(bubble: dict[str, Any]) -> uuid.UUID | str | None:
    """The bubble's speaker id (a UUID), None without one, or the text when it is no id."""
    value = bubble.get("speaker_id")
    if value is None or value == "":
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return str(value)


def panel_findings(
    panel: PanelText,
    *,
    characters: NameFinder,
    locations: NameFinder,
    project_characters: dict[uuid.UUID, str],
    location_names: dict[uuid.UUID, str],
    checked: frozenset[uuid.UUID],
) -> Iterator[Finding]:
    """A panel's text inconsistencies, description first, then bubble by bubble.

    UNKNOWN_SPEAKER: a bubble's speaker is not one of the project's characters, or is one of
    the `checked` characters not cast in the panel. NAMED_NOT_IN_PANEL: a `checked` character
    named in a bubble's text and not cast in the panel (once per panel). LOCATION_MISMATCH:
    the description or a bubble names a location of the project other than the panel's own
    (once per location and panel)."""
    own = location_names.get(panel.location_id) if panel.location_id else None
    named_locations: set[uuid.UUID] = set()
    named_characters: set[uuid.UUID] = set()

    def mismatches(text: str | None, field: str) -> Iterator[Finding]:
        for place in locations.find(text):
            if place.id == panel.location_id or place.id in named_locations:
                continue
            named_locations.add(place.id)
            where = f"is set at {own!r}" if own else "has no location"
            yield Finding(
                "LOCATION_MISMATCH",
                field,
                f"The {field.split('[')[0]} names {place.name!r}, but the panel {where}",
                location_id=place.id,
            )

    yield from mismatches(panel.description, "description")
    for index, bubble in enumerate(panel.dialogue):
        text = str(bubble.get("text") or "")
        speaker = _speaker(bubble)
        field = f"dialogue[{index}]"
        if isinstance(speaker, str) or (speaker is not None and speaker not in project_characters):
            yield Finding(
                "UNKNOWN_SPEAKER",
                f"{field}.speaker_id",
                f"Bubble {index + 1}'s speaker is not a character of the project",
            )
        elif speaker is not None and speaker in checked and speaker not in panel.cast:
            yield Finding(
                "UNKNOWN_SPEAKER",
                f"{field}.speaker_id",
                f"Bubble {index + 1} is spoken by {project_characters[speaker]!r}, "
                "who is not in the panel",
                character_id=speaker,
            )
        for person in characters.find(text):
            if (
                person.id in checked
                and person.id not in panel.cast
                and person.id not in named_characters
            ):
                named_characters.add(person.id)
                yield Finding(
                    "NAMED_NOT_IN_PANEL",
                    f"{field}.text",
                    f"Bubble {index + 1} names {person.name!r}, who is not in the panel",
                    character_id=person.id,
                )
        yield from mismatches(text, f"{field}.text")
