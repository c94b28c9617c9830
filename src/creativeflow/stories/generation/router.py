"""The story studio's image generations, each answering 202 with its job.

`/panels/{id}/generate-image`, `/chapters/{id}/generate-cover`, `/characters/{id}/generate-sheet`,
`/generate/character-design`, `/generate/background`, `/panels/{id}/variations` and
`/panels/{id}/style-transfer` make one job; `/generate/panel-sequence` and
`/workflow/auto-panel` one group with a job per panel (`GET /jobs?parent_id=` lists them;
cancelling the group cancels what has not finished). `/drafts/{id}/revise` generates again
from a draft. Each job's success writes a draft (`GET /drafts`), announced as `draft_ready`
on the project's socket with `generation_progress` and `task_complete` on the way. Editors and
the owner of the project only; every request counts against the generation rate limit
(RATE_LIMIT_GENERATION, 429 with Retry-After) and takes an `Idempotency-Key`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Body, Depends, Path, Request, Response, status

from creativeflow.http.auth import DbSession
from creativeflow.http.headers import IdempotencyKey
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import api_router
from creativeflow.jobs.models import Job
from creativeflow.jobs.router import accepted
from creativeflow.jobs.schemas import JobRead
from creativeflow.stories.generation.schemas import (
    AutoPanelRequest,
    BackgroundRequest,
    CharacterDesignRequest,
    ImageOptions,
    PanelSequenceRequest,
    ReviseRequest,
    StyleTransferRequest,
    VariationRequest,
)
from creativeflow.stories.generation.service import GenerationService
from creativeflow.stories.parameters import Generator

router = api_router(tags=["story generation"])

PanelId = Annotated[uuid.UUID, Path(description="The panel's id")]
_SUBMITTED = error_responses(401, 403, 404, 409, 422, 429)
_DRAFT_NOTE = " When it succeeds, its draft (`result.draft_id`) waits at `GET /drafts/{id}`."


def _service(request: Request, session: DbSession, principal: Generator) -> GenerationService:
    return GenerationService(session, principal, request.app.state.platform.settings)


# The caller's generation service: editors and owners, within the generation rate limit.
Service = Annotated[GenerationService, Depends(_service)]


def _answer(response: Response, submitted: tuple[Job, bool]) -> JobRead:
    return accepted(response, *submitted)


def _post(
    path: str, summary: str, description: str = ""
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return router.post(
        path,
        status_code=status.HTTP_202_ACCEPTED,
        response_model=JobRead,
        summary=summary,
        description=description + _DRAFT_NOTE,
        responses=_SUBMITTED,
    )


Options = Annotated[ImageOptions | None, Body()]


@_post(
    "/panels/{panel_id}/generate-image",
    "Generate a panel's image (a job; a draft when done)",
    "From the panel's built prompt (`GET /panels/{id}/prompt`), at the style guide's aspect "
    "ratio, with its negative prompt and its characters' and location's references.",
)
async def generate_panel_image(
    panel_id: PanelId,
    service: Service,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    options: Options = None,
) -> JobRead:
    return _answer(
        response, await service.panel_image(panel_id, options or ImageOptions(), idempotency_key)
    )


@_post(
    "/chapters/{chapter_id}/generate-cover",
    "Generate a chapter's cover (a job; a draft when done)",
    "From the chapter's title and summary, the style guide and the main cast (protagonists "
    "and antagonists, with their primary designs as references), in 2:3.",
)
async def generate_cover(
    chapter_id: Annotated[uuid.UUID, Path(description="The chapter's id")],
    service: Service,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    options: Options = None,
) -> JobRead:
    return _answer(
        response, await service.cover(chapter_id, options or ImageOptions(), idempotency_key)
    )


@_post(
    "/characters/{character_id}/generate-sheet",
    "Generate a character's turnaround sheet: front, side, back and expressions",
    "With the character's appearance traits and palette and its designs as references, in "
    "16:9. Selecting the draft links the sheet as a design (primary when none is).",
)
async def generate_character_sheet(
    character_id: Annotated[uuid.UUID, Path(description="The character's id")],
    service: Service,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    options: Options = None,
) -> JobRead:
    return _answer(
        response,
        await service.character_sheet(character_id, options or ImageOptions(), idempotency_key),
    )


@_post(
    "/generate/character-design",
    "Generate a full-body design of a character",
)
async def generate_character_design(
    data: CharacterDesignRequest,
    service: Service,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobRead:
    return _answer(
        response, await service.character_design(data.character_id, data, idempotency_key)
    )


@_post(
    "/generate/background",
    "Generate a location's background (no characters)",
    "Selecting the draft links it as one of the location's references.",
)
async def generate_background(
    data: BackgroundRequest,
    service: Service,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobRead:
    return _answer(
        response,
        await service.background(
            data.location_id, data, idempotency_key, time_of_day=data.time_of_day
        ),
    )


@_post(
    "/generate/panel-sequence",
    "Generate the images of a scene's panels, or of listed panels (a group of jobs)",
    "One job per panel under one group job: the group's progress is the share of panels "
    "done, cancelling it cancels the panels not yet done (finished ones stay), and each "
    "panel's success writes its own draft. With a `seed`, panel n gets seed + n.",
)
async def generate_panel_sequence(
    data: PanelSequenceRequest,
    service: Service,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobRead:
    submitted = await service.panel_sequence(
        data,
        idempotency_key,
        scene_id=data.scene_id,
        panel_ids=data.panel_ids,
        only_missing=data.only_missing,
    )
    return _answer(response, submitted)


@_post(
    "/workflow/auto-panel",
    "Fill a scene's panels that have no image (a group of jobs)",
    "As `/generate/panel-sequence` with `only_missing`: 422 naming `scene_id` when every "
    "panel has an image.",
)
async def auto_panel(
    data: AutoPanelRequest,
    service: Service,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobRead:
    submitted = await service.panel_sequence(
        data, idempotency_key, scene_id=data.scene_id, only_missing=True, workflow="auto_panel"
    )
    return _answer(response, submitted)


@_post(
    "/panels/{panel_id}/variations",
    "Variations of a panel's image (a job; a draft when done)",
    "409 PANEL_HAS_NO_IMAGE when the panel has none selected.",
)
async def panel_variations(
    panel_id: PanelId,
    service: Service,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    data: Annotated[VariationRequest | None, Body()] = None,
) -> JobRead:
    return _answer(
        response, await service.transform(panel_id, data or VariationRequest(), idempotency_key)
    )


@_post(
    "/panels/{panel_id}/style-transfer",
    "A panel's image in another style (a job; a draft when done)",
    "409 PANEL_HAS_NO_IMAGE when the panel has none selected.",
)
async def panel_style_transfer(
    panel_id: PanelId,
    data: StyleTransferRequest,
    service: Service,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobRead:
    return _answer(response, await service.transform(panel_id, data, idempotency_key))


@_post(
    "/drafts/{draft_id}/revise",
    "Generate a draft again with what to change",
    "An image draft: its prompt plus `instructions` and its feedback comments, with the "
    "best-rated variant's seed unless a `seed` is given. A text draft (dialogue, a summary, a "
    "storyboard …): its task again, as it ran, with those as revision notes. The new draft's "
    "`revises_id` is this draft.",
)
async def revise_draft(
    draft_id: Annotated[uuid.UUID, Path(description="The draft's id")],
    service: Service,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    data: Annotated[ReviseRequest | None, Body()] = None,
) -> JobRead:
    return _answer(
        response, await service.revise(draft_id, data or ReviseRequest(), idempotency_key)
    )
