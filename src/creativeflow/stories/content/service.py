"""Rules of the hierarchy: chapters in a project, scenes in a chapter, panels in a scene.

Access is the project's (`ProjectService.grant`): members read, editors and the owner change,
strangers get 404 for the thing itself. Every change of order locks the project's row first,
reads what it moves again under that lock, and renumbers the siblings in the same transaction,
so positions stay 1..n with no gap and no duplicate however many requests reorder at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified

from creativeflow.assets.errors import ImageNotFound
from creativeflow.assets.service import ImageService
from creativeflow.db.ids import uuid7
from creativeflow.db.versioning import Versioned, ensure_version
from creativeflow.identity.principal import Principal
from creativeflow.shared.core.exceptions import NotFoundException, ValidationException
from creativeflow.stories.access import PANEL_SUBJECT, PROJECT_SUBJECT
from creativeflow.stories.cast.service import CastService
from creativeflow.stories.content.models import Chapter, Panel, Scene
from creativeflow.stories.content.repository import (
    ChapterRepository,
    PanelRepository,
    SceneRepository,
    Siblings,
)
from creativeflow.stories.content.schemas import (
    Bubble,
    ChapterCreate,
    ChapterReplace,
    ChapterUpdate,
    PanelCreate,
    PanelReplace,
    PanelUpdate,
    SceneCreate,
    SceneReplace,
    SceneUpdate,
)
from creativeflow.stories.projects.service import Need, ProjectNotFound, ProjectService

EntityT = TypeVar("EntityT", Chapter, Scene, Panel)


class ChapterNotFound(NotFoundException):
    code = "CHAPTER_NOT_FOUND"


class SceneNotFound(NotFoundException):
    code = "SCENE_NOT_FOUND"


class PanelNotFound(NotFoundException):
    code = "PANEL_NOT_FOUND"


def _insert_position(position: int | None, count: int, field: str = "position") -> int:
    if position is None:
        return count + 1
    if position > count + 1:
        raise ValidationException.for_field(field, f"must be between 1 and {count + 1}")
    return position


def _apply(entity: Any, data: BaseModel, fields: set[str], required: set[str]) -> None:
    for field in fields - {"version", "position"}:
        value = getattr(data, field)
        if value is None and field in required:
            raise ValidationException.for_field(field, "must not be null")
        if field == "dialogue":
            entity.set_dialogue([bubble.model_dump(mode="json") for bubble in value])
            continue
        if hasattr(value, "value"):
            value = value.value
        setattr(entity, field, value)


class ContentService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self.projects = ProjectService(session, principal)
        self.chapters = ChapterRepository(session)
        self.scenes = SceneRepository(session)
        self.panels = PanelRepository(session)
        self.cast = CastService(session, principal)

    # -- shared --------------------------------------------------------------------------------

    async def _load(
        self,
        repository: Any,
        entity_id: uuid.UUID,
        need: Need,
        not_found: type[NotFoundException],
        what: str,
    ) -> Any:
        entity = await repository.get_or_none(entity_id)
        if entity is None:
            raise not_found(f"No {what} {entity_id}")
        try:
            await self.projects.grant(entity.project_id, need)
        except ProjectNotFound:
            raise not_found(f"No {what} {entity_id}") from None
        return entity

    async def chapter(self, chapter_id: uuid.UUID, need: Need = Need.READ) -> Chapter:
        chapter: Chapter = await self._load(
            self.chapters, chapter_id, need, ChapterNotFound, "chapter"
        )
        return chapter

    async def scene(self, scene_id: uuid.UUID, need: Need = Need.READ) -> Scene:
        scene: Scene = await self._load(self.scenes, scene_id, need, SceneNotFound, "scene")
        return scene

    async def panel(self, panel_id: uuid.UUID, need: Need = Need.READ) -> Panel:
        panel: Panel = await self._load(self.panels, panel_id, need, PanelNotFound, "panel")
        return panel

    async def _project_image(self, project_id: uuid.UUID, image_id: uuid.UUID, field: str) -> None:
        """An image a chapter's cover or a panel may show: one of this project's (uploaded or
        generated for the project or one of its panels), so every member can see it."""
        try:
            image = await ImageService(self.session).get(self.principal, image_id)
        except ImageNotFound:
            raise ValidationException.for_field(field, f"no image {image_id}") from None
        if image.subject_type == PROJECT_SUBJECT and image.subject_id == project_id:
            return
        if image.subject_type == PANEL_SUBJECT and image.subject_id is not None:
            owner = await self.panels.get_or_none(image.subject_id)
            if owner is not None and owner.project_id == project_id:
                return
        raise ValidationException.for_field(
            field,
            "must be an image of this project: upload it with subject_type=project and this "
            "project's id (or a panel_id of it)",
        )

    async def _insert(
        self,
        siblings: Siblings[Any],
        parent_id: uuid.UUID,
        entity: Chapter | Scene | Panel,
        position: int | None,
    ) -> None:
        await self.projects.lock_structure(entity.project_id)
        entity.position = _insert_position(position, await siblings.count(parent_id))
        await siblings.open_gap(parent_id, entity.position)
        self.session.add(entity)
        await self.session.flush()

    async def _lock_structure(self, entity: Any, parent_attr: str) -> uuid.UUID:
        """Lock the project's order (every change of order in a project takes this one lock,
        so none interleave and none deadlock), then read the entity again: its parent and
        position as they are now. Its parent id is returned."""
        await self.projects.lock_structure(entity.project_id)
        await self.session.refresh(entity)
        parent_id: uuid.UUID = getattr(entity, parent_attr)
        return parent_id

    def _changed(self, entity: Chapter | Scene | Panel, kind: str, action: str) -> None:
        version = entity.version if isinstance(entity, Versioned) and action != "deleted" else None
        self.projects.changed(entity.project_id, kind, entity.id, action, version)

    async def _save(self, entity: EntityT, kind: str) -> EntityT:
        entity.touch(self.principal.user_id)
        await self.session.flush()
        self._changed(entity, kind, "updated")
        return entity

    async def _delete(
        self, siblings: Siblings[Any], parent_attr: str, entity: EntityT, kind: str
    ) -> None:
        parent_id = await self._lock_structure(entity, parent_attr)
        position = entity.position
        await self.session.delete(entity)
        await self.session.flush()
        await siblings.close_gap(parent_id, position)
        self._changed(entity, kind, "deleted")

    async def _reorder(
        self, siblings: Siblings[Any], parent_attr: str, entity: EntityT, target: int, kind: str
    ) -> EntityT:
        parent_id = await self._lock_structure(entity, parent_attr)
        count = await siblings.count(parent_id)
        if target > count:
            raise ValidationException.for_field("position", f"must be between 1 and {count}")
        await siblings.move(parent_id, entity.id, entity.position, target)
        await self.session.refresh(entity)
        self._changed(entity, kind, "reordered")
        return entity

    async def _move(
        self,
        siblings: Siblings[Any],
        entity: Any,
        parent_attr: str,
        new_parent_id: uuid.UUID,
        position: int | None,
        kind: str,
    ) -> Any:
        old_parent_id = await self._lock_structure(entity, parent_attr)
        if new_parent_id == old_parent_id:
            count = await siblings.count(old_parent_id)
            return await self._reorder(siblings, parent_attr, entity, position or count, kind)
        old_position = entity.position
        at = _insert_position(position, await siblings.count(new_parent_id))
        await siblings.open_gap(new_parent_id, at)
        setattr(entity, parent_attr, new_parent_id)
        entity.position = at
        entity.touch(self.principal.user_id)
        await self.session.flush()
        await siblings.close_gap(old_parent_id, old_position)
        await self.session.refresh(entity)
        self._changed(entity, kind, "reordered")
        return entity

    # -- chapters ------------------------------------------------------------------------------

    async def create_chapter(self, project_id: uuid.UUID, data: ChapterCreate) -> Chapter:
        await self.projects.grant(project_id, Need.WRITE)
        actor = self.principal.user_id
        chapter = Chapter(
            id=uuid7(),
            project_id=project_id,
            created_by=actor,
            updated_by=actor,
            **data.model_dump(exclude={"position"}),
        )
        await self._insert(self.chapters.siblings(), project_id, chapter, data.position)
        self._changed(chapter, "chapter", "created")
        return chapter

    async def chapter_page(
        self, project_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[Sequence[Chapter], int, dict[uuid.UUID, int]]:
        await self.projects.grant(project_id, Need.READ)
        rows, total = await self.chapters.siblings().page(project_id, limit=limit, offset=offset)
        counts = await self.scenes.siblings().counts([row.id for row in rows])
        return rows, total, counts

    async def scene_counts(self, chapter_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        return await self.scenes.siblings().counts(chapter_ids)

    async def panel_counts(self, scene_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        return await self.panels.siblings().counts(scene_ids)

    async def update_chapter(
        self, chapter_id: uuid.UUID, data: ChapterReplace | ChapterUpdate, expected: int | None
    ) -> Chapter:
        chapter = await self.chapter(chapter_id, Need.WRITE)
        ensure_version(chapter, expected, "chapter")
        if isinstance(data, ChapterUpdate) and data.cover_image_id is not None:
            await self._project_image(chapter.project_id, data.cover_image_id, "cover_image_id")
        fields = (
            set(type(data).model_fields)
            if isinstance(data, ChapterReplace)
            else set(data.model_fields_set)
        )
        _apply(chapter, data, fields, {"title"})
        return await self._save(chapter, "chapter")

    async def delete_chapter(self, chapter_id: uuid.UUID, expected: int | None) -> None:
        chapter = await self.chapter(chapter_id, Need.WRITE)
        ensure_version(chapter, expected, "chapter")
        await self._delete(self.chapters.siblings(), "project_id", chapter, "chapter")

    async def reorder_chapter(self, chapter_id: uuid.UUID, position: int) -> Chapter:
        chapter = await self.chapter(chapter_id, Need.WRITE)
        return await self._reorder(
            self.chapters.siblings(), "project_id", chapter, position, "chapter"
        )

    # -- scenes --------------------------------------------------------------------------------

    async def create_scene(self, chapter_id: uuid.UUID, data: SceneCreate) -> Scene:
        chapter = await self.chapter(chapter_id, Need.WRITE)
        actor = self.principal.user_id
        scene = Scene(
            id=uuid7(),
            project_id=chapter.project_id,
            chapter_id=chapter.id,
            created_by=actor,
            updated_by=actor,
            **data.model_dump(exclude={"position"}),
        )
        await self._insert(self.scenes.siblings(), chapter.id, scene, data.position)
        self._changed(scene, "scene", "created")
        return scene

    async def scene_page(
        self, chapter_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[Sequence[Scene], int, dict[uuid.UUID, int]]:
        chapter = await self.chapter(chapter_id)
        rows, total = await self.scenes.siblings().page(chapter.id, limit=limit, offset=offset)
        return rows, total, await self.panel_counts([row.id for row in rows])

    async def update_scene(
        self, scene_id: uuid.UUID, data: SceneReplace | SceneUpdate, expected: int | None
    ) -> Scene:
        scene = await self.scene(scene_id, Need.WRITE)
        ensure_version(scene, expected, "scene")
        fields = (
            set(type(data).model_fields)
            if isinstance(data, SceneReplace)
            else set(data.model_fields_set)
        )
        _apply(scene, data, fields, {"title"})
        return await self._save(scene, "scene")

    async def delete_scene(self, scene_id: uuid.UUID, expected: int | None) -> None:
        scene = await self.scene(scene_id, Need.WRITE)
        ensure_version(scene, expected, "scene")
        await self._delete(self.scenes.siblings(), "chapter_id", scene, "scene")

    async def move_scene(
        self, scene_id: uuid.UUID, chapter_id: uuid.UUID | None, position: int | None
    ) -> Scene:
        scene = await self.scene(scene_id, Need.WRITE)
        target = scene.chapter_id
        if chapter_id is not None and chapter_id != scene.chapter_id:
            chapter = await self.chapter(chapter_id, Need.WRITE)
            if chapter.project_id != scene.project_id:
                raise ValidationException.for_field("parent_id", "is in another project")
            target = chapter.id
        moved: Scene = await self._move(
            self.scenes.siblings(), scene, "chapter_id", target, position, "scene"
        )
        return moved

    # -- panels --------------------------------------------------------------------------------

    async def create_panel(self, scene_id: uuid.UUID, data: PanelCreate) -> Panel:
        scene = await self.scene(scene_id, Need.WRITE)
        actor = self.principal.user_id
        panel = Panel(
            id=uuid7(),
            project_id=scene.project_id,
            scene_id=scene.id,
            created_by=actor,
            updated_by=actor,
        )
        panel.set_dialogue([])
        await self.cast.check_panel_cast(scene.project_id, data.character_ids, data.location_id)
        await self.cast.check_speakers(
            scene.project_id, [b.speaker_id for b in data.dialogue], "dialogue"
        )
        _apply(panel, data, set(type(data).model_fields) - {"character_ids"}, set())
        await self._insert(self.panels.siblings(), scene.id, panel, data.position)
        await self.cast.set_panel_characters(panel.id, data.character_ids)
        self._changed(panel, "panel", "created")
        return panel

    async def panel_page(
        self, scene_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[Sequence[Panel], int]:
        scene = await self.scene(scene_id)
        return await self.panels.siblings().page(scene.id, limit=limit, offset=offset)

    async def update_panel(
        self, panel_id: uuid.UUID, data: PanelReplace | PanelUpdate, expected: int | None
    ) -> Panel:
        panel = await self.panel(panel_id, Need.WRITE)
        ensure_version(panel, expected, "panel")
        if isinstance(data, PanelUpdate) and data.selected_image_id is not None:
            await self._project_image(panel.project_id, data.selected_image_id, "selected_image_id")
        fields = (
            set(type(data).model_fields)
            if isinstance(data, PanelReplace)
            else set(data.model_fields_set)
        )
        if "character_ids" in fields and data.character_ids is None:
            raise ValidationException.for_field("character_ids", "must not be null")
        characters = data.character_ids if "character_ids" in fields else None
        location = data.location_id if "location_id" in fields else None
        await self.cast.check_panel_cast(panel.project_id, characters, location)
        if isinstance(data, PanelReplace):
            await self.cast.check_speakers(
                panel.project_id, [b.speaker_id for b in data.dialogue], "dialogue"
            )
        _apply(panel, data, fields - {"character_ids"}, set())
        if characters is not None:
            await self.cast.set_panel_characters(panel.id, characters)
            flag_modified(panel, "updated_by")  # a new version when only its cast changed
        return await self._save(panel, "panel")

    async def panel_characters(
        self, panel_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        """Each panel's characters, in order (one statement)."""
        return await self.cast.panel_characters(panel_ids)

    async def replace_dialogue(
        self, panel_id: uuid.UUID, bubbles: list[Bubble], expected: int | None
    ) -> Panel:
        panel = await self.panel(panel_id, Need.WRITE)
        ensure_version(panel, expected, "panel")
        await self.cast.check_speakers(
            panel.project_id, [bubble.speaker_id for bubble in bubbles], "bubbles"
        )
        panel.set_dialogue([bubble.model_dump(mode="json") for bubble in bubbles])
        return await self._save(panel, "panel")

    async def delete_panel(self, panel_id: uuid.UUID, expected: int | None) -> None:
        panel = await self.panel(panel_id, Need.WRITE)
        ensure_version(panel, expected, "panel")
        await self._delete(self.panels.siblings(), "scene_id", panel, "panel")

    async def move_panel(
        self, panel_id: uuid.UUID, scene_id: uuid.UUID | None, position: int | None
    ) -> Panel:
        panel = await self.panel(panel_id, Need.WRITE)
        target = panel.scene_id
        if scene_id is not None and scene_id != panel.scene_id:
            scene = await self.scene(scene_id, Need.WRITE)
            if scene.project_id != panel.project_id:
                raise ValidationException.for_field("parent_id", "is in another project")
            target = scene.id
        moved: Panel = await self._move(
            self.panels.siblings(), panel, "scene_id", target, position, "panel"
        )
        return moved

    async def save_panels(self, panels: Sequence[Panel]) -> None:
        """Write panels another aggregate changed (their prompts), announcing each."""
        await self.session.flush()
        for panel in panels:
            self._changed(panel, "panel", "updated")

    async def panels_in_reading_order(
        self,
        project_id: uuid.UUID,
        *,
        chapter_id: uuid.UUID | None = None,
        scene_id: uuid.UUID | None = None,
    ) -> list[tuple[Panel, uuid.UUID]]:
        """Panels with their chapter id (access checked by the caller)."""
        return await self.panels.in_reading_order(
            project_id, chapter_id=chapter_id, scene_id=scene_id
        )

    async def reorder_panels(
        self, scene_id: uuid.UUID, panel_ids: list[uuid.UUID]
    ) -> Sequence[Panel]:
        """The scene's panels in exactly this order (every panel, once); they are returned."""
        scene = await self.scene(scene_id, Need.WRITE)
        siblings = self.panels.siblings()
        await self.projects.lock_structure(scene.project_id)
        current = await siblings.ids_in_order(scene.id)
        if len(set(panel_ids)) != len(panel_ids):
            raise ValidationException.for_field("panel_ids", "names a panel more than once")
        if set(panel_ids) != set(current):
            missing = len(set(current) - set(panel_ids))
            foreign = len(set(panel_ids) - set(current))
            raise ValidationException.for_field(
                "panel_ids",
                f"must be exactly the scene's {len(current)} panels ({missing} missing, "
                f"{foreign} not in this scene)",
            )
        await siblings.set_order(scene.id, panel_ids)
        self.projects.changed(scene.project_id, "scene", scene.id, "reordered", scene.version)
        rows, _ = await siblings.page(scene.id, limit=len(panel_ids), offset=0, count=False)
        return rows

    async def split_panel(
        self,
        panel_id: uuid.UUID,
        at_bubble: int,
        description: str | None,
        new_description: str | None,
        expected: int | None,
    ) -> tuple[Panel, Panel]:
        panel = await self.panel(panel_id, Need.WRITE)
        ensure_version(panel, expected, "panel")
        scene_id = await self._lock_structure(panel, "scene_id")
        if at_bubble > len(panel.dialogue):
            raise ValidationException.for_field(
                "at_bubble", f"must be between 0 and {len(panel.dialogue)}"
            )
        siblings = self.panels.siblings()
        actor = self.principal.user_id
        second = Panel(
            id=uuid7(),
            project_id=panel.project_id,
            scene_id=scene_id,
            position=panel.position + 1,
            description=new_description if new_description is not None else panel.description,
            shot=panel.shot,
            camera_angle=panel.camera_angle,
            layout_size=panel.layout_size,
            mood=panel.mood,
            notes=None,
            created_by=actor,
            updated_by=actor,
        )
        second.set_dialogue(list(panel.dialogue[at_bubble:]))
        second.location_id = panel.location_id
        await siblings.open_gap(scene_id, second.position)
        panel.set_dialogue(list(panel.dialogue[:at_bubble]))
        if description is not None:
            panel.description = description
        panel.touch(actor)
        self.session.add(second)
        await self.session.flush()
        cast = await self.cast.panel_characters([panel.id])
        await self.cast.set_panel_characters(second.id, cast[panel.id])
        await self.session.refresh(panel)
        self._changed(panel, "panel", "updated")
        self._changed(second, "panel", "created")
        return panel, second

    async def merge_panels(
        self, panel_id: uuid.UUID, with_panel_id: uuid.UUID | None, expected: int | None
    ) -> Panel:
        panel = await self.panel(panel_id, Need.WRITE)
        ensure_version(panel, expected, "panel")
        scene_id = await self._lock_structure(panel, "scene_id")
        siblings = self.panels.siblings()
        order = await siblings.ids_in_order(scene_id)
        if with_panel_id is None:
            index = order.index(panel.id)
            if index + 1 >= len(order):
                raise ValidationException.for_field(
                    "with_panel_id", "the panel is its scene's last: name the one to merge with"
                )
            with_panel_id = order[index + 1]
        if with_panel_id == panel.id or with_panel_id not in order:
            raise ValidationException.for_field(
                "with_panel_id", "must be another panel of the scene"
            )
        other = await self.panels.get_or_none(with_panel_id)
        assert other is not None
        first, second = (
            (panel, other)
            if order.index(panel.id) < order.index(other.id)
            else (
                other,
                panel,
            )
        )
        parts = [text for text in (first.description, second.description) if text]
        first.description = "\n\n".join(parts) if parts else None
        first.set_dialogue([*first.dialogue, *second.dialogue])
        first.location_id = first.location_id or second.location_id
        cast = await self.cast.panel_characters([first.id, second.id])
        together = list(dict.fromkeys([*cast[first.id], *cast[second.id]]))
        first.touch(self.principal.user_id)
        removed_at = second.position
        await self.session.delete(second)
        await self.session.flush()
        await siblings.close_gap(scene_id, removed_at)
        await self.cast.set_panel_characters(first.id, together)
        await self.session.refresh(first)
        self._changed(second, "panel", "deleted")
        self._changed(first, "panel", "updated")
        return first
