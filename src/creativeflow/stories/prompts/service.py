"""Building a panel's prompt from everything that decides how it looks.

In order: the style guide's art style, the panel's description, its shot and camera angle, each
of its characters (name and appearance traits), its location, its mood, the instructions that
apply to it (broad to narrow, as `applicable` resolves them), the palette and the aspect ratio.
Each part says where it came from; the characters' primary designs, the location's primary
reference and the style guide's references are the images generation may condition on.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.identity.principal import Principal
from creativeflow.stories.cast.service import CHARACTER, LOCATION, CastService
from creativeflow.stories.content.service import ContentService
from creativeflow.stories.instructions.service import InstructionService
from creativeflow.stories.prompts.schemas import PanelPrompt, PromptPart
from creativeflow.stories.style.service import StyleGuideService


def _words(value: str | None) -> str:
    return (value or "").replace("_", " ")


def _primary(links: list[Any]) -> uuid.UUID | None:
    for link in links:
        if link.is_primary:
            image_id: uuid.UUID = link.image_id
            return image_id
    return None


class PromptService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.content = ContentService(session, principal)
        self.cast = CastService(session, principal)
        self.instructions = InstructionService(session, principal)
        self.style = StyleGuideService(session, principal)

    async def build(self, panel_id: uuid.UUID) -> PanelPrompt:
        panel = await self.content.panel(panel_id)
        guide = await self.style.get(panel.project_id)
        character_ids = (await self.cast.panel_characters([panel.id]))[panel.id]
        characters = await self.cast.rows(CHARACTER, character_ids)
        location = (
            (await self.cast.rows(LOCATION, [panel.location_id])).get(panel.location_id)
            if panel.location_id is not None
            else None
        )
        designs = await self.cast.links(CHARACTER, character_ids)
        references = await self.cast.links(LOCATION, [location.id]) if location else {}
        resolved = await self.instructions.applicable_for_panel(panel.id)

        parts: list[PromptPart] = []

        def add(kind: Any, text: str | None, source: str, source_id: uuid.UUID) -> None:
            if text and text.strip():
                parts.append(
                    PromptPart(kind=kind, text=text.strip(), source=source, source_id=source_id)
                )

        project_id = panel.project_id
        add("style", guide.art_style, "style_guide", project_id)
        add("description", panel.description, "panel", panel.id)
        camera = " ".join(
            piece
            for piece in (
                f"{_words(panel.shot)} shot" if panel.shot else "",
                f"{_words(panel.camera_angle)} angle" if panel.camera_angle else "",
            )
            if piece
        )
        add("camera", camera, "panel", panel.id)
        for character_id in character_ids:
            character = characters.get(character_id)
            if character is None:
                continue
            traits = ", ".join(character.appearance)
            add(
                "character",
                f"{character.name} ({traits})" if traits else character.name,
                "character",
                character.id,
            )
        if location is not None:
            details = ", ".join(
                piece
                for piece in (_words(location.setting), location.time_period, location.description)
                if piece
            )
            add(
                "location",
                f"{location.name}: {details}" if details else location.name,
                "location",
                location.id,
            )
        add("mood", f"{panel.mood} mood" if panel.mood else None, "panel", panel.id)
        for entry in resolved:
            if entry.applied:
                add("instruction", entry.instruction.text, "instruction", entry.instruction.id)
        if guide.palette:
            add("palette", "palette " + " ".join(guide.palette), "style_guide", project_id)
        if guide.aspect_ratio:
            add("aspect_ratio", f"aspect ratio {guide.aspect_ratio}", "style_guide", project_id)

        images: list[uuid.UUID] = []
        for character_id in character_ids:
            image = _primary(designs.get(character_id, []))
            if image is not None:
                images.append(image)
        if location is not None:
            image = _primary(references.get(location.id, []))
            if image is not None:
                images.append(image)
        images += [uuid.UUID(str(image)) for image in guide.reference_image_ids]
        return PanelPrompt(
            panel_id=panel.id,
            prompt=", ".join(part.text for part in parts),
            negative_prompt=guide.negative_prompt,
            reference_image_ids=list(dict.fromkeys(images)),
            parts=parts,
        )
