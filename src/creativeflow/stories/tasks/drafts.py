"""A text task run about the story leaves a draft to review, as every generation does.

| task (about) | draft | its variants |
|---|---|---|
| `dialogue` (panel) | text, `dialogue` | one per option: its lines, as "Name: text" |
| `visual_prompt` (panel) | text, `visual_prompt` | the prompt |
| `scene_summary` (scene) | text, `scene_summary` | the summary |
| `panel_description` (scene) | storyboard | the panels (description, shot, notes) |
| `character_profile` (character) | text, `character_profile` | the summary (with the profile) |
| `chapter_outline` (chapter, project) | text, `chapter_outline` | the logline (with the scenes) |

Selecting one writes it into its target (`stories/drafts/targets.py`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.providers.contexts import ContextType, OutcomeWrite, TaskOutcome
from creativeflow.providers.tasks import TaskType
from creativeflow.stories.content.models import Shot
from creativeflow.stories.drafts.models import DraftKind, DraftTarget
from creativeflow.stories.drafts.service import NewDraft, record_draft

# The providers' shot names the content model has no exact match for.
_SHOTS = {"medium_close_up": Shot.MEDIUM.value}


def _lines(option: dict[str, Any]) -> str:
    return "\n".join(f"{line['character']}: {line['text']}" for line in option.get("lines", []))


def _panel(item: dict[str, Any]) -> dict[str, Any]:
    shot = _SHOTS.get(item.get("shot", ""), item.get("shot"))
    return {
        "description": item.get("description"),
        "shot": shot if shot in {value.value for value in Shot} else None,
        "notes": " / ".join(
            part for part in (item.get("camera"), item.get("dialogue_hint")) if part
        )
        or None,
        "characters": item.get("characters", []),
    }


def _variants(task: TaskType, output: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    if task is TaskType.DIALOGUE:
        return DraftKind.TEXT, [
            {"output": option, "text": _lines(option)} for option in output.get("options", [])
        ]
    if task is TaskType.PANEL_DESCRIPTION:
        panels = [_panel(item) for item in output.get("panels", [])]
        return DraftKind.STORYBOARD, [{"panels": panels, "output": output}]
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
        record_draft(session, new)

    return OutcomeWrite({"draft_id": str(new.id)}, write)
