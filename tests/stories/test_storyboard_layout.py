"""A storyboard's layout from a scene's text and a panel_description answer: pure functions."""

from __future__ import annotations

import uuid
from typing import Any

from creativeflow.stories.workflows.storyboard import (
    Cast,
    build_panels,
    camera_angle,
    default_panel_count,
    dialogue_lines,
)

MARA, JONAH, ORU = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
TOWER, HARBOUR = uuid.uuid4(), uuid.uuid4()


def cast(scene_location: uuid.UUID | None = None) -> Cast:
    return Cast(
        characters=[(MARA, "Mara"), (JONAH, "Jonah Reyes"), (ORU, "Captain Oru")],
        locations=[(TOWER, "Lighthouse"), (HARBOUR, "Harbour")],
        scene_location_id=scene_location,
    )


def said(text: str) -> list[tuple[str, str, uuid.UUID | None]]:
    return [
        (line.kind.value, line.bubble()["text"], line.speaker_id)
        for line in dialogue_lines(text, cast().character_finder)
    ]


def test_quoted_speech_takes_its_speaker_from_the_verb_or_the_beat_before_it() -> None:
    text = (
        '"Hold it," Mara said. "Steady."\n'
        'said nobody. "Now," said Jonah. Mara frowned. "Why?"\n\n'
        '"Who is there?" she asked.\n'
        "“Typographer's quotes,” whispered MARA.\n"
        'Jonah thought, "Not again."'
    )
    assert said(text) == [
        ("speech", "Hold it.", MARA),
        ("speech", "Steady.", MARA),  # continues her line in the same paragraph
        ("speech", "Now.", JONAH),  # "Jonah" alone is Jonah Reyes
        ("speech", "Why?", MARA),  # the action beat names her
        ("speech", "Who is there?", None),
        ("speech", "Typographer's quotes.", MARA),
        ("thought", "Not again.", JONAH),
    ]


def test_script_lines_name_their_speaker_and_labels_are_not_speakers() -> None:
    text = (
        "MARA: Hold the light.\n"
        "Jonah Reyes (thinking): She is right.\n"
        "Caption: Midnight.\n"
        "SFX: Crash!\n"
        "NARRATOR: Long ago.\n"
        "Notes: ORU: Who goes there?\n"
        "Warning: the bridge is out."
    )
    assert said(text) == [
        ("speech", "Hold the light.", MARA),
        ("thought", "She is right.", JONAH),
        ("caption", "Midnight.", None),
        ("sfx", "Crash!", None),
        ("speech", "Narrator: Long ago.", None),  # a name in capitals who is not cast
        ("speech", "Oru: Who goes there?", None),  # "ORU" alone is not "Captain Oru"
    ]


def test_the_default_panel_count_follows_paragraphs_or_sentences() -> None:
    assert default_panel_count("One. Two. Three. Four. Five.") == 3
    assert default_panel_count("A.\n\nB.\n\nC.") == 3
    assert default_panel_count("\n\n".join(["Beat."] * 30)) == 12
    assert default_panel_count("Just one") == 1


def test_camera_text_maps_onto_the_panel_angles() -> None:
    assert camera_angle("low angle, 85mm") == "low"
    assert camera_angle("bird's-eye view over the harbour") == "birds_eye"
    assert camera_angle("slight dutch angle") == "dutch"
    assert camera_angle("50mm, waist up") is None


def _panel(
    index: int, shot: str, description: str, characters: list[str], camera: str
) -> dict[str, Any]:
    return {
        "index": index,
        "shot": shot,
        "description": description,
        "characters": characters,
        "camera": camera,
    }


def test_panels_get_shots_cast_locations_and_their_lines_in_order() -> None:
    text = 'At the Harbour, Mara waits.\n\n"Late again," said Jonah.\n\nMARA: Never.'
    output = {
        "panels": [
            _panel(1, "establishing", "The Harbour at dusk.", ["Mara", "Gull"], "high angle, wide"),
            _panel(2, "medium_close_up", "Jonah arrives, grinning.", [], ""),
            _panel(3, "panorama", "Mara turns away.", ["Mara"], "eye level"),
        ]
    }
    first, second, third = build_panels(output, text, cast(scene_location=TOWER))
    assert (first["shot"], second["shot"], third["shot"]) == ("establishing", "medium", None)
    assert first["camera_angle"] == "high" and first["notes"] == "Camera: high angle, wide"
    assert second["notes"] is None and third["camera_angle"] == "eye_level"
    assert first["character_ids"] == [str(MARA)] and first["unmatched_names"] == ["Gull"]
    assert second["character_ids"] == [str(JONAH)]
    # Named in the first panel, carried on: the scene's usual location is the fallback.
    assert {p["location_id"] for p in (first, second, third)} == {str(HARBOUR)}
    assert [b["text"] for b in second["dialogue"]] == ["Late again."]
    assert third["dialogue"] == [{"kind": "speech", "text": "Never.", "speaker_id": str(MARA)}]
    nowhere = build_panels(output | {"panels": output["panels"][1:]}, "Quiet.", cast(TOWER))
    assert {p["location_id"] for p in nowhere} == {str(TOWER)}
