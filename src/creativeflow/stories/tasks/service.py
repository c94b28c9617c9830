"""Reading what a text task about a project, chapter, scene, panel or character needs, with
the caller's access checked: each target's material in a fixed number of statements.

Reading is enough: generating text changes nothing in the story (a draft made from it is
accepted later, by someone who may write). A caller who may not read the target gets 404 for
it (`SCENE_NOT_FOUND`, ...), as anywhere in the story studio; a key without `stories:read` 403.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.identity.permissions import Permission
from creativeflow.identity.principal import Principal
from creativeflow.identity.service import ensure_allowed
from creativeflow.shared.core.exceptions import NotFoundException
from creativeflow.stories.cast.models import Character
from creativeflow.stories.cast.service import CastService, CharacterNotFound
from creativeflow.stories.content.models import Chapter, Panel, Scene
from creativeflow.stories.content.service import ChapterNotFound, PanelNotFound, SceneNotFound
from creativeflow.stories.instructions.repository import InstructionRepository
from creativeflow.stories.instructions.resolution import Resolved, resolve
from creativeflow.stories.projects.models import Project
from creativeflow.stories.projects.service import Need, ProjectNotFound, ProjectService
from creativeflow.stories.prompts.schemas import PanelPrompt
from creativeflow.stories.prompts.service import PromptContext, PromptService, assemble
from creativeflow.stories.style.schemas import StyleGuideRead
from creativeflow.stories.style.service import StyleGuideService
from creativeflow.stories.tasks.repository import (
    CastMember,
    ChapterLine,
    SceneLine,
    TaskReads,
)

# The scenes of a character's profile: its first appearances are enough to know it.
CHARACTER_SCENES = 50


@dataclass(frozen=True, slots=True)
class SceneMaterial:
    project: Project
    scene: Scene
    panels: list[Panel]
    panel_cast: dict[uuid.UUID, list[uuid.UUID]]
    cast: list[CastMember]
    guide: StyleGuideRead | None  # loaded only when asked for


@dataclass(frozen=True, slots=True)
class PanelMaterial:
    project: Project
    scene: Scene
    panel: Panel
    panel_cast: list[uuid.UUID]
    cast: list[CastMember]
    instructions: list[Resolved]


@dataclass(frozen=True, slots=True)
class PanelPromptMaterial:
    project: Project
    scene: Scene
    panel: Panel
    prompt: PanelPrompt
    context: PromptContext


@dataclass(frozen=True, slots=True)
class CharacterMaterial:
    project: Project
    character: Character
    chapters: list[ChapterLine]
    scenes: list[SceneLine]
    cast: list[CastMember]
    instructions: list[Resolved]


@dataclass(frozen=True, slots=True)
class OutlineMaterial:
    """A chapter to outline (None: the project's next one) and the story before it."""

    project: Project
    chapter: Chapter | None
    previous: list[ChapterLine]
    cast: list[CastMember]
    instructions: list[Resolved]


class TaskContextService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self.projects = ProjectService(session, principal)
        self.cast = CastService(session, principal)
        self.reads = TaskReads(session)
        self.instructions = InstructionRepository(session)

    async def _project(
        self,
        project_id: uuid.UUID,
        not_found: type[NotFoundException],
        what: str,
        target: uuid.UUID,
    ) -> Project:
        try:
            return (await self.projects.grant(project_id, Need.READ)).project
        except ProjectNotFound:
            raise not_found(f"No {what} {target}") from None

    def _readable(self) -> None:
        ensure_allowed(self.principal, Permission.STORIES_READ)

    async def _chain(
        self,
        project_id: uuid.UUID,
        *,
        chapter_id: uuid.UUID | None = None,
        scene_id: uuid.UUID | None = None,
        panel_id: uuid.UUID | None = None,
    ) -> list[Resolved]:
        candidates = await self.instructions.chain(
            project_id, chapter_id=chapter_id, scene_id=scene_id, panel_id=panel_id
        )
        return [entry for entry in resolve(candidates) if entry.applied]

    async def scene(self, scene_id: uuid.UUID, *, with_guide: bool = False) -> SceneMaterial:
        self._readable()
        scene = await self.reads.scene(scene_id)
        if scene is None:
            raise SceneNotFound(f"No scene {scene_id}")
        project = await self._project(scene.project_id, SceneNotFound, "scene", scene_id)
        panels = await self.reads.panels_of(scene.id)
        guide = None
        if with_guide:
            guide = await StyleGuideService(self.session, self.principal).get(project.id)
        return SceneMaterial(
            project=project,
            scene=scene,
            panels=panels,
            panel_cast=await self.cast.panel_characters([panel.id for panel in panels]),
            cast=await self.reads.cast(project.id),
            guide=guide,
        )

    async def _panel(self, panel_id: uuid.UUID) -> tuple[Project, Panel, Scene]:
        self._readable()
        found = await self.reads.panel_with_scene(panel_id)
        if found is None:
            raise PanelNotFound(f"No panel {panel_id}")
        panel, scene = found
        return await self._project(panel.project_id, PanelNotFound, "panel", panel_id), panel, scene

    async def panel(self, panel_id: uuid.UUID) -> PanelMaterial:
        project, panel, scene = await self._panel(panel_id)
        cast = await self.cast.panel_characters([panel.id])
        return PanelMaterial(
            project=project,
            scene=scene,
            panel=panel,
            panel_cast=cast.get(panel.id, []),
            cast=await self.reads.cast(project.id),
            instructions=await self._chain(
                project.id, chapter_id=scene.chapter_id, scene_id=scene.id, panel_id=panel.id
            ),
        )

    async def panel_prompt(self, panel_id: uuid.UUID) -> PanelPromptMaterial:
        """The panel and its prompt as the prompt builder makes it, with what it was made of."""
        project, panel, scene = await self._panel(panel_id)
        context = await PromptService(self.session, self.principal).context(project.id, [panel])
        return PanelPromptMaterial(
            project=project,
            scene=scene,
            panel=panel,
            prompt=assemble(panel, scene.chapter_id, context),
            context=context,
        )

    async def character(self, character_id: uuid.UUID) -> CharacterMaterial:
        self._readable()
        character = await self.reads.character(character_id)
        if character is None:
            raise CharacterNotFound(f"No character {character_id}")
        project = await self._project(
            character.project_id, CharacterNotFound, "character", character_id
        )
        return CharacterMaterial(
            project=project,
            character=character,
            chapters=await self.reads.chapters(project.id),
            scenes=await self.reads.scenes_with(character.id, limit=CHARACTER_SCENES),
            cast=await self.reads.cast(project.id),
            instructions=await self._chain(project.id),
        )

    async def chapter_outline(self, chapter_id: uuid.UUID) -> OutlineMaterial:
        self._readable()
        chapter = await self.reads.chapter(chapter_id)
        if chapter is None:
            raise ChapterNotFound(f"No chapter {chapter_id}")
        project = await self._project(chapter.project_id, ChapterNotFound, "chapter", chapter_id)
        chapters = await self.reads.chapters(project.id)
        return OutlineMaterial(
            project=project,
            chapter=chapter,
            previous=[line for line in chapters if line.position < chapter.position],
            cast=await self.reads.cast(project.id),
            instructions=await self._chain(project.id, chapter_id=chapter.id),
        )

    async def next_chapter_outline(self, project_id: uuid.UUID) -> OutlineMaterial:
        self._readable()
        project = (await self.projects.grant(project_id, Need.READ)).project
        return OutlineMaterial(
            project=project,
            chapter=None,
            previous=await self.reads.chapters(project.id),
            cast=await self.reads.cast(project.id),
            instructions=await self._chain(project.id),
        )
