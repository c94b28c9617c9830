"""Chapters, scenes and panels: `/projects/{id}/chapters`, `/chapters/...`, `/scenes/...`,
`/panels/...`.

Access follows the project: members read; editors and the owner change; anyone else gets 404
(CHAPTER_NOT_FOUND, SCENE_NOT_FOUND, PANEL_NOT_FOUND); a viewer changing something gets 403.
Changes take `If-Match` (or `version` in the body): 409 VERSION_CONFLICT when stale. Lists are
in reading order (`position`); `skip` is another name for `offset`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Path, Query, Response, status

from creativeflow.http.auth import DbSession
from creativeflow.http.pagination import Offset, Page
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import api_router
from creativeflow.http.versioning import IfMatch, expected_version, set_etag
from creativeflow.shared.core.exceptions import NotFoundException
from creativeflow.stories.content.models import Chapter, Panel, Scene
from creativeflow.stories.content.schemas import (
    ChapterCreate,
    ChapterRead,
    ChapterReplace,
    ChapterUpdate,
    DialogueReplace,
    ImageRef,
    Move,
    PanelCreate,
    PanelMerge,
    PanelOrder,
    PanelPair,
    PanelRead,
    PanelReplace,
    PanelSplit,
    PanelUpdate,
    Reorder,
    SceneCreate,
    SceneRead,
    SceneReplace,
    SceneUpdate,
)
from creativeflow.stories.content.service import ContentService
from creativeflow.stories.parameters import ProjectId, Reader, Skip, Writer

router = api_router(tags=["story content"])

ChapterId = Annotated[uuid.UUID, Path(description="The chapter's id")]
SceneId = Annotated[uuid.UUID, Path(description="The scene's id")]
PanelId = Annotated[uuid.UUID, Path(description="The panel's id")]
# Whole scenes and chapters are read at once: larger pages than elsewhere.
Limit = Annotated[int, Query(ge=1, le=500, description="Page size (1-500)")]

_READ = error_responses(401, 403, 404, 422)
_CHANGE = error_responses(401, 403, 404, 409, 422)


def _fields(entity: Any) -> dict[str, Any]:
    return {column.key: getattr(entity, column.key) for column in entity.__table__.columns}


def chapter_read(chapter: Chapter, scene_count: int) -> ChapterRead:
    return ChapterRead(**_fields(chapter), scene_count=scene_count)


def scene_read(scene: Scene, panel_count: int) -> SceneRead:
    return SceneRead(**_fields(scene), panel_count=panel_count)


def panel_read(panel: Panel, character_ids: list[uuid.UUID]) -> PanelRead:
    return PanelRead(**_fields(panel), character_ids=character_ids)


async def panel_reads(service: ContentService, panels: Sequence[Panel]) -> list[PanelRead]:
    cast = await service.panel_characters([panel.id for panel in panels])
    return [panel_read(panel, cast[panel.id]) for panel in panels]


async def _chapter_answer(
    service: ContentService, chapter: Chapter, response: Response
) -> ChapterRead:
    set_etag(response, chapter.version)
    counts = await service.scene_counts([chapter.id])
    return chapter_read(chapter, counts[chapter.id])


async def _scene_answer(service: ContentService, scene: Scene, response: Response) -> SceneRead:
    set_etag(response, scene.version)
    counts = await service.panel_counts([scene.id])
    return scene_read(scene, counts[scene.id])


async def _panel_answer(service: ContentService, panel: Panel, response: Response) -> PanelRead:
    set_etag(response, panel.version)
    return (await panel_reads(service, [panel]))[0]


# -- chapters -------------------------------------------------------------------------------


@router.get(
    "/projects/{project_id}/chapters",
    response_model=Page[ChapterRead],
    summary="A project's chapters, in order",
    responses=_READ,
)
async def list_chapters(
    project_id: ProjectId,
    session: DbSession,
    principal: Reader,
    limit: Limit = 100,
    offset: Offset = 0,
    skip: Skip = None,
) -> Page[ChapterRead]:
    start = skip if skip is not None else offset
    rows, total, counts = await ContentService(session, principal).chapter_page(
        project_id, limit=limit, offset=start
    )
    return Page[ChapterRead].of(
        [chapter_read(row, counts[row.id]) for row in rows], total=total, limit=limit, offset=start
    )


@router.post(
    "/projects/{project_id}/chapters",
    status_code=status.HTTP_201_CREATED,
    response_model=ChapterRead,
    summary="Add a chapter (at a position: the later ones move down)",
    responses=_CHANGE,
)
async def create_chapter(
    project_id: ProjectId,
    data: ChapterCreate,
    session: DbSession,
    principal: Writer,
    response: Response,
) -> ChapterRead:
    service = ContentService(session, principal)
    chapter = await service.create_chapter(project_id, data)
    response.headers["Location"] = f"/api/v1/chapters/{chapter.id}"
    return await _chapter_answer(service, chapter, response)


@router.get(
    "/chapters/{chapter_id}", response_model=ChapterRead, summary="Get a chapter", responses=_READ
)
async def get_chapter(
    chapter_id: ChapterId, session: DbSession, principal: Reader, response: Response
) -> ChapterRead:
    service = ContentService(session, principal)
    return await _chapter_answer(service, await service.chapter(chapter_id), response)


@router.put(
    "/chapters/{chapter_id}",
    response_model=ChapterRead,
    summary="Replace a chapter's text fields",
    responses=_CHANGE,
)
async def replace_chapter(
    chapter_id: ChapterId,
    data: ChapterReplace,
    session: DbSession,
    principal: Writer,
    if_match: IfMatch,
    response: Response,
) -> ChapterRead:
    service = ContentService(session, principal)
    chapter = await service.update_chapter(
        chapter_id, data, expected_version(if_match, data.version)
    )
    return await _chapter_answer(service, chapter, response)


@router.patch(
    "/chapters/{chapter_id}",
    response_model=ChapterRead,
    summary="Change some of a chapter's fields",
    responses=_CHANGE,
)
async def update_chapter(
    chapter_id: ChapterId,
    data: ChapterUpdate,
    session: DbSession,
    principal: Writer,
    if_match: IfMatch,
    response: Response,
) -> ChapterRead:
    service = ContentService(session, principal)
    chapter = await service.update_chapter(
        chapter_id, data, expected_version(if_match, data.version)
    )
    return await _chapter_answer(service, chapter, response)


@router.delete(
    "/chapters/{chapter_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a chapter with its scenes and panels (the later chapters move up)",
    responses=_CHANGE,
)
async def delete_chapter(
    chapter_id: ChapterId, session: DbSession, principal: Writer, if_match: IfMatch
) -> Response:
    await ContentService(session, principal).delete_chapter(chapter_id, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/chapters/{chapter_id}/reorder",
    response_model=ChapterRead,
    summary="Move a chapter to another position",
    responses=_CHANGE,
)
async def reorder_chapter(
    chapter_id: ChapterId, data: Reorder, session: DbSession, principal: Writer, response: Response
) -> ChapterRead:
    service = ContentService(session, principal)
    chapter = await service.reorder_chapter(chapter_id, data.position)
    return await _chapter_answer(service, chapter, response)


# -- scenes ---------------------------------------------------------------------------------


@router.get(
    "/chapters/{chapter_id}/scenes",
    response_model=Page[SceneRead],
    summary="A chapter's scenes, in order",
    responses=_READ,
)
async def list_scenes(
    chapter_id: ChapterId,
    session: DbSession,
    principal: Reader,
    limit: Limit = 100,
    offset: Offset = 0,
    skip: Skip = None,
) -> Page[SceneRead]:
    start = skip if skip is not None else offset
    rows, total, counts = await ContentService(session, principal).scene_page(
        chapter_id, limit=limit, offset=start
    )
    return Page[SceneRead].of(
        [scene_read(row, counts[row.id]) for row in rows], total=total, limit=limit, offset=start
    )


@router.post(
    "/chapters/{chapter_id}/scenes",
    status_code=status.HTTP_201_CREATED,
    response_model=SceneRead,
    summary="Add a scene to a chapter",
    responses=_CHANGE,
)
async def create_scene(
    chapter_id: ChapterId,
    data: SceneCreate,
    session: DbSession,
    principal: Writer,
    response: Response,
) -> SceneRead:
    service = ContentService(session, principal)
    scene = await service.create_scene(chapter_id, data)
    response.headers["Location"] = f"/api/v1/scenes/{scene.id}"
    return await _scene_answer(service, scene, response)


@router.get("/scenes/{scene_id}", response_model=SceneRead, summary="Get a scene", responses=_READ)
async def get_scene(
    scene_id: SceneId, session: DbSession, principal: Reader, response: Response
) -> SceneRead:
    service = ContentService(session, principal)
    return await _scene_answer(service, await service.scene(scene_id), response)


@router.put(
    "/scenes/{scene_id}",
    response_model=SceneRead,
    summary="Replace a scene's fields",
    responses=_CHANGE,
)
async def replace_scene(
    scene_id: SceneId,
    data: SceneReplace,
    session: DbSession,
    principal: Writer,
    if_match: IfMatch,
    response: Response,
) -> SceneRead:
    service = ContentService(session, principal)
    scene = await service.update_scene(scene_id, data, expected_version(if_match, data.version))
    return await _scene_answer(service, scene, response)


@router.patch(
    "/scenes/{scene_id}",
    response_model=SceneRead,
    summary="Change some of a scene's fields",
    responses=_CHANGE,
)
async def update_scene(
    scene_id: SceneId,
    data: SceneUpdate,
    session: DbSession,
    principal: Writer,
    if_match: IfMatch,
    response: Response,
) -> SceneRead:
    service = ContentService(session, principal)
    scene = await service.update_scene(scene_id, data, expected_version(if_match, data.version))
    return await _scene_answer(service, scene, response)


@router.delete(
    "/scenes/{scene_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a scene with its panels",
    responses=_CHANGE,
)
async def delete_scene(
    scene_id: SceneId, session: DbSession, principal: Writer, if_match: IfMatch
) -> Response:
    await ContentService(session, principal).delete_scene(scene_id, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/scenes/{scene_id}/move",
    response_model=SceneRead,
    summary="Move a scene: to another position, or into another chapter of the project",
    responses=_CHANGE,
)
async def move_scene(
    scene_id: SceneId, data: Move, session: DbSession, principal: Writer, response: Response
) -> SceneRead:
    service = ContentService(session, principal)
    scene = await service.move_scene(scene_id, data.parent_id, data.position)
    return await _scene_answer(service, scene, response)


@router.post(
    "/scenes/{scene_id}/reorder-panels",
    response_model=Page[PanelRead],
    summary="Put a scene's panels in a new order",
    description="`panel_ids` must be exactly the scene's panels, each once (422 otherwise).",
    responses=_CHANGE,
)
async def reorder_panels(
    scene_id: SceneId, data: PanelOrder, session: DbSession, principal: Writer
) -> Page[PanelRead]:
    service = ContentService(session, principal)
    rows = await service.reorder_panels(scene_id, data.panel_ids)
    items = await panel_reads(service, rows)
    return Page[PanelRead].of(items, total=len(items), limit=len(items), offset=0)


# -- panels ---------------------------------------------------------------------------------


@router.get(
    "/scenes/{scene_id}/panels",
    response_model=Page[PanelRead],
    summary="A scene's panels, in order",
    responses=_READ,
)
async def list_panels(
    scene_id: SceneId,
    session: DbSession,
    principal: Reader,
    limit: Limit = 100,
    offset: Offset = 0,
    skip: Skip = None,
) -> Page[PanelRead]:
    start = skip if skip is not None else offset
    service = ContentService(session, principal)
    rows, total = await service.panel_page(scene_id, limit=limit, offset=start)
    items = await panel_reads(service, rows)
    return Page[PanelRead].of(items, total=total, limit=limit, offset=start)


@router.post(
    "/scenes/{scene_id}/panels",
    status_code=status.HTTP_201_CREATED,
    response_model=PanelRead,
    summary="Add a panel to a scene",
    responses=_CHANGE,
)
async def create_panel(
    scene_id: SceneId, data: PanelCreate, session: DbSession, principal: Writer, response: Response
) -> PanelRead:
    service = ContentService(session, principal)
    panel = await service.create_panel(scene_id, data)
    response.headers["Location"] = f"/api/v1/panels/{panel.id}"
    return await _panel_answer(service, panel, response)


@router.get("/panels/{panel_id}", response_model=PanelRead, summary="Get a panel", responses=_READ)
async def get_panel(
    panel_id: PanelId, session: DbSession, principal: Reader, response: Response
) -> PanelRead:
    service = ContentService(session, principal)
    return await _panel_answer(service, await service.panel(panel_id), response)


@router.put(
    "/panels/{panel_id}",
    response_model=PanelRead,
    summary="Replace a panel's fields",
    responses=_CHANGE,
)
async def replace_panel(
    panel_id: PanelId,
    data: PanelReplace,
    session: DbSession,
    principal: Writer,
    if_match: IfMatch,
    response: Response,
) -> PanelRead:
    service = ContentService(session, principal)
    panel = await service.update_panel(panel_id, data, expected_version(if_match, data.version))
    return await _panel_answer(service, panel, response)


@router.patch(
    "/panels/{panel_id}",
    response_model=PanelRead,
    summary="Change some of a panel's fields",
    responses=_CHANGE,
)
async def update_panel(
    panel_id: PanelId,
    data: PanelUpdate,
    session: DbSession,
    principal: Writer,
    if_match: IfMatch,
    response: Response,
) -> PanelRead:
    service = ContentService(session, principal)
    panel = await service.update_panel(panel_id, data, expected_version(if_match, data.version))
    return await _panel_answer(service, panel, response)


@router.put(
    "/panels/{panel_id}/dialogue",
    response_model=PanelRead,
    summary="Replace a panel's dialogue bubbles",
    responses=_CHANGE,
)
async def replace_dialogue(
    panel_id: PanelId,
    data: DialogueReplace,
    session: DbSession,
    principal: Writer,
    if_match: IfMatch,
    response: Response,
) -> PanelRead:
    service = ContentService(session, principal)
    panel = await service.replace_dialogue(
        panel_id, data.bubbles, expected_version(if_match, data.version)
    )
    return await _panel_answer(service, panel, response)


@router.delete(
    "/panels/{panel_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a panel",
    responses=_CHANGE,
)
async def delete_panel(
    panel_id: PanelId, session: DbSession, principal: Writer, if_match: IfMatch
) -> Response:
    await ContentService(session, principal).delete_panel(panel_id, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/panels/{panel_id}/move",
    response_model=PanelRead,
    summary="Move a panel: to another position, or into another scene of the project",
    responses=_CHANGE,
)
async def move_panel(
    panel_id: PanelId, data: Move, session: DbSession, principal: Writer, response: Response
) -> PanelRead:
    service = ContentService(session, principal)
    panel = await service.move_panel(panel_id, data.parent_id, data.position)
    return await _panel_answer(service, panel, response)


@router.post(
    "/panels/{panel_id}/split",
    response_model=PanelPair,
    summary="Split a panel in two at a dialogue bubble",
    description="Bubbles from `at_bubble` on go to a new panel placed right after it (the "
    "later panels move down); descriptions as given, or kept.",
    responses=_CHANGE,
)
async def split_panel(
    panel_id: PanelId, data: PanelSplit, session: DbSession, principal: Writer, if_match: IfMatch
) -> PanelPair:
    service = ContentService(session, principal)
    first, second = await service.split_panel(
        panel_id,
        data.at_bubble,
        data.description,
        data.new_description,
        expected_version(if_match, data.version),
    )
    first_read, second_read = await panel_reads(service, [first, second])
    return PanelPair(first=first_read, second=second_read)


@router.post(
    "/panels/{panel_id}/merge",
    response_model=PanelRead,
    summary="Merge a panel with the next one, or another of its scene",
    description="The panel earlier in reading order stays, with both descriptions and all the "
    "dialogue in order; the other is deleted and the later panels move up.",
    responses=_CHANGE,
)
async def merge_panels(
    panel_id: PanelId,
    data: PanelMerge,
    session: DbSession,
    principal: Writer,
    if_match: IfMatch,
    response: Response,
) -> PanelRead:
    service = ContentService(session, principal)
    panel = await service.merge_panels(
        panel_id, data.with_panel_id, expected_version(if_match, data.version)
    )
    return await _panel_answer(service, panel, response)


@router.get(
    "/panels/{panel_id}/image",
    response_model=ImageRef,
    summary="The panel's selected image",
    description="Where to fetch it (`url`: its bytes; `thumbnail_url`); 404 NO_IMAGE when none "
    "is selected.",
    responses=_READ,
)
async def panel_image(panel_id: PanelId, session: DbSession, principal: Reader) -> ImageRef:
    panel = await ContentService(session, principal).panel(panel_id)
    return _image_ref(panel.selected_image_id, "The panel has no selected image")


@router.get(
    "/chapters/{chapter_id}/cover",
    response_model=ImageRef,
    summary="The chapter's cover image",
    description="Where to fetch it; 404 NO_IMAGE when it has no cover (set one with "
    "`PATCH /chapters/{id}` `cover_image_id`).",
    responses=_READ,
)
async def chapter_cover(chapter_id: ChapterId, session: DbSession, principal: Reader) -> ImageRef:
    chapter = await ContentService(session, principal).chapter(chapter_id)
    return _image_ref(chapter.cover_image_id, "The chapter has no cover")


def _image_ref(image_id: uuid.UUID | None, missing: str) -> ImageRef:
    if image_id is None:
        raise NotFoundException(missing, code="NO_IMAGE")
    return ImageRef(
        image_id=image_id,
        url=f"/api/v1/images/{image_id}",
        thumbnail_url=f"/api/v1/images/{image_id}/thumbnail",
    )
