"""`POST /workflow/storyboard`, `POST /scenes/{id}/breakdown`, `POST /workflow/generate-chapter`
and `GET /workflow/suggestions`.

The storyboard and the generated chapter answer 202 with their job (`/jobs/{id}`; progress,
`draft_ready` and `task_complete` on the project's socket). Editors and the owner of the
project only; each request counts against the generation rate limit (RATE_LIMIT_GENERATION,
429 with Retry-After) and takes an `Idempotency-Key`. Suggestions are for any member.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Body, Path, Query, Request, Response, status

from creativeflow.http.auth import DbSession
from creativeflow.http.headers import IdempotencyKey
from creativeflow.http.pagination import Limit, Offset, Page
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import api_router
from creativeflow.jobs.router import accepted
from creativeflow.jobs.schemas import JobRead
from creativeflow.stories.parameters import Generator, Reader
from creativeflow.stories.workflows.schemas import (
    BreakdownRequest,
    GenerateChapterRequest,
    StoryboardRequest,
    Suggestion,
)
from creativeflow.stories.workflows.service import WorkflowService

router = api_router(tags=["story workflows"])

_SUBMITTED = error_responses(401, 403, 404, 409, 422, 429)
_STORYBOARD = (
    "A `stories.storyboard` job runs the `panel_description` task over the text (by default "
    "the scene's own, as the text tasks gather it: title, summary, notes, any panels' "
    "descriptions and dialogue; 422 naming `text` when the scene has only its title) and "
    "lays out its answer the same way whatever the provider: each panel's `shot` on the "
    "panel shots (unknown: null) and `camera_angle` from its camera (kept in `notes`); "
    "`character_ids` the project's characters named in it (whole words, any case; a first "
    "name alone when unambiguous) and the speakers of its bubbles; `location_id` a location "
    "named in it, else the panel before's, else the scene's most common, else one the text "
    "names; `dialogue` the text's quoted speech and script lines (`NAME: text`, "
    "`Caption:`, `SFX:`), in order, each in the panel whose description holds it (else at "
    "its place in the text), its `speaker_id` the character a script line or a speech verb "
    'names ("said Mara", "Mara asked"), or the one an action beat just before it names. '
    "Its success writes ONE storyboard draft for the scene (`result.draft_id`; variant 0 "
    "holds the panels, with the names the provider gave beside them): nothing is written "
    "into the scene until you select it (`POST /drafts/{id}/select` appends the panels; "
    "restore deletes them)."
)


def _service(request: Request, session: DbSession, principal: Generator) -> WorkflowService:
    return WorkflowService(session, principal, request.app.state.platform.settings)


@router.post(
    "/workflow/storyboard",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobRead,
    summary="Storyboard a scene from its text (a job; a storyboard draft when done)",
    description=_STORYBOARD,
    responses=_SUBMITTED,
)
async def storyboard(
    data: StoryboardRequest,
    request: Request,
    session: DbSession,
    principal: Generator,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobRead:
    service = _service(request, session, principal)
    submitted = await service.storyboard(
        data.scene_id, data, idempotency_key, workflow="storyboard"
    )
    return accepted(response, *submitted)


@router.post(
    "/scenes/{scene_id}/breakdown",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobRead,
    summary="Break a scene down into panels (a job; a storyboard draft when done)",
    description="`/workflow/storyboard` for the scene in the path. " + _STORYBOARD,
    responses=_SUBMITTED,
)
async def breakdown(
    scene_id: Annotated[uuid.UUID, Path(description="The scene's id")],
    request: Request,
    session: DbSession,
    principal: Generator,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    data: Annotated[BreakdownRequest | None, Body()] = None,
) -> JobRead:
    service = _service(request, session, principal)
    submitted = await service.storyboard(
        scene_id, data or BreakdownRequest(), idempotency_key, workflow="breakdown"
    )
    return accepted(response, *submitted)


@router.post(
    "/workflow/generate-chapter",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobRead,
    summary="Generate a chapter: scenes, their panels and optionally images (a job group)",
    description="One `stories.generate_chapter` group; follow its progress on "
    "`/jobs/{id}` (its stages: `GET /jobs?parent_id={id}`). Its first child, "
    "`stories.chapter_plan`, takes the `outline` given or runs a `chapter_outline` task "
    "(`scene_count` scenes, from the chapter's title, summary and notes, the chapters "
    "before it and the cast), and with its success appends the scenes to the chapter (a "
    "chapter that has scenes keeps them) and queues a `stories.storyboard` child per "
    "scene. Each storyboards its scene as `/workflow/storyboard` does (`panels_per_scene`, "
    "else from the scene's text) but writes the panels DIRECTLY into the scene, with no "
    "storyboard draft: you asked for a generated chapter. With `images`, each panel then "
    "gets a `stories.generate_image` child (`count`, `seed`, `format`), each yielding a "
    "pending image draft as usual. The group's total grows as stages queue, so its "
    "progress (finished / total so far) can step back when one stage queues the next; it "
    "ends when the last child does. Cancelling the group (`POST /jobs/{id}/cancel`) stops "
    "what has not finished: what finished stays (scenes, panels, drafts) and nothing new "
    "is queued. Editors and the owner; 404 for a chapter you may not read, 403 for one "
    "you may only read, 422 naming the field for bad input.",
    responses=_SUBMITTED,
)
async def generate_chapter(
    data: GenerateChapterRequest,
    request: Request,
    session: DbSession,
    principal: Generator,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobRead:
    service = _service(request, session, principal)
    return accepted(response, *await service.generate_chapter(data, idempotency_key))


@router.get(
    "/workflow/suggestions",
    response_model=Page[Suggestion],
    summary="What to do next in a project, first things first",
    description="From the project's state, in a fixed number of statements: no chapter "
    "yet, no style guide, drafts pending review (counted by target type in `details`), "
    "locked characters without a primary design, characters without any design, chapters "
    "without scenes, scenes without panels (nor a storyboard draft waiting), panels with a "
    "bubble spoken by a character not cast in them (among the first 1000 panels with "
    "dialogue), panels without an image (nor an image draft waiting), chapters without a "
    "cover. Each with `count`, up to 5 `examples` (ids, first in reading order) and the "
    "`action` that would do it for the first example (method, path and body of the route). "
    "Ordered by `priority` (1 first); at most ten. Any member; 404 for a project you are "
    "not a member of.",
    responses=error_responses(401, 403, 404, 422),
)
async def suggestions(
    session: DbSession,
    principal: Reader,
    request: Request,
    project_id: Annotated[uuid.UUID, Query(description="The project")],
    limit: Limit = 20,
    offset: Offset = 0,
) -> Page[Suggestion]:
    service = WorkflowService(session, principal, request.app.state.platform.settings)
    found = await service.suggestions(project_id)
    return Page.of(found[offset : offset + limit], total=len(found), limit=limit, offset=offset)
