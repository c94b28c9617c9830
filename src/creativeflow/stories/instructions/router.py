"""Project instructions: `/projects/{id}/instructions`, the scoped `POST /chapters|scenes|
panels/{id}/instructions`, `/instructions/{id}` (with `toggle`) and `/instructions/applicable`.

Access follows the project: members read; editors and the owner change; anyone else gets 404
(INSTRUCTION_NOT_FOUND, or the target's own code); a viewer changing something gets 403.
Changes take `If-Match` (or `version` in the body): 409 VERSION_CONFLICT when stale.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Path, Query, Response, status

from creativeflow.http.auth import DbSession
from creativeflow.http.pagination import Limit, Offset, Page
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import api_router
from creativeflow.http.versioning import IfMatch, expected_version, set_etag
from creativeflow.identity.principal import Principal
from creativeflow.stories.instructions.models import Instruction, Scope
from creativeflow.stories.instructions.schemas import (
    ApplicableEntry,
    ApplicableRead,
    InstructionCreate,
    InstructionRead,
    InstructionReplace,
    InstructionUpdate,
    Toggle,
)
from creativeflow.stories.instructions.service import InstructionService
from creativeflow.stories.parameters import Reader, Skip, Writer

router = api_router(tags=["story instructions"])

InstructionId = Annotated[uuid.UUID, Path(description="The instruction's id")]

_READ = error_responses(401, 403, 404, 422)
_CHANGE = error_responses(401, 403, 404, 409, 422)


def instruction_read(instruction: Instruction) -> InstructionRead:
    return InstructionRead.model_validate(instruction, from_attributes=True)


def _answer(instruction: Instruction, response: Response) -> InstructionRead:
    set_etag(response, instruction.version)
    return instruction_read(instruction)


@router.get(
    "/projects/{project_id}/instructions",
    response_model=Page[InstructionRead],
    summary="A project's instructions at every scope (broad to narrow, high priority first)",
    responses=_READ,
)
async def list_instructions(
    project_id: Annotated[uuid.UUID, Path(description="The project's id")],
    session: DbSession,
    principal: Reader,
    scope: Annotated[Scope | None, Query(description="Only this scope")] = None,
    enabled: Annotated[bool | None, Query(description="Only enabled (or disabled) ones")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
    skip: Skip = None,
) -> Page[InstructionRead]:
    start = skip if skip is not None else offset
    rows, total = await InstructionService(session, principal).page(
        project_id, scope=scope, enabled=enabled, limit=limit, offset=start
    )
    return Page[InstructionRead].of(
        [instruction_read(row) for row in rows], total=total, limit=limit, offset=start
    )


async def _create(
    scope: Scope,
    target_id: uuid.UUID,
    data: InstructionCreate,
    session: DbSession,
    principal: Principal,
    response: Response,
) -> InstructionRead:
    instruction = await InstructionService(session, principal).create(scope, target_id, data)
    response.headers["Location"] = f"/api/v1/instructions/{instruction.id}"
    return _answer(instruction, response)


@router.post(
    "/projects/{project_id}/instructions",
    status_code=status.HTTP_201_CREATED,
    response_model=InstructionRead,
    summary="Add an instruction for the whole project",
    responses=_CHANGE,
)
async def create_project_instruction(
    project_id: Annotated[uuid.UUID, Path(description="The project's id")],
    data: InstructionCreate,
    session: DbSession,
    principal: Writer,
    response: Response,
) -> InstructionRead:
    return await _create(Scope.PROJECT, project_id, data, session, principal, response)


@router.post(
    "/chapters/{chapter_id}/instructions",
    status_code=status.HTTP_201_CREATED,
    response_model=InstructionRead,
    summary="Add an instruction for a chapter",
    responses=_CHANGE,
)
async def create_chapter_instruction(
    chapter_id: Annotated[uuid.UUID, Path(description="The chapter's id")],
    data: InstructionCreate,
    session: DbSession,
    principal: Writer,
    response: Response,
) -> InstructionRead:
    return await _create(Scope.CHAPTER, chapter_id, data, session, principal, response)


@router.post(
    "/scenes/{scene_id}/instructions",
    status_code=status.HTTP_201_CREATED,
    response_model=InstructionRead,
    summary="Add an instruction for a scene",
    responses=_CHANGE,
)
async def create_scene_instruction(
    scene_id: Annotated[uuid.UUID, Path(description="The scene's id")],
    data: InstructionCreate,
    session: DbSession,
    principal: Writer,
    response: Response,
) -> InstructionRead:
    return await _create(Scope.SCENE, scene_id, data, session, principal, response)


@router.post(
    "/panels/{panel_id}/instructions",
    status_code=status.HTTP_201_CREATED,
    response_model=InstructionRead,
    summary="Add an instruction for a panel",
    responses=_CHANGE,
)
async def create_panel_instruction(
    panel_id: Annotated[uuid.UUID, Path(description="The panel's id")],
    data: InstructionCreate,
    session: DbSession,
    principal: Writer,
    response: Response,
) -> InstructionRead:
    return await _create(Scope.PANEL, panel_id, data, session, principal, response)


# Registered before `/instructions/{instruction_id}`, which would otherwise take the path.
@router.get(
    "/instructions/applicable",
    response_model=ApplicableRead,
    summary="The instructions that apply to a project, chapter, scene or panel, and why",
    description=(
        "The project's, then the chapter's, the scene's and the panel's enabled instructions "
        "(as far as the target goes); within a scope by priority (high first) then age. Of two "
        "with the same category at different scopes the narrower wins: the broader one is not "
        "applied and names it in `overridden_by`. `effective`: the applied texts, broad to "
        "narrow, as a prompt uses them."
    ),
    responses=_READ,
)
async def applicable_instructions(
    session: DbSession,
    principal: Reader,
    scope: Annotated[Scope, Query(description="What `id` names")],
    target_id: Annotated[
        uuid.UUID, Query(alias="id", description="The project, chapter, scene or panel's id")
    ],
) -> ApplicableRead:
    found = await InstructionService(session, principal).applicable(scope, target_id)
    return ApplicableRead(
        scope=found.scope,
        id=found.target_id,
        entries=[
            ApplicableEntry(
                instruction=instruction_read(entry.instruction),
                scope=entry.scope,
                source_id=entry.source_id,
                applied=entry.applied,
                overridden_by=entry.overridden_by,
            )
            for entry in found.entries
        ],
        effective=found.effective,
    )


@router.get(
    "/instructions/{instruction_id}",
    response_model=InstructionRead,
    summary="Get an instruction",
    responses=_READ,
)
async def get_instruction(
    instruction_id: InstructionId, session: DbSession, principal: Reader, response: Response
) -> InstructionRead:
    return _answer(
        await InstructionService(session, principal).instruction(instruction_id), response
    )


@router.put(
    "/instructions/{instruction_id}",
    response_model=InstructionRead,
    summary="Replace an instruction's fields (its scope and target stay)",
    responses=_CHANGE,
)
async def replace_instruction(
    instruction_id: InstructionId,
    data: InstructionReplace,
    session: DbSession,
    principal: Writer,
    if_match: IfMatch,
    response: Response,
) -> InstructionRead:
    instruction = await InstructionService(session, principal).update(
        instruction_id, data, expected_version(if_match, data.version)
    )
    return _answer(instruction, response)


@router.patch(
    "/instructions/{instruction_id}",
    response_model=InstructionRead,
    summary="Change some of an instruction's fields",
    responses=_CHANGE,
)
async def update_instruction(
    instruction_id: InstructionId,
    data: InstructionUpdate,
    session: DbSession,
    principal: Writer,
    if_match: IfMatch,
    response: Response,
) -> InstructionRead:
    instruction = await InstructionService(session, principal).update(
        instruction_id, data, expected_version(if_match, data.version)
    )
    return _answer(instruction, response)


@router.post(
    "/instructions/{instruction_id}/toggle",
    response_model=InstructionRead,
    summary="Turn an instruction on or off",
    responses=_CHANGE,
)
async def toggle_instruction(
    instruction_id: InstructionId,
    session: DbSession,
    principal: Writer,
    if_match: IfMatch,
    response: Response,
    data: Toggle | None = None,
) -> InstructionRead:
    body_version = data.version if data is not None else None
    instruction = await InstructionService(session, principal).toggle(
        instruction_id, expected_version(if_match, body_version)
    )
    return _answer(instruction, response)


@router.delete(
    "/instructions/{instruction_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an instruction",
    responses=_CHANGE,
)
async def delete_instruction(
    instruction_id: InstructionId, session: DbSession, principal: Writer, if_match: IfMatch
) -> Response:
    await InstructionService(session, principal).delete(instruction_id, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
