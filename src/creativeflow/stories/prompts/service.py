"""Building panels' prompts from everything that decides how they look.

In order: the style guide's art style, the panel's description, its shot and camera angle, each
of its characters (name and appearance traits), its location, its mood, the instructions that
apply to it (broad to narrow, as `applicable` resolves them), the palette and the aspect ratio.
Each part says where it came from; the characters' primary designs, the location's primary
reference and the style guide's references are the images generation may condition on.

A character under the identity lock (`locked`) takes an `identity` part instead of its
`character` part ("Mara, always drawn the same: red scarf, freckles, colours #b3202a"), and
all its designs (primary first, at most MAX_LOCKED_DESIGNS) instead of the primary alone.

Many panels are built from one `PromptContext`, loaded in a fixed number of statements (the
style guide, the project's instructions, the panels' cast and their images), so rebuilding a
whole project (`apply`) costs the same few reads as one panel plus one write per changed panel.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.identity.principal import Principal
from creativeflow.shared.core.exceptions import ValidationException
from creativeflow.stories.cast.service import CHARACTER, LOCATION, CastService
from creativeflow.stories.content.models import Panel
from creativeflow.stories.content.service import ContentService
from creativeflow.stories.instructions.models import Instruction
from creativeflow.stories.instructions.resolution import chain_for, resolve
from creativeflow.stories.instructions.service import InstructionService
from creativeflow.stories.projects.service import Need
from creativeflow.stories.prompts.schemas import PanelPrompt, PromptChange, PromptPart
from creativeflow.stories.style.schemas import StyleGuideRead
from creativeflow.stories.style.service import StyleGuideService

# A locked character's designs a prompt conditions on: the primary, then the oldest others.
MAX_LOCKED_DESIGNS = 4


def _words(value: str | None) -> str:
    return (value or "").replace("_", " ")


def _primary(links: list[Any]) -> uuid.UUID | None:
    for link in links:
        if link.is_primary:
            image_id: uuid.UUID = link.image_id
            return image_id
    return None


def _character_part(character: Any) -> tuple[str, str]:
    """The part a character adds: its name and traits, or, locked, its fixed identity."""
    traits = ", ".join(character.appearance)
    if not character.locked:
        return "character", f"{character.name} ({traits})" if traits else character.name
    pieces = [traits] if traits else []
    if character.palette:
        pieces.append("colours " + " ".join(character.palette))
    fixed = ", ".join(pieces)
    return "identity", f"{character.name}, always drawn the same" + (f": {fixed}" if fixed else "")


def _character_images(character: Any, links: list[Any]) -> list[uuid.UUID]:
    """Its primary design; all its designs when locked (primary first, as `links` are)."""
    if character is not None and character.locked:
        return [link.image_id for link in links[:MAX_LOCKED_DESIGNS]]
    primary = _primary(links)
    return [primary] if primary is not None else []


@dataclass(frozen=True, slots=True)
class PromptContext:
    guide: StyleGuideRead
    instructions: Sequence[Instruction]
    cast: dict[uuid.UUID, list[uuid.UUID]]  # panel -> its characters, in order
    characters: dict[uuid.UUID, Any]
    locations: dict[uuid.UUID, Any]
    designs: dict[uuid.UUID, list[Any]]
    references: dict[uuid.UUID, list[Any]]


def assemble(panel: Panel, chapter_id: uuid.UUID, context: PromptContext) -> PanelPrompt:
    """One panel's prompt from the context (no I/O)."""
    guide = context.guide
    parts: list[PromptPart] = []

    def add(kind: Any, text: str | None, source: str, source_id: uuid.UUID) -> None:
        if text and text.strip():
            parts.append(
                PromptPart(kind=kind, text=text.strip(), source=source, source_id=source_id)
            )

    project_id = panel.project_id
    add("style", guide.art_style, "style_guide", project_id)
    add("description", panel.description, "panel", panel.id)
    camera = [f"{_words(panel.shot)} shot" if panel.shot else ""]
    camera.append(f"{_words(panel.camera_angle)} angle" if panel.camera_angle else "")
    add("camera", " ".join(piece for piece in camera if piece), "panel", panel.id)
    character_ids = context.cast.get(panel.id, [])
    for character_id in character_ids:
        character = context.characters.get(character_id)
        if character is not None:
            kind, text = _character_part(character)
            add(kind, text, "character", character.id)
    location = context.locations.get(panel.location_id) if panel.location_id else None
    if location is not None:
        pieces = (_words(location.setting), location.time_period, location.description)
        details = ", ".join(piece for piece in pieces if piece)
        text = f"{location.name}: {details}" if details else location.name
        add("location", text, "location", location.id)
    add("mood", f"{panel.mood} mood" if panel.mood else None, "panel", panel.id)
    chain = chain_for(
        context.instructions, chapter_id=chapter_id, scene_id=panel.scene_id, panel_id=panel.id
    )
    for entry in resolve(chain):
        if entry.applied:
            add("instruction", entry.instruction.text, "instruction", entry.instruction.id)
    if guide.palette:
        add("palette", "palette " + " ".join(guide.palette), "style_guide", project_id)
    if guide.aspect_ratio:
        add("aspect_ratio", f"aspect ratio {guide.aspect_ratio}", "style_guide", project_id)

    images: list[uuid.UUID | None] = [
        image
        for character_id in character_ids
        for image in _character_images(
            context.characters.get(character_id), context.designs.get(character_id, [])
        )
    ]
    if location is not None:
        images.append(_primary(context.references.get(location.id, [])))
    images += list(guide.reference_image_ids)
    return PanelPrompt(
        panel_id=panel.id,
        prompt=", ".join(part.text for part in parts),
        negative_prompt=guide.negative_prompt,
        reference_image_ids=list(dict.fromkeys(image for image in images if image is not None)),
        parts=parts,
        stored_prompt=panel.prompt,
    )


class PromptService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.principal = principal
        self.content = ContentService(session, principal)
        self.cast = CastService(session, principal)
        self.instructions = InstructionService(session, principal)
        self.style = StyleGuideService(session, principal)

    async def context(self, project_id: uuid.UUID, panels: Sequence[Panel]) -> PromptContext:
        """What the prompts of `panels` (access checked by the caller) are built from, in a
        fixed number of statements."""
        cast = await self.cast.panel_characters([panel.id for panel in panels])
        character_ids = list(dict.fromkeys(cid for ids in cast.values() for cid in ids))
        location_ids = list({panel.location_id for panel in panels if panel.location_id})
        return PromptContext(
            guide=await self.style.get(project_id),
            instructions=await self.instructions.enabled_of_project(project_id),
            cast=cast,
            characters=await self.cast.rows(CHARACTER, character_ids),
            locations=await self.cast.rows(LOCATION, location_ids),
            designs=await self.cast.links(CHARACTER, character_ids),
            references=await self.cast.links(LOCATION, location_ids),
        )

    async def build(self, panel_id: uuid.UUID) -> PanelPrompt:
        panel = await self.content.panel(panel_id)
        scene = await self.content.scene(panel.scene_id)
        context = await self.context(panel.project_id, [panel])
        return assemble(panel, scene.chapter_id, context)

    async def build_many(
        self, project_id: uuid.UUID, rows: Sequence[tuple[Panel, uuid.UUID]]
    ) -> list[PanelPrompt]:
        """The prompts of many panels of one project (each with its chapter id; access
        checked by the caller), from one context."""
        context = await self.context(project_id, [panel for panel, _ in rows])
        return [assemble(panel, chapter_id, context) for panel, chapter_id in rows]

    async def apply(
        self,
        project_id: uuid.UUID,
        *,
        chapter_id: uuid.UUID | None = None,
        scene_id: uuid.UUID | None = None,
    ) -> tuple[list[PromptChange], int]:
        """Rebuild and keep the prompts of a project's panels (or a chapter's, or a scene's):
        the ones that changed, and how many did not."""
        await self.content.projects.grant(project_id, Need.WRITE)
        if chapter_id is not None:
            chapter = await self.content.chapter(chapter_id)
            if chapter.project_id != project_id:
                raise ValidationException.for_field("chapter_id", "is not in this project")
        if scene_id is not None:
            scene = await self.content.scene(scene_id)
            if scene.project_id != project_id:
                raise ValidationException.for_field("scene_id", "is not in this project")
        rows = await self.content.panels_in_reading_order(
            project_id, chapter_id=chapter_id, scene_id=scene_id
        )
        context = await self.context(project_id, [panel for panel, _ in rows])
        changes: list[PromptChange] = []
        for panel, panel_chapter in rows:
            built = assemble(panel, panel_chapter, context).prompt
            if built != panel.prompt:
                changes.append(PromptChange(panel_id=panel.id, before=panel.prompt, after=built))
                panel.prompt = built
                panel.touch(self.principal.user_id)
        changed = {change.panel_id for change in changes}
        await self.content.save_panels([panel for panel, _ in rows if panel.id in changed])
        return changes, len(rows) - len(changes)
