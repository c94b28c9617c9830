"""The six text tasks about a story's things: each task's input gathered from its target.

- `scene_summary` about a scene: its text (title, summary, notes, then its panels'
  descriptions and dialogue lines as "Name: text", in order), its title, the cast's names (the
  scene's own first).
- `panel_description` about a scene: its text, its panel count (4 if none), the style guide's
  art style, the scene's cast (else the project's).
- `dialogue` about a panel: the situation (the panel's description, the scene's summary, the
  instructions), the panel's cast (else the project's protagonists; neither is 422 naming
  `context`), a tone when the panel's or scene's mood names one.
- `visual_prompt` about a panel: its prompt as the prompt builder makes it (description,
  camera, cast with their looks, location, mood, instructions), the style guide's art style,
  palette, aspect ratio and negative prompt (as `avoid`), the cast's names, the location.
- `character_profile` about a character: its name, description and appearance, its
  personality as traits, its role, and the story around it (the project, the chapters so far,
  the scenes it is in, the rest of the cast, the instructions).
- `chapter_outline` about a chapter, or a project (its next chapter): the premise (logline
  and synopsis), the chapters before it, the chapter's title, number and summary, the cast.

The instructions that apply to the target are added, under "Instructions:", to the free-text
field that directs the writing (`situation`, `story_context`, `synopsis`, the visual prompt's
`description`); a scene's text is the material itself and gets none. Every gathered value is
cut to the task's limits (text at a word, lists at their length), so a long story never makes
a request fail.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.identity.principal import Principal
from creativeflow.jobs.service import Subject
from creativeflow.providers.contexts import (
    ContextType,
    GatheredContext,
    register_task_context,
    register_task_outcome,
)
from creativeflow.providers.tasks import (
    CONTEXT_MAX_LENGTH,
    DESCRIPTION_MAX_LENGTH,
    INSTRUCTIONS_LABEL,
    MAX_CHARACTERS,
    SCENE_TEXT_MAX_LENGTH,
    AspectRatio,
    DialogueTone,
    TaskType,
)
from creativeflow.stories.access import PROJECT_SUBJECT
from creativeflow.stories.cast.models import CharacterRole
from creativeflow.stories.content.models import Panel, Scene
from creativeflow.stories.instructions.resolution import Resolved
from creativeflow.stories.projects.models import Project
from creativeflow.stories.tasks.drafts import task_draft
from creativeflow.stories.tasks.repository import CastMember, ChapterLine
from creativeflow.stories.tasks.service import (
    CharacterMaterial,
    OutlineMaterial,
    PanelMaterial,
    PanelPromptMaterial,
    SceneMaterial,
    TaskContextService,
)

# The input models' limits (providers/tasks.py) for the fields gathered here.
NAME_LENGTH = 80
LABEL_LENGTH = 100
TRAIT_LENGTH = 60
TRAITS = 20
CHAPTER_LINE_LENGTH = 2000
PREVIOUS_CHAPTERS = 50
DIALOGUE_SPEAKERS = 6
VISUAL_CHARACTERS = 10
PALETTE = 8
AVOID = 20
DEFAULT_PANELS, MAX_PANELS = 4, 12
MAX_CHAPTER_NUMBER = 1000

_ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """`text` trimmed and, when longer than `limit`, cut at a word and ended with '…'."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.8:
        cut = cut[:space]
    return cut.rstrip() + _ELLIPSIS


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?…\"')" else f"{text}."


def _join(blocks: Iterable[str | None], separator: str = "\n\n") -> str:
    return separator.join(block.strip() for block in blocks if block and block.strip())


def _unique(values: Iterable[str], limit: int, length: int) -> list[str]:
    found: dict[str, str] = {}
    for value in values:
        item = clip(value, length)
        if item and item.lower() not in found:
            found[item.lower()] = item
    return list(found.values())[:limit]


def _instructions(resolved: Sequence[Resolved]) -> list[str]:
    return [entry.instruction.text.strip() for entry in resolved if entry.instruction.text.strip()]


def with_instructions(body: str, instructions: Sequence[str], limit: int) -> str:
    """`body`, then the instructions under "Instructions:", within `limit`: the instructions
    keep at most a third of the room when there is a body, the body is cut to the rest."""
    tail = ""
    if instructions:
        listed = f"{INSTRUCTIONS_LABEL}\n" + "\n".join(f"- {text}" for text in instructions)
        tail = clip(listed, limit // 3 if body.strip() else limit)
    room = limit - len(tail) - (2 if tail else 0)
    return _join([clip(body, room) if body.strip() else "", tail])


def _names(cast: Sequence[CastMember], ids: Iterable[uuid.UUID]) -> list[str]:
    by_id = {member.id: member.name for member in cast}
    return [by_id[member_id] for member_id in ids if member_id in by_id]


def _ids(values: Iterable[Any]) -> list[str]:
    return [str(value) for value in dict.fromkeys(values)]


# -- a scene's text ----------------------------------------------------------------------------


def _bubble_line(bubble: dict[str, Any], speakers: dict[str, str]) -> str | None:
    text = str(bubble.get("text") or "").strip()
    if not text:
        return None
    kind = bubble.get("kind") or "speech"
    speaker = speakers.get(str(bubble.get("speaker_id")))
    if speaker:
        return f"{speaker} (thinking): {text}" if kind == "thought" else f"{speaker}: {text}"
    label = {"caption": "Caption", "sfx": "SFX", "thought": "Thought"}.get(kind)
    return f"{label}: {text}" if label else text


def scene_text(scene: Scene, panels: Sequence[Panel], cast: Sequence[CastMember]) -> str:
    """The scene as prose: its title, summary and notes, then each panel's description and
    its dialogue lines ("Name: text"), in order; cut to the scene-text limit."""
    speakers = {str(member.id): member.name for member in cast}
    blocks = [
        _sentence(scene.title),
        scene.summary,
        f"Notes: {scene.notes}" if scene.notes else None,
    ]
    for panel in panels:
        lines: list[str | None] = [_sentence(panel.description or "")]
        lines += [_bubble_line(bubble, speakers) for bubble in panel.dialogue or []]
        blocks.append(_join(lines, "\n"))
    return clip(_join(blocks), SCENE_TEXT_MAX_LENGTH)


def _scene_cast(material: SceneMaterial) -> list[uuid.UUID]:
    return list(
        dict.fromkeys(
            character_id
            for panel in material.panels
            for character_id in material.panel_cast.get(panel.id, [])
        )
    )


def _scene_sources(material: SceneMaterial, characters: Iterable[uuid.UUID]) -> dict[str, Any]:
    return {
        "project": str(material.project.id),
        "scene": str(material.scene.id),
        "panels": _ids(panel.id for panel in material.panels),
        "characters": _ids(characters),
    }


def scene_summary_input(material: SceneMaterial) -> tuple[dict[str, Any], dict[str, Any]]:
    in_scene = _scene_cast(material)
    ordered = in_scene + [member.id for member in material.cast if member.id not in in_scene]
    values = {
        "scene_text": scene_text(material.scene, material.panels, material.cast),
        "title": clip(material.scene.title, LABEL_LENGTH),
        "characters": _unique(_names(material.cast, ordered), MAX_CHARACTERS, NAME_LENGTH),
    }
    return values, _scene_sources(material, ordered[:MAX_CHARACTERS])


def panel_description_input(material: SceneMaterial) -> tuple[dict[str, Any], dict[str, Any]]:
    in_scene = _scene_cast(material) or [member.id for member in material.cast]
    count = len(material.panels)
    values: dict[str, Any] = {
        "scene_text": scene_text(material.scene, material.panels, material.cast),
        "panel_count": min(count, MAX_PANELS) if count else DEFAULT_PANELS,
        "characters": _unique(_names(material.cast, in_scene), MAX_CHARACTERS, NAME_LENGTH),
    }
    sources = _scene_sources(material, in_scene[:MAX_CHARACTERS])
    guide = material.guide
    if guide is not None and guide.art_style:
        values["style"] = clip(guide.art_style, LABEL_LENGTH)
        sources["style_guide"] = guide.version
    return values, sources


# -- a panel -----------------------------------------------------------------------------------

_TONE_WORDS: dict[str, DialogueTone] = {
    **{tone.value: tone for tone in DialogueTone},
    **dict.fromkeys(["calm", "quiet", "matter-of-fact"], DialogueTone.NEUTRAL),
    **dict.fromkeys(["epic", "intense", "grand"], DialogueTone.DRAMATIC),
    **dict.fromkeys(
        ["funny", "comic", "comedic", "playful", "light", "lighthearted", "whimsical"],
        DialogueTone.HUMOROUS,
    ),
    **dict.fromkeys(
        ["tension", "suspense", "suspenseful", "ominous", "eerie", "anxious", "scary", "dark"],
        DialogueTone.TENSE,
    ),
    **dict.fromkeys(["romance", "tender", "intimate", "loving"], DialogueTone.ROMANTIC),
    **dict.fromkeys(["uplifting", "optimistic", "warm", "joyful", "happy"], DialogueTone.HOPEFUL),
    **dict.fromkeys(
        ["melancholy", "sad", "somber", "sombre", "wistful", "gloomy", "grief", "mournful"],
        DialogueTone.MELANCHOLIC,
    ),
    **dict.fromkeys(["furious", "hostile", "rage", "heated", "bitter"], DialogueTone.ANGRY),
}


def mood_tone(*moods: str | None) -> DialogueTone | None:
    """The first dialogue tone any word of the moods (in order) names."""
    for mood in moods:
        for word in re.findall(r"[a-z][a-z-]*", (mood or "").lower()):
            if word in _TONE_WORDS:
                return _TONE_WORDS[word]
    return None


def dialogue_input(
    material: PanelMaterial,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    panel, scene = material.panel, material.scene
    scene_part = f"Scene ({scene.title})" + (f": {scene.summary}" if scene.summary else "")
    situation = _join([panel.description, _sentence(scene_part)])
    values: dict[str, Any] = {
        "situation": with_instructions(
            situation, _instructions(material.instructions), DESCRIPTION_MAX_LENGTH
        )
    }
    known = {member.id for member in material.cast}
    speakers = [character_id for character_id in material.panel_cast if character_id in known]
    if not speakers:
        speakers = [m.id for m in material.cast if m.role == CharacterRole.PROTAGONIST]
    speakers = speakers[:DIALOGUE_SPEAKERS]
    unfilled: dict[str, str] = {}
    if speakers:
        values["characters"] = _unique(
            _names(material.cast, speakers), DIALOGUE_SPEAKERS, NAME_LENGTH
        )
    else:
        unfilled["characters"] = (
            "the panel has no characters and the project no protagonist to speak: add "
            "characters to the panel, or send input.characters"
        )
    tone = mood_tone(panel.mood, scene.mood)
    if tone is not None:
        values["tone"] = tone.value
    sources = {
        "project": str(material.project.id),
        "scene": str(scene.id),
        "panel": str(panel.id),
        "characters": _ids(speakers),
        "instructions": _ids(entry.instruction.id for entry in material.instructions),
    }
    return values, sources, unfilled


# The prompt builder's parts that describe the picture (style, palette and aspect ratio have
# fields of their own).
_DESCRIBING = ("description", "camera", "character", "location", "mood")
_ASPECTS = {aspect.value for aspect in AspectRatio}


def visual_prompt_input(material: PanelPromptMaterial) -> tuple[dict[str, Any], dict[str, Any]]:
    panel, scene, context = material.panel, material.scene, material.context
    parts = material.prompt.parts
    body = ", ".join(part.text for part in parts if part.kind in _DESCRIBING)
    if not any(part.kind == "description" for part in parts):
        body = _join([_sentence(scene.title), scene.summary, body], " ")
    instructions = [part.text for part in parts if part.kind == "instruction"]
    guide = context.guide
    cast_ids = context.cast.get(panel.id, [])
    location = context.locations.get(panel.location_id) if panel.location_id else None
    values: dict[str, Any] = {
        "description": with_instructions(body, instructions, DESCRIPTION_MAX_LENGTH),
        "characters": _unique(
            (context.characters[cid].name for cid in cast_ids if cid in context.characters),
            VISUAL_CHARACTERS,
            NAME_LENGTH,
        ),
        "palette": list(guide.palette[:PALETTE]),
        "avoid": _unique((guide.negative_prompt or "").split(","), AVOID, TRAIT_LENGTH),
    }
    if guide.art_style:
        values["style"] = clip(guide.art_style, LABEL_LENGTH)
    if location is not None:
        values["location"] = clip(location.name, LABEL_LENGTH)
    mood = panel.mood or scene.mood
    if mood and mood.strip():
        values["mood"] = clip(mood, TRAIT_LENGTH)
    if guide.aspect_ratio in _ASPECTS:
        values["aspect"] = guide.aspect_ratio
    sources = {
        "project": str(material.project.id),
        "scene": str(scene.id),
        "panel": str(panel.id),
        "characters": _ids(cast_ids),
        "locations": _ids([location.id] if location is not None else []),
        "instructions": _ids(part.source_id for part in parts if part.kind == "instruction"),
        "style_guide": guide.version,
    }
    return values, sources


# -- a character -------------------------------------------------------------------------------


def _chapter_line(line: ChapterLine) -> str:
    heading = f"Chapter {line.position}, {line.title}"
    return (
        f"{heading}: {line.summary.strip()}" if line.summary and line.summary.strip() else heading
    )


def _premise(project: Project) -> str:
    premise = _join([project.logline, project.synopsis])
    if premise:
        return premise
    genres = ", ".join(genre for genre in project.genres if genre)
    return f"{project.title}, a {genres} story." if genres else _sentence(project.title)


def _traits(personality: str | None) -> list[str]:
    return _unique(re.split(r"[,;\n]+", personality or ""), TRAITS, TRAIT_LENGTH)


def character_profile_input(material: CharacterMaterial) -> tuple[dict[str, Any], dict[str, Any]]:
    character, project = material.character, material.project
    appearance = ", ".join(trait for trait in character.appearance if trait.strip())
    description = (
        _join([character.description, f"Appearance: {appearance}." if appearance else None])
        or f"{character.name}, a {character.role} character in {project.title}."
    )
    others = [member for member in material.cast if member.id != character.id]
    story = _join(
        [
            _join(
                [
                    f"{project.title}: {project.logline}" if project.logline else project.title,
                    project.synopsis,
                ],
                "\n",
            ),
            _join(["Story so far:", *map(_chapter_line, material.chapters)], "\n")
            if material.chapters
            else None,
            _join(
                [
                    f"Scenes with {character.name}:",
                    *(
                        f"- {scene.title}: {scene.summary.strip()}"
                        if scene.summary and scene.summary.strip()
                        else f"- {scene.title}"
                        for scene in material.scenes
                    ),
                ],
                "\n",
            )
            if material.scenes
            else None,
            "Other characters: " + ", ".join(f"{member.name} ({member.role})" for member in others)
            if others
            else None,
        ]
    )
    values: dict[str, Any] = {
        "name": clip(character.name, NAME_LENGTH),
        "description": clip(description, DESCRIPTION_MAX_LENGTH),
        "traits": _traits(character.personality),
        "role": character.role,
        "story_context": with_instructions(
            story, _instructions(material.instructions), CONTEXT_MAX_LENGTH
        ),
    }
    sources = {
        "project": str(project.id),
        "character": str(character.id),
        "chapters": _ids(line.id for line in material.chapters),
        "scenes": _ids(scene.id for scene in material.scenes),
        "characters": _ids(member.id for member in others),
        "instructions": _ids(entry.instruction.id for entry in material.instructions),
    }
    return values, sources


# -- a chapter ---------------------------------------------------------------------------------


def chapter_outline_input(material: OutlineMaterial) -> tuple[dict[str, Any], dict[str, Any]]:
    project, chapter = material.project, material.chapter
    previous = material.previous[-PREVIOUS_CHAPTERS:]
    values: dict[str, Any] = {
        "premise": clip(_premise(project), CONTEXT_MAX_LENGTH),
        "previous_chapters": [
            clip(line.summary or f"Chapter {line.position}: {line.title}", CHAPTER_LINE_LENGTH)
            for line in previous
        ],
        "characters": _unique(
            (member.name for member in material.cast), MAX_CHARACTERS, NAME_LENGTH
        ),
        "chapter_number": min(
            chapter.position if chapter is not None else len(material.previous) + 1,
            MAX_CHAPTER_NUMBER,
        ),
    }
    body = ""
    if chapter is not None:
        values["title"] = clip(chapter.title, LABEL_LENGTH)
        body = _join([chapter.summary, f"Notes: {chapter.notes}" if chapter.notes else None])
    synopsis = with_instructions(body, _instructions(material.instructions), CONTEXT_MAX_LENGTH)
    if synopsis:
        values["synopsis"] = synopsis
    sources = {
        "project": str(project.id),
        "chapter": str(chapter.id) if chapter is not None else None,
        "chapters": _ids(line.id for line in previous),
        "characters": _ids(member.id for member in material.cast[:MAX_CHARACTERS]),
        "instructions": _ids(entry.instruction.id for entry in material.instructions),
    }
    return values, sources


# -- the gatherers -----------------------------------------------------------------------------


def _gathered(
    project: Project,
    values: dict[str, Any],
    sources: dict[str, Any],
    unfilled: dict[str, str] | None = None,
) -> GatheredContext:
    return GatheredContext(
        input=values,
        subject=Subject(PROJECT_SUBJECT, project.id),
        sources=sources,
        unfilled=unfilled or {},
    )


async def about_scene(
    session: AsyncSession, principal: Principal, task: TaskType, scene_id: uuid.UUID
) -> GatheredContext:
    describing = task is TaskType.PANEL_DESCRIPTION
    material = await TaskContextService(session, principal).scene(scene_id, with_guide=describing)
    build = panel_description_input if describing else scene_summary_input
    return _gathered(material.project, *build(material))


async def about_panel(
    session: AsyncSession, principal: Principal, task: TaskType, panel_id: uuid.UUID
) -> GatheredContext:
    service = TaskContextService(session, principal)
    if task is TaskType.VISUAL_PROMPT:
        prompted = await service.panel_prompt(panel_id)
        return _gathered(prompted.project, *visual_prompt_input(prompted))
    material = await service.panel(panel_id)
    return _gathered(material.project, *dialogue_input(material))


async def about_character(
    session: AsyncSession, principal: Principal, task: TaskType, character_id: uuid.UUID
) -> GatheredContext:
    material = await TaskContextService(session, principal).character(character_id)
    return _gathered(material.project, *character_profile_input(material))


async def about_chapter(
    session: AsyncSession, principal: Principal, task: TaskType, chapter_id: uuid.UUID
) -> GatheredContext:
    material = await TaskContextService(session, principal).chapter_outline(chapter_id)
    return _gathered(material.project, *chapter_outline_input(material))


async def about_project(
    session: AsyncSession, principal: Principal, task: TaskType, project_id: uuid.UUID
) -> GatheredContext:
    material = await TaskContextService(session, principal).next_chapter_outline(project_id)
    return _gathered(material.project, *chapter_outline_input(material))


def register_task_contexts() -> None:
    """Offer the story's things as the contexts of the text tasks (`POST /tasks/execute`)."""
    register_task_context(ContextType.PROJECT, about_project, tasks=[TaskType.CHAPTER_OUTLINE])
    register_task_context(ContextType.CHAPTER, about_chapter, tasks=[TaskType.CHAPTER_OUTLINE])
    register_task_context(
        ContextType.SCENE,
        about_scene,
        tasks=[TaskType.SCENE_SUMMARY, TaskType.PANEL_DESCRIPTION],
    )
    register_task_context(
        ContextType.PANEL, about_panel, tasks=[TaskType.DIALOGUE, TaskType.VISUAL_PROMPT]
    )
    register_task_context(
        ContextType.CHARACTER, about_character, tasks=[TaskType.CHARACTER_PROFILE]
    )
    # What each leaves: a draft to review.
    for target_type in ContextType:
        register_task_outcome(target_type, task_draft)
