"""A text task run about the story leaves a draft to review, as every generation does.

| task (about) | draft | its variants |
|---|---|---|
| `dialogue` (panel) | text, `dialogue` | one per option: its lines, as "Name: text" |
| `visual_prompt` (panel) | text, `visual_prompt` | the prompt |
| `scene_summary` (scene) | text, `scene_summary` | the summary |
| `panel_description` (scene) | storyboard | the panels, laid out as the storyboard workflow does |
| `character_profile` (character) | text, `character_profile` | the summary (with the profile) |
| `chapter_outline` (chapter, project) | text, `chapter_outline` | the logline (with the scenes) |

Selecting one writes it into its target (`stories/drafts/targets.py`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.identity.repository import UserRepository
from creativeflow.identity.service import principal_for
from creativeflow.providers.contexts import ContextType, OutcomeWrite, TaskOutcome
from creativeflow.providers.tasks import TaskType
from creativeflow.stories.cast.service import CHARACTER, LOCATION, CastService
from creativeflow.stories.drafts.models import DraftKind, DraftTarget
from creativeflow.stories.drafts.service import NewDraft, record_draft
from creativeflow.stories.workflows.storyboard import Cast, build_panels


def _lines(option: dict[str, Any]) -> str:
    return "\n".join(f"{line['character']}: {line['text']}" for line in option.get("lines", []))


def _variants(task: TaskType, output: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    if task is TaskType.DIALOGUE:
        return DraftKind.TEXT, [
            {"output": option, "text": _lines(option)} for option in output.get("options", [])
        ]
    if task is TaskType.PANEL_DESCRIPTION:  # laid out when written (`_storyboard`)
        return DraftKind.STORYBOARD, [{"panels": [], "output": output}]
    text_of = {
        TaskType.VISUAL_PROMPT: "prompt",
        TaskType.SCENE_SUMMARY: "summary",
        TaskType.CHARACTER_PROFILE: "summary",
        TaskType.CHAPTER_OUTLINE: "logline",
    }
    return DraftKind.TEXT, [{"output": output, "text": output.get(text_of[task])}]


def task_draft(outcome: TaskOutcome) -> OutcomeWrite | None:
    """The draft a story task's output becomes; None outside a project."""
    if outcome.subject_id is None:
        return None
    kind, variants = _variants(outcome.task, outcome.output)
    target = (
        DraftTarget.PROJECT if outcome.target_type is ContextType.PROJECT else outcome.target_type
    )
    new = NewDraft(
        project_id=outcome.subject_id,
        kind=kind,
        operation="storyboard" if kind == DraftKind.STORYBOARD else outcome.task.value,
        target_type=str(target),
        target_id=outcome.target_id,
        variants=variants,
        job_id=outcome.job_id,
        prompt=outcome.prompt,
        provider=outcome.provider,
        model=outcome.model,
        # The task as it ran, so a revision can run it again with notes.
        parameters={**outcome.task_input, "seed": outcome.seed},
        revises_id=outcome.revises,
        created_by=outcome.owner_id,
    )

    async def write(session: AsyncSession) -> None:
        if kind == DraftKind.STORYBOARD:
            laid_out = await _storyboard(session, outcome)
            record_draft(session, dataclasses.replace(new, variants=laid_out))
        else:
            record_draft(session, new)

    return OutcomeWrite({"draft_id": str(new.id)}, write)


async def _storyboard(session: AsyncSession, outcome: TaskOutcome) -> list[dict[str, Any]]:
    """The panels laid out as the storyboard workflow lays them out (`workflows/storyboard`:
    cast and location found by name, the scene text's dialogue split into bubbles), with the
    project's cast as it is now."""
    user = (
        await UserRepository(session).get_with_roles(outcome.owner_id) if outcome.owner_id else None
    )
    assert outcome.subject_id is not None
    cast_names = CastService(session, principal_for(user)) if user is not None else None
    characters = await cast_names.names(CHARACTER, outcome.subject_id) if cast_names else []
    locations = await cast_names.names(LOCATION, outcome.subject_id) if cast_names else []
    text = str(outcome.task_input.get("input", {}).get("scene_text") or "")
    panels = build_panels(outcome.output, text, Cast(characters=characters, locations=locations))
    return [{"panels": panels, "output": outcome.output}]
