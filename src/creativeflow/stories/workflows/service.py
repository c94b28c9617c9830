"""Story workflow rules: submitting a storyboard or a generated chapter, what their jobs read
and write as the member who asked, and what a project should do next.

A storyboard is a `stories.storyboard` job: the text is gathered (or taken as sent) when it is
submitted, the provider is asked with no transaction open, and its success writes one
storyboard draft; nothing enters the scene until the writer selects it. A generated chapter is
a `stories.generate_chapter` group: its first child (`stories.chapter_plan`) plans the scenes
and, with its success, appends them to the chapter and queues a `stories.storyboard` child for
each, whose success writes the panels straight into its scene and queues a
`stories.generate_image` child per panel when images were asked for. The group's total grows
as stages queue; its progress is finished / total so far.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.identity.principal import Principal
from creativeflow.jobs.models import Job
from creativeflow.jobs.service import JobService, Subject
from creativeflow.providers.tasks import MAX_CHARACTERS, ChapterOutlineInput, PanelDescriptionInput
from creativeflow.settings import Settings
from creativeflow.shared.core.exceptions import ValidationException
from creativeflow.stories.access import PROJECT_SUBJECT
from creativeflow.stories.cast.service import CHARACTER, LOCATION, CastService
from creativeflow.stories.content.models import Panel, Scene
from creativeflow.stories.content.schemas import PanelCreate, SceneCreate
from creativeflow.stories.content.service import ContentService
from creativeflow.stories.generation.jobs import GENERATE_IMAGE_KIND
from creativeflow.stories.generation.schemas import ImageOptions
from creativeflow.stories.generation.service import GenerationService
from creativeflow.stories.projects.service import Need, ProjectService
from creativeflow.stories.tasks.context import (
    chapter_outline_input,
    clip,
    panel_description_input,
)
from creativeflow.stories.tasks.service import SceneMaterial, TaskContextService
from creativeflow.stories.workflows.repository import Found, WorkflowReads
from creativeflow.stories.workflows.schemas import (
    MAX_EXAMPLES,
    MAX_PANELS,
    BreakdownRequest,
    ChapterPlanInput,
    GenerateChapterInput,
    GenerateChapterRequest,
    OutlineSceneIn,
    StoryboardJobInput,
    SuggestedAction,
    Suggestion,
    Workflow,
)
from creativeflow.stories.workflows.storyboard import Cast, default_panel_count, paragraphs

STORYBOARD_KIND = "stories.storyboard"
CHAPTER_PLAN_KIND = "stories.chapter_plan"
GENERATE_CHAPTER_KIND = "stories.generate_chapter"
# Panels with dialogue whose speakers are checked against their cast, in reading order.
SPEAKER_SCAN = 1000
NAME_LENGTH = 80
API = "/api/v1"


def names_of(values: Iterable[str]) -> list[str]:
    """Names within the task limits: each clipped, each once (any case), at most 20."""
    found: dict[str, str] = {}
    for value in values:
        name = clip(value, NAME_LENGTH)
        if name and name.casefold() not in found:
            found[name.casefold()] = name
    return list(found.values())[:MAX_CHARACTERS]


def storyboard_task(
    material: SceneMaterial,
    *,
    text: str | None,
    panel_count: int | None,
    names: Sequence[str] = (),
) -> PanelDescriptionInput:
    """The `panel_description` input of a storyboard: the text sent, or the scene's own as
    the text tasks gather it (422 naming `text` when that is only its title); the panel count
    asked for, or one from the text; the style guide's art style; the names given, then the
    scene's cast, then the project's."""
    values, _ = panel_description_input(material)
    gathered: str = values["scene_text"]
    source = text
    if source is None:
        source = "\n\n".join(paragraphs(gathered)[1:])  # without the title
        if not source.strip():
            raise ValidationException.for_field(
                "text",
                "the scene has nothing but its title to storyboard: send its text, or write "
                "its summary first",
            )
    return PanelDescriptionInput(
        scene_text=text or gathered,
        panel_count=panel_count or default_panel_count(source),
        style=values.get("style"),
        characters=names_of([*names, *values["characters"], *(m.name for m in material.cast)]),
    )


def _seed(seed: int | None, offset: int) -> int | None:
    return None if seed is None else (seed + offset) % 2**32


def _subject(project_id: uuid.UUID) -> Subject:
    return Subject(PROJECT_SUBJECT, project_id)


class WorkflowService:
    """What the workflow routes submit and read, as the caller."""

    def __init__(self, session: AsyncSession, principal: Principal, settings: Settings) -> None:
        self.session = session
        self.principal = principal
        self.settings = settings
        self.content = ContentService(session, principal)
        self.tasks = TaskContextService(session, principal)
        self.projects = ProjectService(session, principal)
        self.reads = WorkflowReads(session)
        self.jobs = JobService(
            session, principal, default_max_attempts=settings.job_default_max_attempts
        )

    async def storyboard(
        self,
        scene_id: uuid.UUID,
        request: BreakdownRequest,
        key: str | None,
        *,
        workflow: Workflow,
    ) -> tuple[Job, bool]:
        """A `stories.storyboard` job for the scene (editors and the owner only). Its
        Idempotency-Key compares what was sent, not the text gathered from the scene."""
        scene = await self.content.scene(scene_id, Need.WRITE)
        material = await self.tasks.scene(scene.id, with_guide=True)
        task = storyboard_task(material, text=request.text, panel_count=request.panel_count)
        data = StoryboardJobInput(
            project_id=scene.project_id,
            scene_id=scene.id,
            task=task,
            seed=request.seed,
            workflow=workflow,
        )
        sent = request.model_dump(mode="json") | {"scene_id": str(scene.id), "workflow": workflow}
        return await self.jobs.submit(
            STORYBOARD_KIND,
            data,
            subject=_subject(scene.project_id),
            priority=request.priority,
            idempotency_key=key,
            subject_checked=True,
            request=sent,
        )

    async def generate_chapter(
        self, request: GenerateChapterRequest, key: str | None
    ) -> tuple[Job, bool]:
        """The group of a generated chapter with its first stage, the plan (editors and the
        owner only). Without an outline, the plan's chapter_outline input is gathered now."""
        chapter = await self.content.chapter(request.chapter_id, Need.WRITE)
        task = None
        if request.outline is None:
            material = await self.tasks.chapter_outline(chapter.id)
            values, _ = chapter_outline_input(material)
            task = ChapterOutlineInput.model_validate(values | {"scene_count": request.scene_count})
        images = None
        if request.images:
            images = ImageOptions(
                count=request.count,
                seed=request.seed,
                format=request.format,
                priority=request.priority,
            )
        plan = ChapterPlanInput(
            project_id=chapter.project_id,
            chapter_id=chapter.id,
            outline=request.outline.scenes if request.outline is not None else None,
            task=task,
            seed=request.seed,
            panels_per_scene=request.panels_per_scene,
            images=images,
        )
        group = GenerateChapterInput(project_id=chapter.project_id, **request.model_dump())
        return await self.jobs.submit_group(
            GENERATE_CHAPTER_KIND,
            group,
            [(CHAPTER_PLAN_KIND, plan)],
            subject=_subject(chapter.project_id),
            priority=request.priority,
            idempotency_key=key,
            subject_checked=True,
        )

    # -- what to do next -----------------------------------------------------------------------

    async def suggestions(self, project_id: uuid.UUID) -> list[Suggestion]:
        """What the project should do next, first things first (any member may ask), in a
        fixed number of statements whatever its size."""
        await self.projects.grant(project_id, Need.READ)
        reads, limit = self.reads, MAX_EXAMPLES
        found: list[Suggestion] = []
        if not await reads.has_chapters(project_id):
            found.append(
                _suggest(
                    "NO_CHAPTERS",
                    Found(1, []),
                    "The project has no chapter yet: add one, then generate its scenes",
                    SuggestedAction(
                        method="POST",
                        path=f"{API}/projects/{project_id}/chapters",
                        body={"title": "Chapter 1"},
                    ),
                )
            )
        if not await reads.has_style_guide(project_id):
            found.append(
                _suggest(
                    "STYLE_GUIDE_MISSING",
                    Found(1, []),
                    "No style guide yet: every image is prompted without an art style, "
                    "palette, aspect ratio or negative prompt",
                    SuggestedAction(method="PUT", path=f"{API}/projects/{project_id}/style-guide"),
                )
            )
        counts, drafts = await reads.pending_drafts(project_id, limit)
        if drafts.count:
            listed = ", ".join(f"{count} {target}" for target, count in sorted(counts.items()))
            suggestion = _suggest(
                "DRAFTS_PENDING",
                drafts,
                f"{_many(drafts.count, 'draft')} {_verb(drafts.count, 'waits', 'wait')} for "
                f"review ({listed}): select, reject or revise",
                SuggestedAction(method="GET", path=f"{API}/drafts/pending?project_id={project_id}"),
            )
            found.append(suggestion.model_copy(update={"details": counts}))
        locked = await reads.locked_without_primary(project_id, limit)
        if locked.count:
            found.append(
                _suggest(
                    "LOCKED_CHARACTERS_WITHOUT_PRIMARY_DESIGN",
                    locked,
                    f"{_many(locked.count, 'locked character')} {_verb(locked.count)} no "
                    "primary design, so the lock has nothing to hold the drawing to: generate "
                    "a sheet and select it (it becomes the primary design), or link a design "
                    "as primary",
                    SuggestedAction(
                        method="POST", path=f"{API}/characters/{locked.ids[0]}/generate-sheet"
                    ),
                )
            )
        bare = await reads.characters_without_design(project_id, limit)
        if bare.count:
            found.append(
                _suggest(
                    "CHARACTERS_WITHOUT_DESIGN",
                    bare,
                    f"{_many(bare.count, 'character')} {_verb(bare.count)} no design: "
                    "their panels are drawn from words alone",
                    SuggestedAction(
                        method="POST",
                        path=f"{API}/generate/character-design",
                        body={"character_id": str(bare.ids[0])},
                    ),
                )
            )
        empty = await reads.empty_chapters(project_id, limit)
        if empty.count:
            found.append(
                _suggest(
                    "EMPTY_CHAPTERS",
                    empty,
                    f"{_many(empty.count, 'chapter')} {_verb(empty.count)} no scenes: "
                    "generate them from an outline",
                    SuggestedAction(
                        method="POST",
                        path=f"{API}/workflow/generate-chapter",
                        body={"chapter_id": str(empty.ids[0])},
                    ),
                )
            )
        scenes = await reads.scenes_without_panels(project_id, limit)
        if scenes.count:
            found.append(
                _suggest(
                    "SCENES_WITHOUT_PANELS",
                    scenes,
                    f"{_many(scenes.count, 'scene')} {_verb(scenes.count)} no panels (nor a "
                    "storyboard waiting): storyboard them from their text",
                    SuggestedAction(
                        method="POST",
                        path=f"{API}/workflow/storyboard",
                        body={"scene_id": str(scenes.ids[0])},
                    ),
                )
            )
        speakers = await self._speakers_not_cast(project_id)
        if speakers is not None:
            found.append(speakers)
        panels = await reads.panels_without_images(project_id, limit)
        if panels.count:
            found.append(
                _suggest(
                    "PANELS_WITHOUT_IMAGES",
                    panels,
                    f"{_many(panels.count, 'panel')} {_verb(panels.count)} no image (nor a "
                    "draft of one waiting): fill a scene's at once",
                    SuggestedAction(
                        method="POST",
                        path=f"{API}/workflow/auto-panel",
                        body={"scene_id": str(panels.rows[0][1])},
                    ),
                )
            )
        covers = await reads.chapters_without_cover(project_id, limit)
        if covers.count:
            found.append(
                _suggest(
                    "CHAPTERS_WITHOUT_COVER",
                    covers,
                    f"{_many(covers.count, 'chapter')} {_verb(covers.count)} no cover",
                    SuggestedAction(
                        method="POST", path=f"{API}/chapters/{covers.ids[0]}/generate-cover"
                    ),
                )
            )
        return sorted(found, key=lambda suggestion: suggestion.priority)

    async def _speakers_not_cast(self, project_id: uuid.UUID) -> Suggestion | None:
        """Panels with a bubble spoken by a character who is not cast in the panel (or is no
        character of the project), among the first SPEAKER_SCAN panels with dialogue."""
        spoken = await self.reads.spoken_panels(project_id, SPEAKER_SCAN)
        if not spoken:
            return None
        cast = await self.reads.panel_casts([panel.id for panel in spoken])
        characters = await self.reads.character_ids(project_id)
        flagged: list[tuple[uuid.UUID, list[uuid.UUID]]] = []
        for panel in spoken:
            own = cast.get(panel.id, [])
            speakers = {_uuid(bubble.get("speaker_id")) for bubble in panel.dialogue}
            missing = {speaker for speaker in speakers - {None} if speaker not in own}
            if missing:
                known = [s for s in missing if s in characters and s is not None]
                flagged.append((panel.id, [*own, *sorted(known)]))
        if not flagged:
            return None
        first, cast_with_speakers = flagged[0]
        action = SuggestedAction(
            method="PATCH",
            path=f"{API}/panels/{first}",
            body={"character_ids": [str(character) for character in cast_with_speakers]},
        )
        scanned = f" (in the first {SPEAKER_SCAN} panels with dialogue)"
        return _suggest(
            "SPEAKERS_NOT_CAST",
            Found(len(flagged), [(panel_id,) for panel_id, _ in flagged[:MAX_EXAMPLES]]),
            f"{_many(len(flagged), 'panel')} {_verb(len(flagged))} a bubble spoken by a "
            "character not cast in the panel"
            + (scanned if len(spoken) >= SPEAKER_SCAN else "")
            + ": cast them, so their looks reach the prompt",
            action,
        )


_PRIORITY = {
    "NO_CHAPTERS": 1,
    "STYLE_GUIDE_MISSING": 2,
    "DRAFTS_PENDING": 3,
    "LOCKED_CHARACTERS_WITHOUT_PRIMARY_DESIGN": 4,
    "CHARACTERS_WITHOUT_DESIGN": 5,
    "EMPTY_CHAPTERS": 6,
    "SCENES_WITHOUT_PANELS": 7,
    "SPEAKERS_NOT_CAST": 8,
    "PANELS_WITHOUT_IMAGES": 9,
    "CHAPTERS_WITHOUT_COVER": 10,
}


def _suggest(code: str, found: Found, message: str, action: SuggestedAction) -> Suggestion:
    return Suggestion(
        code=code,  # type: ignore[arg-type]
        priority=_PRIORITY[code],
        count=found.count,
        message=message,
        action=action,
        examples=found.ids[:MAX_EXAMPLES],
    )


def _many(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _verb(count: int, one: str = "has", more: str = "have") -> str:
    return one if count == 1 else more


def _uuid(value: Any) -> uuid.UUID | None:
    if value in (None, ""):
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return uuid.UUID(int=0)  # not an id at all: nobody's


class WorkflowStages:
    """What the workflow jobs read and write, as the member who asked, with their rights as
    they are when the job runs."""

    def __init__(self, session: AsyncSession, member: Principal, settings: Settings) -> None:
        self.session = session
        self.member = member
        self.settings = settings
        self.content = ContentService(session, member)
        self.cast = CastService(session, member)
        self.tasks = TaskContextService(session, member)
        self.reads = WorkflowReads(session)
        self.jobs = JobService(
            session, member, default_max_attempts=settings.job_default_max_attempts
        )

    async def storyboard_cast(self, scene_id: uuid.UUID) -> Cast:
        """The scene's project's characters and locations and the scene's usual location;
        the scene must still be writable."""
        scene = await self.content.scene(scene_id, Need.WRITE)
        return Cast(
            characters=await self.cast.names(CHARACTER, scene.project_id),
            locations=await self.cast.names(LOCATION, scene.project_id),
            scene_location_id=await self.reads.scene_location(scene.id),
        )

    async def check_chapter(self, chapter_id: uuid.UUID) -> None:
        await self.content.chapter(chapter_id, Need.WRITE)

    async def write_panels(
        self, data: StoryboardJobInput, panels: Sequence[dict[str, Any]], job_id: uuid.UUID
    ) -> list[Panel]:
        """A generated chapter's storyboard: its panels appended to the scene, and an image
        job for each in the group when images were asked for (and the group goes on)."""
        scene = await self.content.scene(data.scene_id, Need.WRITE)
        group = await self.jobs.open_group(job_id)
        created = []
        for panel in panels:
            fields = {key: value for key, value in panel.items() if key in PanelCreate.model_fields}
            created.append(await self.content.create_panel(scene.id, PanelCreate(**fields)))
        if data.images is None or group is None or not created:
            return created
        await self.session.flush()
        generation = GenerationService(self.session, self.member, self.settings)
        rows = [(panel, scene.chapter_id) for panel in created]
        inputs = await generation.panel_image_inputs(scene.project_id, rows, data.images)
        await self.jobs.add_children(group, [(GENERATE_IMAGE_KIND, item) for item in inputs])
        return created

    async def write_scenes(
        self, data: ChapterPlanInput, planned: Sequence[OutlineSceneIn], job_id: uuid.UUID
    ) -> list[Scene]:
        """A chapter's plan: its scenes appended to the chapter, and a storyboard job for each
        in the group (unless the group is being cancelled)."""
        group = await self.jobs.open_group(job_id)
        scenes = [
            await self.content.create_scene(
                data.chapter_id, SceneCreate(title=item.title, summary=item.summary)
            )
            for item in planned
        ]
        if group is None or not scenes:
            return scenes
        material = await self.tasks.scene(scenes[0].id, with_guide=True)
        children = []
        for index, (scene, item) in enumerate(zip(scenes, planned, strict=True)):
            own = dataclasses.replace(material, scene=scene, panels=[], panel_cast={})
            task = storyboard_task(
                own, text=None, panel_count=data.panels_per_scene, names=item.characters
            )
            images = data.images
            if images is not None and images.seed is not None:
                images = images.model_copy(update={"seed": _seed(images.seed, index * MAX_PANELS)})
            child = StoryboardJobInput(
                project_id=data.project_id,
                scene_id=scene.id,
                task=task,
                seed=_seed(data.seed, index),
                workflow="generate_chapter",
                apply=True,
                images=images,
            )
            children.append((STORYBOARD_KIND, child))
        await self.jobs.add_children(group, children)
        return scenes
