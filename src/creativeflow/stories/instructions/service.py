"""Rules of project instructions: who may set them, and which apply where.

Access is the project's (`ProjectService.grant`; targets are loaded through `ContentService`
with their access checked): members read, editors and the owner change, strangers get 404.
A target always belongs to the project the instruction records, since it is read from the
target itself. `applicable` resolves inheritance with `resolution.resolve`; the prompt
builder calls `applicable_for_panel`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.db.ids import uuid7
from creativeflow.db.versioning import ensure_version
from creativeflow.identity.principal import Principal
from creativeflow.shared.core.exceptions import NotFoundException, ValidationException
from creativeflow.stories.content.service import ContentService
from creativeflow.stories.instructions.models import Instruction, Scope
from creativeflow.stories.instructions.repository import InstructionRepository
from creativeflow.stories.instructions.resolution import Resolved, effective, resolve
from creativeflow.stories.instructions.schemas import (
    InstructionCreate,
    InstructionReplace,
    InstructionUpdate,
)
from creativeflow.stories.projects.service import Need, ProjectNotFound, ProjectService

KIND = "instruction"


class InstructionNotFound(NotFoundException):
    code = "INSTRUCTION_NOT_FOUND"


@dataclass(frozen=True, slots=True)
class Applicable:
    scope: Scope
    target_id: uuid.UUID
    entries: list[Resolved]
    effective: list[str]


class InstructionService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self.projects = ProjectService(session, principal)
        self.content = ContentService(session, principal)
        self.instructions = InstructionRepository(session)

    async def instruction(self, instruction_id: uuid.UUID, need: Need = Need.READ) -> Instruction:
        found = await self.instructions.get_or_none(instruction_id)
        if found is None:
            raise InstructionNotFound(f"No instruction {instruction_id}")
        try:
            await self.projects.grant(found.project_id, need)
        except ProjectNotFound:
            raise InstructionNotFound(f"No instruction {instruction_id}") from None
        return found

    def _changed(self, instruction: Instruction, action: str) -> None:
        version = None if action == "deleted" else instruction.version
        self.projects.changed(instruction.project_id, KIND, instruction.id, action, version)

    # -- create --------------------------------------------------------------------------------

    async def create(
        self, scope: Scope, target_id: uuid.UUID, data: InstructionCreate
    ) -> Instruction:
        """An instruction on a project (`target_id` is the project's id), chapter, scene or
        panel; the target is loaded with write access checked."""
        targets: dict[str, uuid.UUID | None] = {
            "chapter_id": None,
            "scene_id": None,
            "panel_id": None,
        }
        if scope is Scope.PROJECT:
            project_id = (await self.projects.grant(target_id, Need.WRITE)).project.id
        elif scope is Scope.CHAPTER:
            project_id = (await self.content.chapter(target_id, Need.WRITE)).project_id
            targets["chapter_id"] = target_id
        elif scope is Scope.SCENE:
            project_id = (await self.content.scene(target_id, Need.WRITE)).project_id
            targets["scene_id"] = target_id
        else:
            project_id = (await self.content.panel(target_id, Need.WRITE)).project_id
            targets["panel_id"] = target_id
        actor = self.principal.user_id
        instruction = Instruction(
            id=uuid7(),
            project_id=project_id,
            scope=scope.value,
            created_by=actor,
            updated_by=actor,
            text=data.text,
            category=data.category.value if data.category is not None else None,
            priority=data.priority,
            enabled=data.enabled,
            **targets,
        )
        await self.instructions.add(instruction)
        self._changed(instruction, "created")
        return instruction

    # -- read ----------------------------------------------------------------------------------

    async def page(
        self,
        project_id: uuid.UUID,
        *,
        scope: Scope | None,
        enabled: bool | None,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[Instruction], int]:
        await self.projects.grant(project_id, Need.READ)
        return await self.instructions.page_of_project(
            project_id,
            scope=scope.value if scope is not None else None,
            enabled=enabled,
            limit=limit,
            offset=offset,
        )

    # -- change --------------------------------------------------------------------------------

    async def update(
        self,
        instruction_id: uuid.UUID,
        data: InstructionReplace | InstructionUpdate,
        expected: int | None,
    ) -> Instruction:
        instruction = await self.instruction(instruction_id, Need.WRITE)
        ensure_version(instruction, expected, KIND)
        if isinstance(data, InstructionReplace):
            fields = set(type(data).model_fields)
        else:
            fields = set(data.model_fields_set)
        for field in sorted(fields - {"version"}):
            value = getattr(data, field)
            if value is None and field in {"text", "priority", "enabled"}:
                raise ValidationException.for_field(field, "must not be null")
            setattr(instruction, field, getattr(value, "value", value))
        return await self._save(instruction)

    async def toggle(self, instruction_id: uuid.UUID, expected: int | None) -> Instruction:
        instruction = await self.instruction(instruction_id, Need.WRITE)
        ensure_version(instruction, expected, KIND)
        instruction.enabled = not instruction.enabled
        return await self._save(instruction)

    async def _save(self, instruction: Instruction) -> Instruction:
        instruction.touch(self.principal.user_id)
        await self.instructions.flush()
        await self.instructions.refresh(instruction)
        self._changed(instruction, "updated")
        return instruction

    async def delete(self, instruction_id: uuid.UUID, expected: int | None) -> None:
        instruction = await self.instruction(instruction_id, Need.WRITE)
        ensure_version(instruction, expected, KIND)
        await self.instructions.delete(instruction)
        self._changed(instruction, "deleted")

    # -- applicable ----------------------------------------------------------------------------

    async def applicable(self, scope: Scope, target_id: uuid.UUID) -> Applicable:
        """What applies to a project, chapter, scene or panel (read access checked), with
        where each instruction came from."""
        chapter_id = scene_id = panel_id = None
        if scope is Scope.PROJECT:
            project_id = (await self.projects.grant(target_id, Need.READ)).project.id
        elif scope is Scope.CHAPTER:
            chapter = await self.content.chapter(target_id)
            project_id, chapter_id = chapter.project_id, chapter.id
        elif scope is Scope.SCENE:
            scene = await self.content.scene(target_id)
            project_id, chapter_id, scene_id = scene.project_id, scene.chapter_id, scene.id
        else:
            panel = await self.content.panel(target_id)
            scene = await self.content.scene(panel.scene_id)
            project_id, chapter_id, scene_id = panel.project_id, scene.chapter_id, scene.id
            panel_id = panel.id
        candidates = await self.instructions.chain(
            project_id, chapter_id=chapter_id, scene_id=scene_id, panel_id=panel_id
        )
        entries = resolve(candidates)
        return Applicable(scope, target_id, entries, effective(entries))

    async def enabled_of_project(self, project_id: uuid.UUID) -> Sequence[Instruction]:
        """Every enabled instruction of a project (access checked by the caller), for building
        many panels' prompts at once with `resolution.chain_for` and `resolve`."""
        return await self.instructions.enabled_of_project(project_id)

    async def applicable_for_panel(self, panel_id: uuid.UUID) -> list[Resolved]:
        """The panel's resolved instructions, broad to narrow (for the prompt builder): use
        the entries whose `applied` is true, in this order."""
        return (await self.applicable(Scope.PANEL, panel_id)).entries
