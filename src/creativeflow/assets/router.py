"""/api/v1/images/{id}: an image's bytes, for who may read it. Uploads, thumbnails and metadata
come with the rest of the images API."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Path, Request, Response

from creativeflow.assets.service import CONTENT_TYPES, ImageService
from creativeflow.http.auth import CurrentPrincipal, DbSession
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import api_router

router = api_router(prefix="/images", tags=["images"])


@router.get(
    "/{image_id}",
    summary="An image's bytes",
    description="Served with its content type and a strong ETag (its SHA-256); "
    "`If-None-Match` answers 304. Images you may not read are 404.",
    response_class=Response,
    responses={
        200: {
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in CONTENT_TYPES.values()
            },
            "description": "The image",
        },
        304: {"description": "Not modified"},
        **error_responses(401, 404, 422),
    },
)
async def get_image(
    image_id: Annotated[uuid.UUID, Path(description="The image's id")],
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    service = ImageService(session)
    image = await service.get(principal, image_id)
    etag = f'"{image.sha256}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=31536000, immutable"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    data = await service.read_bytes(image, request.app.state.platform.storage)
    return Response(data, media_type=CONTENT_TYPES.get(image.format), headers=headers)
