"""Characters and locations: `/projects/{id}/characters`, `/characters/...`,
`/projects/{id}/locations`, `/locations/...`.

Access follows the project: members read; editors and the owner change; anyone else gets 404
(CHARACTER_NOT_FOUND, LOCATION_NOT_FOUND); a viewer changing something gets 403. Changes take
`If-Match` (or `version` in the body): 409 VERSION_CONFLICT when stale. Names are unique in a
project whatever their case (409 CHARACTER_NAME_TAKEN / LOCATION_NAME_TAKEN). Lists are by
name, searchable; `skip` is another name for `offset`. Designs and references are linked from
an existing image (JSON) or uploaded on their own route (`.../upload`, multipart: a route that
holds no transaction while the file streams in, as `POST /images/upload`).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Path, Query, Request, Response, status

from creativeflow.assets.service import ensure_still_stored, receive_image
from creativeflow.assets.uploads import FILE_FIELD
from creativeflow.http.auth import DbSession
from creativeflow.http.forms import form_model, multipart_body
from creativeflow.http.pagination import Limit, Offset, Page
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import (
    UngatedRoute,
    api_router,
    finish_request_session,
    unit_of_work,
)
from creativeflow.http.versioning import IfMatch, expected_version, set_etag
from creativeflow.identity.principal import Principal
from creativeflow.stories.cast.schemas import (
    Appearance,
    CharacterCreate,
    CharacterRead,
    CharacterReplace,
    CharacterUpdate,
    ImageLink,
    ImageLinkRead,
    ImageUpload,
    LocationCreate,
    LocationRead,
    LocationReplace,
    LocationUpdate,
)
from creativeflow.stories.cast.service import CHARACTER, LOCATION, CastKind, CastService
from creativeflow.stories.parameters import ProjectId, Reader, Skip, Writer

router = api_router(tags=["story cast"])

CharacterId = Annotated[uuid.UUID, Path(description="The character's id")]
LocationId = Annotated[uuid.UUID, Path(description="The location's id")]
ImageId = Annotated[uuid.UUID, Path(description="The linked image's id")]
Search = Annotated[str | None, Query(max_length=120, description="Part of the name")]

_READ = error_responses(401, 403, 404, 422)
_CHANGE = error_responses(401, 403, 404, 409, 422)
_UPLOADED = error_responses(401, 403, 404, 413, 415, 422, 503)
_UPLOAD_BODY = multipart_body(
    ImageUpload, FILE_FIELD, "A JPEG, PNG or WebP image (judged by its bytes)"
)
_UPLOAD_DESCRIPTION = (
    "Multipart form: `file` (JPEG, PNG or WebP, told apart by its bytes; at most "
    "IMAGE_UPLOAD_MAX_BYTES, refused while it streams in), optionally `label` and `primary` "
    "(`true` makes it the {what}'s one primary {link}). The image is received, turned upright "
    "and re-encoded as `POST /images/upload` does, and belongs to the {what}'s project: every "
    "member may read it. The answer is the {what} with its {links}; `Location` names the new "
    "image. Editors and the owner only (a viewer gets 403, anyone else 404, before the file "
    "is read); 413 UPLOAD_TOO_LARGE / IMAGE_TOO_MANY_PIXELS, 415 UNSUPPORTED_IMAGE_TYPE, 422 "
    "naming the field (no `file`, a bad `label` or `primary`). Nothing is kept when it fails."
)


def _fields(entity: Any) -> dict[str, Any]:
    return {column.key: getattr(entity, column.key) for column in entity.__table__.columns}


def _links(links: list[Any]) -> list[ImageLinkRead]:
    return [
        ImageLinkRead(
            image_id=link.image_id,
            label=link.label,
            primary=link.is_primary,
            created_at=link.created_at,
        )
        for link in links
    ]


def _read(kind: CastKind, entity: Any, links: list[Any]) -> CharacterRead | LocationRead:
    if kind is CHARACTER:
        return CharacterRead(**_fields(entity), designs=_links(links))
    return LocationRead(**_fields(entity), references=_links(links))


async def _answer(service: CastService, kind: CastKind, entity: Any, response: Response) -> Any:
    set_etag(response, entity.version)
    links = await service.links(kind, [entity.id])
    return _read(kind, entity, links[entity.id])


async def _list(
    service: CastService,
    kind: CastKind,
    project_id: uuid.UUID,
    search: str | None,
    limit: int,
    start: int,
) -> Any:
    rows, total = await service.page(kind, project_id, search, limit=limit, offset=start)
    links = await service.links(kind, [row.id for row in rows])
    items = [_read(kind, row, links[row.id]) for row in rows]
    return Page[Any].of(items, total=total, limit=limit, offset=start)


async def _upload(
    request: Request, response: Response, principal: Principal, kind: CastKind, entity_id: uuid.UUID
) -> Any:
    """Receive the file with no transaction open, then record the image and link it in one
    unit of work: a refusal at any step leaves no image row and no link."""
    platform = request.app.state.platform
    # Authentication may have opened the request's session: close it before the slow part.
    await finish_request_session(request, commit=True)
    async with platform.read_sessions() as session:
        # Before the body is read: who may not change it is refused at once.
        await CastService(session, principal).check_writable(kind, entity_id)

    async def fields(given: dict[str, list[str]]) -> ImageUpload:
        return form_model(ImageUpload, given)

    uploaded, form = await receive_image(
        platform,
        request.stream(),
        content_type=request.headers.get("content-type"),
        content_length=request.headers.get("content-length"),
        check=fields,
    )
    async with unit_of_work(request) as session:
        service = CastService(session, principal)
        entity = await service.upload_image(kind, entity_id, uploaded, form)
        answer = await _answer(service, kind, entity, response)
    await ensure_still_stored(platform.storage, uploaded.stored, uploaded.data)
    response.headers["Location"] = f"/api/v1/images/{uploaded.stored.id}"
    return answer


async def _appearances(
    service: CastService, kind: CastKind, entity_id: uuid.UUID, limit: int, start: int
) -> Page[Appearance]:
    rows, total = await service.appearances(kind, entity_id, limit=limit, offset=start)
    items = [Appearance.model_validate(row._mapping) for row in rows]
    return Page[Appearance].of(items, total=total, limit=limit, offset=start)


# -- characters -----------------------------------------------------------------------------


@router.get(
    "/projects/{project_id}/characters",
    response_model=Page[CharacterRead],
    summary="A project's characters, by name",
    responses=_READ,
)
async def list_characters(
    project_id: ProjectId,
    session: DbSession,
    principal: Reader,
    search: Search = None,
    limit: Limit = 20,
    offset: Offset = 0,
    skip: Skip = None,
) -> Any:
    start = skip if skip is not None else offset
    return await _list(CastService(session, principal), CHARACTER, project_id, search, limit, start)


@router.post(
    "/projects/{project_id}/characters",
    status_code=status.HTTP_201_CREATED,
    response_model=CharacterRead,
    summary="Add a character (its name unique in the project)",
    responses=_CHANGE,
)
async def create_character(
    project_id: ProjectId,
    data: CharacterCreate,
    session: DbSession,
    principal: Writer,
    response: Response,
) -> Any:
    service = CastService(session, principal)
    character = await service.create(CHARACTER, project_id, data)
    response.headers["Location"] = f"/api/v1/characters/{character.id}"
    return await _answer(service, CHARACTER, character, response)


@router.get(
    "/characters/{character_id}",
    response_model=CharacterRead,
    summary="Get a character with its designs",
    responses=_READ,
)
async def get_character(
    character_id: CharacterId, session: DbSession, principal: Reader, response: Response
) -> Any:
    service = CastService(session, principal)
    return await _answer(service, CHARACTER, await service.character(character_id), response)


@router.put(
    "/characters/{character_id}",
    response_model=CharacterRead,
    summary="Replace a character's fields",
    responses=_CHANGE,
)
async def replace_character(
    character_id: CharacterId,
    data: CharacterReplace,
    session: DbSession,
    principal: Writer,
    if_match: IfMatch,
    response: Response,
) -> Any:
    service = CastService(session, principal)
    expected = expected_version(if_match, data.version)
    character = await service.update(CHARACTER, character_id, data, expected, whole=True)
    return await _answer(service, CHARACTER, character, response)


@router.patch(
    "/characters/{character_id}",
    response_model=CharacterRead,
    summary="Change some of a character's fields",
    responses=_CHANGE,
)
async def update_character(
    character_id: CharacterId,
    data: CharacterUpdate,
    session: DbSession,
    principal: Writer,
    if_match: IfMatch,
    response: Response,
) -> Any:
    service = CastService(session, principal)
    expected = expected_version(if_match, data.version)
    character = await service.update(CHARACTER, character_id, data, expected, whole=False)
    return await _answer(service, CHARACTER, character, response)


@router.delete(
    "/characters/{character_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a character (its panels lose it)",
    responses=_CHANGE,
)
async def delete_character(
    character_id: CharacterId, session: DbSession, principal: Writer, if_match: IfMatch
) -> Response:
    await CastService(session, principal).delete(CHARACTER, character_id, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/characters/{character_id}/designs",
    response_model=CharacterRead,
    summary="Link a design image to a character (or change a link's label and primary)",
    description="`image_id` must be an image you may read (422 otherwise); `primary` makes it "
    "the character's one primary design.",
    responses=_CHANGE,
)
async def link_design(
    character_id: CharacterId,
    data: ImageLink,
    session: DbSession,
    principal: Writer,
    response: Response,
) -> Any:
    service = CastService(session, principal)
    character = await service.link_image(CHARACTER, character_id, data)
    return await _answer(service, CHARACTER, character, response)


async def upload_design(
    character_id: CharacterId, request: Request, response: Response, principal: Writer
) -> Any:
    return await _upload(request, response, principal, CHARACTER, character_id)


router.add_api_route(
    "/characters/{character_id}/designs/upload",
    upload_design,
    methods=["POST"],
    status_code=status.HTTP_201_CREATED,
    response_model=CharacterRead,
    summary="Upload a design image for a character",
    description=_UPLOAD_DESCRIPTION.format(what="character", link="design", links="designs"),
    responses=_UPLOADED,
    openapi_extra={"requestBody": _UPLOAD_BODY},
    route_class_override=UngatedRoute,
)


@router.delete(
    "/characters/{character_id}/designs/{image_id}",
    response_model=CharacterRead,
    summary="Unlink a design image from a character",
    responses=_CHANGE,
)
async def unlink_design(
    character_id: CharacterId,
    image_id: ImageId,
    session: DbSession,
    principal: Writer,
    response: Response,
) -> Any:
    service = CastService(session, principal)
    character = await service.unlink_image(CHARACTER, character_id, image_id)
    return await _answer(service, CHARACTER, character, response)


@router.get(
    "/characters/{character_id}/appearances",
    response_model=Page[Appearance],
    summary="The panels a character appears in, in reading order",
    responses=_READ,
)
async def character_appearances(
    character_id: CharacterId,
    session: DbSession,
    principal: Reader,
    limit: Limit = 20,
    offset: Offset = 0,
    skip: Skip = None,
) -> Page[Appearance]:
    start = skip if skip is not None else offset
    return await _appearances(
        CastService(session, principal), CHARACTER, character_id, limit, start
    )


# -- locations ------------------------------------------------------------------------------


@router.get(
    "/projects/{project_id}/locations",
    response_model=Page[LocationRead],
    summary="A project's locations, by name",
    responses=_READ,
)
async def list_locations(
    project_id: ProjectId,
    session: DbSession,
    principal: Reader,
    search: Search = None,
    limit: Limit = 20,
    offset: Offset = 0,
    skip: Skip = None,
) -> Any:
    start = skip if skip is not None else offset
    return await _list(CastService(session, principal), LOCATION, project_id, search, limit, start)


@router.post(
    "/projects/{project_id}/locations",
    status_code=status.HTTP_201_CREATED,
    response_model=LocationRead,
    summary="Add a location (its name unique in the project)",
    responses=_CHANGE,
)
async def create_location(
    project_id: ProjectId,
    data: LocationCreate,
    session: DbSession,
    principal: Writer,
    response: Response,
) -> Any:
    service = CastService(session, principal)
    location = await service.create(LOCATION, project_id, data)
    response.headers["Location"] = f"/api/v1/locations/{location.id}"
    return await _answer(service, LOCATION, location, response)


@router.get(
    "/locations/{location_id}",
    response_model=LocationRead,
    summary="Get a location with its reference images",
    responses=_READ,
)
async def get_location(
    location_id: LocationId, session: DbSession, principal: Reader, response: Response
) -> Any:
    service = CastService(session, principal)
    return await _answer(service, LOCATION, await service.location(location_id), response)


@router.put(
    "/locations/{location_id}",
    response_model=LocationRead,
    summary="Replace a location's fields",
    responses=_CHANGE,
)
async def replace_location(
    location_id: LocationId,
    data: LocationReplace,
    session: DbSession,
    principal: Writer,
    if_match: IfMatch,
    response: Response,
) -> Any:
    service = CastService(session, principal)
    expected = expected_version(if_match, data.version)
    location = await service.update(LOCATION, location_id, data, expected, whole=True)
    return await _answer(service, LOCATION, location, response)


@router.patch(
    "/locations/{location_id}",
    response_model=LocationRead,
    summary="Change some of a location's fields",
    responses=_CHANGE,
)
async def update_location(
    location_id: LocationId,
    data: LocationUpdate,
    session: DbSession,
    principal: Writer,
    if_match: IfMatch,
    response: Response,
) -> Any:
    service = CastService(session, principal)
    expected = expected_version(if_match, data.version)
    location = await service.update(LOCATION, location_id, data, expected, whole=False)
    return await _answer(service, LOCATION, location, response)


@router.delete(
    "/locations/{location_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a location (its panels' location becomes null)",
    responses=_CHANGE,
)
async def delete_location(
    location_id: LocationId, session: DbSession, principal: Writer, if_match: IfMatch
) -> Response:
    await CastService(session, principal).delete(LOCATION, location_id, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/locations/{location_id}/references",
    response_model=LocationRead,
    summary="Link a reference image to a location (or change a link's label and primary)",
    description="`image_id` must be an image you may read (422 otherwise); `primary` makes it "
    "the location's one primary reference.",
    responses=_CHANGE,
)
async def link_reference(
    location_id: LocationId,
    data: ImageLink,
    session: DbSession,
    principal: Writer,
    response: Response,
) -> Any:
    service = CastService(session, principal)
    location = await service.link_image(LOCATION, location_id, data)
    return await _answer(service, LOCATION, location, response)


async def upload_reference(
    location_id: LocationId, request: Request, response: Response, principal: Writer
) -> Any:
    return await _upload(request, response, principal, LOCATION, location_id)


router.add_api_route(
    "/locations/{location_id}/references/upload",
    upload_reference,
    methods=["POST"],
    status_code=status.HTTP_201_CREATED,
    response_model=LocationRead,
    summary="Upload a reference image for a location",
    description=_UPLOAD_DESCRIPTION.format(what="location", link="reference", links="references"),
    responses=_UPLOADED,
    openapi_extra={"requestBody": _UPLOAD_BODY},
    route_class_override=UngatedRoute,
)


@router.delete(
    "/locations/{location_id}/references/{image_id}",
    response_model=LocationRead,
    summary="Unlink a reference image from a location",
    responses=_CHANGE,
)
async def unlink_reference(
    location_id: LocationId,
    image_id: ImageId,
    session: DbSession,
    principal: Writer,
    response: Response,
) -> Any:
    service = CastService(session, principal)
    location = await service.unlink_image(LOCATION, location_id, image_id)
    return await _answer(service, LOCATION, location, response)


@router.get(
    "/locations/{location_id}/usage",
    response_model=Page[Appearance],
    summary="The panels set at a location, in reading order",
    responses=_READ,
)
async def location_usage(
    location_id: LocationId,
    session: DbSession,
    principal: Reader,
    limit: Limit = 20,
    offset: Offset = 0,
    skip: Skip = None,
) -> Page[Appearance]:
    start = skip if skip is not None else offset
    return await _appearances(CastService(session, principal), LOCATION, location_id, limit, start)
