"""What selecting a draft's variant writes into its target, and how that is undone.

Every write goes through the target's own service (its checks, its version, its
`content_update`), and each returns what the target held before, kept in the draft's
history so that choice can be restored:

| draft | selecting writes | restoring |
|---|---|---|
| image for a panel | the panel's `selected_image_id` | the previous image |
| image for a cover | the chapter's `cover_image_id` | the previous cover |
| image for a character / location | a design / reference link (primary if none is) | unlinks it |
| `panel_description` for a panel | the panel's description | the previous description |
| `dialogue` for a panel | the panel's bubbles (speakers found by name) | the previous bubbles |
| `scene_summary` for a scene | the scene's summary | the previous summary |
| `visual_prompt` for a panel | the panel's kept prompt | the previous prompt |
| `chapter_outline` for a chapter | its summary (the logline), its scenes appended | both undone |
| `chapter_outline` for the project | a new last chapter with its scenes | deletes it |
| `character_profile` for a character | description, personality, appearance | the previous ones |
| storyboard for a scene | its panels, appended to the scene | deletes them |
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.identity.principal import Principal
from creativeflow.shared.core.exceptions import ValidationException
from creativeflow.stories.cast.schemas import CharacterUpdate, ImageLink
from creativeflow.stories.cast.service import CHARACTER, LOCATION, CastService
from creativeflow.stories.content.schemas import (
    Bubble,
    ChapterCreate,
    ChapterUpdate,
    PanelCreate,
    PanelUpdate,
    SceneCreate,
    SceneUpdate,
)
from creativeflow.stories.content.service import ContentService
from creativeflow.stories.drafts.models import Draft, DraftKind, DraftTarget
from creativeflow.stories.projects.service import Need

_LABELS = {
    "character_sheet": "turnaround sheet",
    "character_design": "design",
    "background": "background",
}


class DraftTargets:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.content = ContentService(session, principal)
        self.cast = CastService(session, principal)

    async def apply(self, draft: Draft, variant: dict[str, Any]) -> dict[str, Any]:
        """Write `variant` into the draft's target; what the target held before."""
        target = DraftTarget(draft.target_type)
        if draft.kind == DraftKind.IMAGE:
            return await self._image(draft, target, _image_of(variant))
        if draft.kind == DraftKind.STORYBOARD:
            return await self._storyboard(draft, variant)
        return await self._text(draft, target, variant)

    async def restore(self, draft: Draft, previous: dict[str, Any]) -> None:
        """Put back what `apply` returned."""
        target_id = draft.target_id
        if "selected_image_id" in previous:
            await self.content.update_panel(
                target_id, PanelUpdate(selected_image_id=previous["selected_image_id"]), None
            )
        elif "cover_image_id" in previous:
            await self.content.update_chapter(
                target_id, ChapterUpdate(cover_image_id=previous["cover_image_id"]), None
            )
        elif "linked_image_id" in previous:
            kind = CHARACTER if draft.target_type == DraftTarget.CHARACTER else LOCATION
            await self.cast.unlink_image(kind, target_id, uuid.UUID(previous["linked_image_id"]))
        elif "created_panel_ids" in previous:
            for panel_id in previous["created_panel_ids"]:
                await self.content.delete_panel(uuid.UUID(panel_id), None)
        elif "created_chapter_id" in previous:
            await self.content.delete_chapter(uuid.UUID(previous["created_chapter_id"]), None)
        elif "panel_prompt" in previous:
            await self._set_prompt(target_id, previous["panel_prompt"])
        elif "dialogue" in previous:
            bubbles = [Bubble.model_validate(bubble) for bubble in previous["dialogue"]]
            await self.content.replace_dialogue(target_id, bubbles, None)
        elif "panel" in previous:
            await self.content.update_panel(target_id, PanelUpdate(**previous["panel"]), None)
        elif "scene" in previous:
            await self.content.update_scene(target_id, SceneUpdate(**previous["scene"]), None)
        elif "chapter" in previous:
            for scene_id in previous.get("created_scene_ids", []):
                await self.content.delete_scene(uuid.UUID(scene_id), None)
            await self.content.update_chapter(target_id, ChapterUpdate(**previous["chapter"]), None)
        elif "character" in previous:
            await self.cast.update(
                CHARACTER, target_id, CharacterUpdate(**previous["character"]), None, whole=False
            )

    # -- images --------------------------------------------------------------------------------

    async def _image(
        self, draft: Draft, target: DraftTarget, image_id: uuid.UUID
    ) -> dict[str, Any]:
        if target is DraftTarget.PANEL:
            panel = await self.content.panel(draft.target_id)
            before = panel.selected_image_id
            await self.content.update_panel(
                draft.target_id, PanelUpdate(selected_image_id=image_id), None
            )
            return {"selected_image_id": _text_id(before)}
        if target is DraftTarget.COVER:
            chapter = await self.content.chapter(draft.target_id)
            before = chapter.cover_image_id
            await self.content.update_chapter(
                draft.target_id, ChapterUpdate(cover_image_id=image_id), None
            )
            return {"cover_image_id": _text_id(before)}
        if target in (DraftTarget.CHARACTER, DraftTarget.LOCATION):
            kind = CHARACTER if target is DraftTarget.CHARACTER else LOCATION
            links = (await self.cast.links(kind, [draft.target_id])).get(draft.target_id, [])
            primary = not any(link.is_primary for link in links)
            label = _LABELS.get(draft.operation, draft.operation.replace("_", " "))
            await self.cast.link_image(
                kind, draft.target_id, ImageLink(image_id=image_id, label=label, primary=primary)
            )
            return {"linked_image_id": str(image_id)}
        raise ValidationException.for_field("target_type", f"an image cannot be set on a {target}")

    # -- text ----------------------------------------------------------------------------------

    async def _text(
        self, draft: Draft, target: DraftTarget, variant: dict[str, Any]
    ) -> dict[str, Any]:
        output = variant.get("output") or {}
        text = variant.get("text")
        operation = draft.operation
        if target is DraftTarget.PANEL and operation == "dialogue":
            panel = await self.content.panel(draft.target_id)
            before = list(panel.dialogue)
            bubbles = await self._bubbles(panel.project_id, output.get("lines") or [])
            await self.content.replace_dialogue(draft.target_id, bubbles, None)
            return {"dialogue": before}
        if target is DraftTarget.PANEL and operation == "visual_prompt":
            panel = await self.content.panel(draft.target_id)
            before_text = panel.prompt
            await self._set_prompt(draft.target_id, text)
            return {"panel_prompt": before_text}
        if target is DraftTarget.PANEL:
            panel = await self.content.panel(draft.target_id)
            before_text = panel.description
            await self.content.update_panel(draft.target_id, PanelUpdate(description=text), None)
            return {"panel": {"description": before_text}}
        if target is DraftTarget.SCENE:
            scene = await self.content.scene(draft.target_id)
            before_text = scene.summary
            await self.content.update_scene(draft.target_id, SceneUpdate(summary=text), None)
            return {"scene": {"summary": before_text}}
        if target is DraftTarget.CHAPTER:
            chapter = await self.content.chapter(draft.target_id)
            before_text = chapter.summary
            await self.content.update_chapter(draft.target_id, ChapterUpdate(summary=text), None)
            scenes = await self._scenes(chapter.id, output.get("scenes") or [])
            return {"chapter": {"summary": before_text}, "created_scene_ids": scenes}
        if target is DraftTarget.PROJECT:
            title = str(output.get("title") or "New chapter")[:200]
            made = await self.content.create_chapter(
                draft.target_id, ChapterCreate(title=title, summary=text)
            )
            await self._scenes(made.id, output.get("scenes") or [])
            return {"created_chapter_id": str(made.id)}
        if target is DraftTarget.CHARACTER:
            character = await self.cast.character(draft.target_id)
            previous = {
                "description": character.description,
                "personality": character.personality,
                "appearance": list(character.appearance),
            }
            change = CharacterUpdate(
                description=output.get("summary") or text,
                personality=", ".join(output.get("personality") or []) or None,
                appearance=_traits(output.get("appearance")) or character.appearance,
            )
            await self.cast.update(CHARACTER, draft.target_id, change, None, whole=False)
            return {"character": previous}
        raise ValidationException.for_field("target_type", f"text cannot be set on a {target}")

    async def _scenes(self, chapter_id: uuid.UUID, outline: list[dict[str, Any]]) -> list[str]:
        """An outline's scenes appended to the chapter, in order; their ids."""
        created = []
        for item in outline:
            title = str(item.get("title") or "Scene")[:200]
            scene = await self.content.create_scene(
                chapter_id, SceneCreate(title=title, summary=item.get("summary"))
            )
            created.append(str(scene.id))
        return created

    async def _set_prompt(self, panel_id: uuid.UUID, prompt: str | None) -> None:
        panel = await self.content.panel(panel_id, Need.WRITE)
        panel.prompt = prompt
        panel.touch(self.content.principal.user_id)
        await self.content.save_panels([panel])

    async def _bubbles(self, project_id: uuid.UUID, lines: list[dict[str, Any]]) -> list[Bubble]:
        """Dialogue lines as bubbles; a line's character found by name (any case) among the
        project's characters, and otherwise kept as the line's first words."""
        names = {name.lower(): cid for cid, name in (await self._character_names(project_id))}
        bubbles = []
        for line in lines:
            speaker = str(line.get("character") or "")
            speaker_id = names.get(speaker.strip().lower())
            text = str(line.get("text") or "")
            bubbles.append(
                Bubble(
                    text=text if speaker_id or not speaker else f"{speaker}: {text}",
                    speaker_id=speaker_id,
                )
            )
        return bubbles

    async def _character_names(self, project_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
        return await self.cast.names(CHARACTER, project_id)

    # -- storyboards ---------------------------------------------------------------------------

    async def _storyboard(self, draft: Draft, variant: dict[str, Any]) -> dict[str, Any]:
        created: list[str] = []
        for panel in variant.get("panels") or []:
            data = PanelCreate.model_validate(
                {key: value for key, value in panel.items() if key in PanelCreate.model_fields}
            )
            row = await self.content.create_panel(draft.target_id, data)
            created.append(str(row.id))
        return {"created_panel_ids": created}


def _image_of(variant: dict[str, Any]) -> uuid.UUID:
    image_id = variant.get("image_id")
    if not image_id:
        raise ValidationException.for_field("variant", "has no image")
    return uuid.UUID(str(image_id))


def _text_id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def _traits(appearance: Any) -> list[str]:
    """An appearance description as short traits (comma or sentence separated)."""
    if not isinstance(appearance, str):
        return []
    pieces = [piece.strip(" .") for piece in appearance.replace(";", ",").split(",")]
    return [piece[:100] for piece in pieces if piece][:20]
