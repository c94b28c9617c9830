"""The workflow jobs: `stories.storyboard` (a scene's text made into panels), and a generated
chapter: the group `stories.generate_chapter`, whose first child `stories.chapter_plan` plans
the scenes and queues their storyboards, which queue their panels' images.

Each runs as the member who asked, with their rights as they are when it runs (removed from
the project, or made a viewer, in the meantime, it fails with the story's 404 or 403 code).
The text provider is called with no transaction open; everything a stage writes (a draft,
scenes, panels, the next stage's jobs) is written with its success, so it exists exactly when
the stage succeeded, and a stage whose group was cancelled queues nothing more.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from creativeflow.identity.repository import UserRepository
from creativeflow.identity.service import principal_for
from creativeflow.jobs.context import JobContext
from creativeflow.jobs.errors import JobFailed
from creativeflow.jobs.kinds import Retries, job_group, job_kind
from creativeflow.providers.base import TextResult
from creativeflow.providers.service import run_text_task, usage_document
from creativeflow.providers.tasks import TASKS, TaskInput, TaskType
from creativeflow.shared.core.exceptions import BaseAPIException
from creativeflow.stories.drafts.models import DraftKind, DraftTarget
from creativeflow.stories.drafts.service import NewDraft, record_draft
from creativeflow.stories.workflows.schemas import (
    ChapterPlanInput,
    GenerateChapterInput,
    OutlineSceneIn,
    StoryboardJobInput,
)
from creativeflow.stories.workflows.service import (
    CHAPTER_PLAN_KIND,
    GENERATE_CHAPTER_KIND,
    STORYBOARD_KIND,
    WorkflowStages,
    names_of,
)
from creativeflow.stories.workflows.storyboard import build_panels

if TYPE_CHECKING:
    from creativeflow.identity.principal import Principal
    from creativeflow.platform import Platform

_RETRIES = Retries(backoff_seconds=5, max_backoff_seconds=60)

job_group(
    GENERATE_CHAPTER_KIND,
    GenerateChapterInput,
    description="A chapter generated: its plan, then a storyboard per scene, then (when "
    "asked) an image per panel, each stage queued by the one before",
)


async def _member(platform: Platform, owner_id: uuid.UUID | None) -> Principal:
    async with platform.read_sessions() as session:
        user = await UserRepository(session).get_with_roles(owner_id) if owner_id else None
        if user is None or not user.is_active:
            raise JobFailed("OWNER_GONE", "The member who asked for it is no longer active")
        return principal_for(user)


async def _ask(
    context: JobContext, task: TaskType, data: TaskInput, seed: int | None
) -> tuple[TextResult, dict[str, Any], str]:
    """The text provider's validated answer to the task (no transaction open), with the
    prompt it was sent."""
    platform = context.platform
    spec = TASKS[task]
    request = spec.build_request(
        data, seed=seed, timeout=platform.settings.provider_job_timeout_seconds
    )
    await context.progress(0.05, f"asking {platform.text_provider.name}")
    result, output = await run_text_task(
        platform,
        platform.text_provider,
        spec,
        request,
        user_id=context.owner_id,
        job_id=context.job_id,
    )
    return result, output, request.prompt


def _served(result: TextResult) -> dict[str, Any]:
    return {
        "provider": result.provider,
        "model": result.model,
        "seed": result.seed,
        "usage": usage_document(result.usage),
    }


@job_kind(
    STORYBOARD_KIND,
    StoryboardJobInput,
    description="A scene's text made into panels (description, shot, cast, location, "
    "bubbles): a storyboard draft, or (in a generated chapter) the scene's panels",
    time_limit_seconds=600,
    retries=_RETRIES,
)
async def storyboard(context: JobContext, data: StoryboardJobInput) -> dict[str, Any]:
    platform = context.platform
    settings = platform.settings
    member = await _member(platform, context.owner_id)
    try:
        async with platform.read_sessions() as session:
            cast = await WorkflowStages(session, member, settings).storyboard_cast(data.scene_id)
    except BaseAPIException as exc:  # the scene is gone, or no longer the member's to edit
        raise JobFailed(exc.code, exc.detail) from exc
    result, output, prompt = await _ask(context, TaskType.PANEL_DESCRIPTION, data.task, data.seed)
    panels = build_panels(output, data.task.scene_text, cast)
    bubbles = sum(len(panel["dialogue"]) for panel in panels)
    await context.progress(0.9, f"{len(panels)} panels laid out")
    answer = {
        "scene_id": str(data.scene_id),
        "workflow": data.workflow,
        "panel_count": len(panels),
        "bubble_count": bubbles,
        **_served(result),
    }
    if data.apply:

        async def write_panels(session: Any) -> None:
            stages = WorkflowStages(session, member, settings)
            await stages.write_panels(data, panels, context.job_id)

        context.on_success(write_panels)
        return answer | {"images": data.images is not None}
    new = NewDraft(
        project_id=data.project_id,
        kind=DraftKind.STORYBOARD,
        operation="storyboard",
        target_type=DraftTarget.SCENE,
        target_id=data.scene_id,
        variants=[{"panels": panels}],
        job_id=context.job_id,
        prompt=prompt,
        provider=result.provider,
        model=result.model,
        parameters={
            "task_type": TaskType.PANEL_DESCRIPTION.value,
            "panel_count": data.task.panel_count,
            "characters": data.task.characters,
            "style": data.task.style,
            "seed": result.seed,
            "workflow": data.workflow,
        },
        created_by=context.owner_id,
    )

    async def write_draft(session: Any) -> None:
        record_draft(session, new)

    context.on_success(write_draft)
    return answer | {"draft_id": str(new.id)}


@job_kind(
    CHAPTER_PLAN_KIND,
    ChapterPlanInput,
    description="A generated chapter's plan: its scenes (from the outline given, or a "
    "chapter_outline task), appended to the chapter, and a storyboard job for each",
    time_limit_seconds=600,
    retries=_RETRIES,
)
async def chapter_plan(context: JobContext, data: ChapterPlanInput) -> dict[str, Any]:
    platform = context.platform
    settings = platform.settings
    member = await _member(platform, context.owner_id)
    try:
        async with platform.read_sessions() as session:
            await WorkflowStages(session, member, settings).check_chapter(data.chapter_id)
    except BaseAPIException as exc:
        raise JobFailed(exc.code, exc.detail) from exc
    served: dict[str, Any] = {}
    if data.outline is not None:
        planned = list(data.outline)
        source = "outline"
    elif data.task is not None:
        result, output, _ = await _ask(context, TaskType.CHAPTER_OUTLINE, data.task, data.seed)
        planned = [
            OutlineSceneIn(
                title=scene["title"][:200],
                summary=scene["summary"][:2000],
                characters=names_of(scene.get("characters") or []),
            )
            for scene in output["scenes"]
        ]
        source, served = "chapter_outline", _served(result) | {"outline": output}
    else:
        raise JobFailed("INVALID_JOB_INPUT", "A chapter plan needs an outline or its task")
    await context.progress(0.9, f"{len(planned)} scenes planned")

    async def write_scenes(session: Any) -> None:
        await WorkflowStages(session, member, settings).write_scenes(data, planned, context.job_id)

    context.on_success(write_scenes)
    return {
        "chapter_id": str(data.chapter_id),
        "source": source,
        "scenes": [scene.model_dump(mode="json") for scene in planned],
        **served,
    }
