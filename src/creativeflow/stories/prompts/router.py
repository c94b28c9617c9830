"""`GET /panels/{panel_id}/prompt`: the prompt a panel's image is generated from; and
`POST /projects/{id}/style-guide/apply`, which rebuilds and keeps many panels' prompts."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Body, Path

from creativeflow.http.auth import DbSession
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import api_router
from creativeflow.stories.parameters import Reader, Writer
from creativeflow.stories.prompts.schemas import ApplyRequest, ApplyResult, PanelPrompt
from creativeflow.stories.prompts.service import PromptService

router = api_router(tags=["story content"])


@router.get(
    "/panels/{panel_id}/prompt",
    response_model=PanelPrompt,
    summary="A panel's prompt, with each part's source",
    description="Built from the style guide, the panel's description, shot and angle, its "
    "characters' appearance, its location, its mood and the instructions that apply to it "
    "(`/instructions/applicable`); the reference images are its characters' primary designs, "
    "its location's primary reference and the style guide's references. A character under "
    "the identity lock (`locked`) gives an `identity` part instead of a `character` part (its "
    "name, appearance traits and colours, to be drawn the same every time) and all its "
    "designs, primary first, at most 4.",
    responses=error_responses(401, 403, 404, 422),
)
async def panel_prompt(
    panel_id: Annotated[uuid.UUID, Path(description="The panel's id")],
    session: DbSession,
    principal: Reader,
) -> PanelPrompt:
    return await PromptService(session, principal).build(panel_id)


@router.post(
    "/projects/{project_id}/style-guide/apply",
    response_model=ApplyResult,
    summary="Rebuild and keep the prompts of a project's panels (or a chapter's or a scene's)",
    description="After changing the style guide, the cast or the instructions: every panel's "
    "prompt is built again and kept; the answer lists the ones that changed (before and "
    "after) in reading order. Editors and the owner.",
    responses=error_responses(401, 403, 404, 422),
)
async def apply_style_guide(
    project_id: Annotated[uuid.UUID, Path(description="The project's id")],
    session: DbSession,
    principal: Writer,
    data: Annotated[ApplyRequest | None, Body()] = None,
) -> ApplyResult:
    scope = data or ApplyRequest()
    changed, unchanged = await PromptService(session, principal).apply(
        project_id, chapter_id=scope.chapter_id, scene_id=scope.scene_id
    )
    return ApplyResult(changed=changed, unchanged=unchanged)
