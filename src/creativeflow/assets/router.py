"""/api/v1/images: uploads, the bytes, thumbnails, metadata, the list, deleting, and the image
jobs made from a stored image (variations, style transfer).

Images the caller may not read are 404 everywhere. Routes that touch object storage end their
database work first, so no transaction stays open across a storage call.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.background import BackgroundTask

from creativeflow.assets.errors import ImageNotFound
from creativeflow.assets.imaging import CONTENT_TYPES, THUMBNAIL_CONTENT_TYPE
from creativeflow.assets.models import Image, ImageOrigin
from creativeflow.assets.repository import ImageFilters
from creativeflow.assets.schemas import (
    ImageMetadata,
    ImageRead,
    ImageSort,
    ImageUsage,
    Provenance,
    SortOrder,
    StyleTransferRequest,
    UploadDetails,
    UploadForm,
    VariationRequest,
)
from creativeflow.assets.service import (
    ImageService,
    SubjectRef,
    delete_unused_objects,
    ensure_still_stored,
    read_object,
    receive_image,
    store_thumbnail,
)
from creativeflow.assets.uploads import FILE_FIELD
from creativeflow.http.auth import CurrentPrincipal, DbSession, require_permission
from creativeflow.http.forms import form_model, multipart_body
from creativeflow.http.headers import IdempotencyKey
from creativeflow.http.pagination import Limit, Offset, Page
from creativeflow.http.problems import error_responses
from creativeflow.http.rate_limits import charge_generation
from creativeflow.http.routing import (
    UngatedRoute,
    api_router,
    finish_request_session,
    unit_of_work,
)
from creativeflow.identity.permissions import Permission
from creativeflow.identity.principal import Principal
from creativeflow.jobs.router import JobServiceDep, job_location
from creativeflow.jobs.schemas import JobRead
from creativeflow.jobs.service import JobService, Subject
from creativeflow.providers.jobs import (
    IMAGE_VARIATIONS_KIND,
    STYLE_TRANSFER_KIND,
    ImageEditJobInput,
)
from creativeflow.shared.core.exceptions import ValidationException

router = api_router(prefix="/images", tags=["images"])

ImageId = Annotated[uuid.UUID, Path(description="The image's id")]
PANEL_SUBJECT = "panel"
# Content-addressed: an image's bytes (and its thumbnail's) never change under its URL.
_CACHE_CONTROL = "private, max-age=31536000, immutable"
_BINARY = {"schema": {"type": "string", "format": "binary"}}

Generator = Annotated[Principal, Depends(require_permission(Permission.GENERATION_CREATE))]


async def _generation_quota(request: Request, principal: Generator) -> Principal:
    # After the permission check, before the body is used: a refused request submits nothing.
    await charge_generation(request, principal.user_id)
    return principal


# A user allowed to generate, and within the generation rate limit (RATE_LIMIT_GENERATION).
LimitedGenerator = Annotated[Principal, Depends(_generation_quota)]


async def _end_database_work(request: Request) -> None:
    """Commit and release the request's session now (nothing after this touches the
    database): the storage call that follows must not run inside a transaction."""
    await finish_request_session(request, commit=True)


def _not_modified(request: Request, etag: str) -> bool:
    return request.headers.get("if-none-match") in (etag, f"W/{etag}")


# -- upload --------------------------------------------------------------------------------------


def _upload_subject(form: UploadForm) -> tuple[SubjectRef, str] | None:
    """The subject the upload belongs to, and the field that named it."""
    if form.panel_id is not None:
        if form.subject_type is not None or form.subject_id is not None:
            raise ValidationException.for_field(
                "panel_id", "give panel_id, or subject_type and subject_id, not both"
            )
        return SubjectRef(PANEL_SUBJECT, form.panel_id), "panel_id"
    if (form.subject_type is None) != (form.subject_id is None):
        missing = "subject_id" if form.subject_id is None else "subject_type"
        raise ValidationException.for_field(missing, "subject_type and subject_id go together")
    if form.subject_type is not None and form.subject_id is not None:
        return SubjectRef(form.subject_type, form.subject_id), "subject_type"
    return None


_UPLOAD_BODY = multipart_body(
    UploadForm, FILE_FIELD, "A JPEG, PNG or WebP image (judged by its bytes)"
)


async def upload_image(
    request: Request, response: Response, principal: CurrentPrincipal
) -> ImageRead:
    platform = request.app.state.platform
    # Authentication may have opened the request's session: close it before the slow part.
    await _end_database_work(request)

    async def checked(
        fields: dict[str, list[str]],
    ) -> tuple[UploadForm, tuple[SubjectRef, str] | None]:
        form = form_model(UploadForm, fields, repeatable={"tags"})
        subject = _upload_subject(form)
        if subject is not None:
            # Before any decoding: a subject the caller may not write is 404 at once.
            async with platform.read_sessions() as session:
                await ImageService(session).check_subject(principal, *subject)
        return form, subject

    uploaded, (form, subject) = await receive_image(
        platform,
        request.stream(),
        content_type=request.headers.get("content-type"),
        content_length=request.headers.get("content-length"),
        check=checked,
    )
    async with unit_of_work(request) as session:
        service = ImageService(session)
        if subject is not None:
            await service.check_subject(principal, *subject)
        image = await service.record_upload(
            uploaded,
            owner_id=principal.user_id,
            subject=subject[0] if subject else None,
            tags=form.tags,
        )
    await ensure_still_stored(platform.storage, uploaded.stored, uploaded.data)
    response.headers["Location"] = f"/api/v1/images/{image.id}"
    return ImageRead.of(image)


router.add_api_route(
    "/upload",
    upload_image,
    methods=["POST"],
    status_code=status.HTTP_201_CREATED,
    response_model=ImageRead,
    summary="Upload an image",
    description="Multipart form: `file` (JPEG, PNG or WebP, told apart by its bytes, never its "
    "name or declared type; at most IMAGE_UPLOAD_MAX_BYTES, 10 MB by default, refused while "
    "it streams in), and optionally `panel_id` or `subject_type` + `subject_id` (a subject "
    "you may change) and `tags`. The image is turned upright by its EXIF orientation and "
    "re-encoded without EXIF, XMP or comments (its ICC colour profile is kept); the answer "
    "is its metadata. 413 UPLOAD_TOO_LARGE / IMAGE_TOO_MANY_PIXELS, 415 "
    "UNSUPPORTED_IMAGE_TYPE.",
    responses=error_responses(401, 404, 413, 415, 422, 503),
    openapi_extra={"requestBody": _UPLOAD_BODY},
    route_class_override=UngatedRoute,
)


# -- reading -------------------------------------------------------------------------------------


@router.get(
    "",
    response_model=Page[ImageRead],
    summary="List images",
    description="Your images and those of subjects (projects, brands) you may read; "
    "administrators see every image. Filters combine with AND; `tag` may repeat (an image "
    "must have every one, case-insensitively).",
    responses=error_responses(401, 422),
)
async def list_images(
    principal: CurrentPrincipal,
    session: DbSession,
    tag: Annotated[list[str] | None, Query(description="Repeat for several")] = None,
    origin: ImageOrigin | None = None,
    subject_type: Annotated[str | None, Query(max_length=50)] = None,
    subject_id: uuid.UUID | None = None,
    source_image_id: Annotated[
        uuid.UUID | None, Query(description="Images made from this one")
    ] = None,
    created_after: Annotated[datetime | None, Query(description="Inclusive")] = None,
    created_before: Annotated[datetime | None, Query(description="Exclusive")] = None,
    sort: ImageSort = ImageSort.CREATED_AT,
    order: SortOrder = SortOrder.DESC,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Page[ImageRead]:
    for name, value in (("created_after", created_after), ("created_before", created_before)):
        if value is not None and value.tzinfo is None:
            raise ValidationException.for_field(name, "must include a time zone (e.g. Z)")
    filters = ImageFilters(
        tag_keys=tag or (),
        origin=origin,
        subject_type=subject_type,
        subject_id=subject_id,
        source_image_id=source_image_id,
        created_after=created_after,
        created_before=created_before,
    )
    rows, total = await ImageService(session).list_page(
        principal,
        filters,
        sort=sort.value,
        descending=order is SortOrder.DESC,
        limit=limit,
        offset=offset,
    )
    return Page[ImageRead].of(
        [ImageRead.of(image) for image in rows], total=total, limit=limit, offset=offset
    )


@router.get(
    "/{image_id}",
    summary="An image's bytes",
    description="Served with its content type and a strong ETag (its SHA-256); "
    "`If-None-Match` answers 304. Images you may not read are 404.",
    response_class=Response,
    responses={
        200: {
            "content": {media: _BINARY for media in CONTENT_TYPES.values()},
            "description": "The image",
        },
        304: {"description": "Not modified"},
        **error_responses(401, 404, 422, 503),
    },
)
async def get_image(
    image_id: ImageId, request: Request, session: DbSession, principal: CurrentPrincipal
) -> Response:
    image = await ImageService(session).get(principal, image_id)
    etag = f'"{image.sha256}"'
    headers = {"ETag": etag, "Cache-Control": _CACHE_CONTROL}
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    await _end_database_work(request)
    data = await read_object(request.app.state.platform.storage, image.storage_key)
    return Response(data, media_type=CONTENT_TYPES.get(image.format), headers=headers)


@router.get(
    "/{image_id}/thumbnail",
    summary="An image's thumbnail",
    description="A WebP at most 256 px on its long side (smaller images keep their size), "
    "made on the first request and kept in storage; its own strong ETag, 304 on "
    "`If-None-Match`.",
    response_class=Response,
    responses={
        200: {"content": {THUMBNAIL_CONTENT_TYPE: _BINARY}, "description": "The thumbnail"},
        304: {"description": "Not modified"},
        **error_responses(401, 404, 422, 503),
    },
)
async def get_thumbnail(
    image_id: ImageId, request: Request, session: DbSession, principal: CurrentPrincipal
) -> Response:
    platform = request.app.state.platform
    image = await ImageService(session).get(principal, image_id)
    await _end_database_work(request)
    stored_key = image.thumbnail_key
    if stored_key is not None and _not_modified(request, f'"{stored_key}"'):
        return Response(status_code=304, headers=_thumbnail_headers(stored_key))
    thumbnail = None
    if stored_key is not None:
        with contextlib.suppress(ImageNotFound):  # lost from storage: made again below
            thumbnail = stored_key, await read_object(platform.storage, stored_key)
    if thumbnail is None:
        thumbnail = await _make_thumbnail(request, image)
    key, data = thumbnail
    if _not_modified(request, f'"{key}"'):
        return Response(status_code=304, headers=_thumbnail_headers(key))
    return Response(data, media_type=THUMBNAIL_CONTENT_TYPE, headers=_thumbnail_headers(key))


def _thumbnail_headers(key: str) -> dict[str, str]:
    return {"ETag": f'"{key}"', "Cache-Control": _CACHE_CONTROL}


async def _make_thumbnail(request: Request, image: Image) -> tuple[str, bytes]:
    """Made once: stored, then recorded on every image row with the same bytes."""
    platform = request.app.state.platform
    source = await read_object(platform.storage, image.storage_key)
    key, data = await store_thumbnail(
        platform.storage, image, source, max_pixels=platform.settings.image_max_pixels
    )
    async with platform.write_transaction() as session:
        await ImageService(session).record_thumbnail(image.storage_key, key)
    return key, data


@router.get(
    "/{image_id}/metadata",
    response_model=ImageMetadata,
    summary="An image's metadata, provenance and usage",
    description="Every recorded field; for generated images how they were made (job, "
    "provider, model, prompt, seed, parameters, and the source image of a variation or style "
    "transfer); for uploads what was sent; and where the image is used (its subject, images "
    "made from it, and other modules' references).",
    responses=error_responses(401, 404, 422),
)
async def get_metadata(
    image_id: ImageId, session: DbSession, principal: CurrentPrincipal
) -> ImageMetadata:
    service = ImageService(session)
    image = await service.get(principal, image_id)
    usage = await service.usage(principal, image)
    details = image.details or {}
    upload = details.get("upload")
    provenance = None
    if image.origin is ImageOrigin.GENERATED:
        provenance = Provenance.model_validate(
            {
                "job_id": image.job_id or details.get("job_id"),
                "job_kind": details.get("job_kind"),
                "provider": details.get("provider"),
                "model": details.get("model"),
                "prompt": details.get("prompt"),
                "seed": details.get("seed"),
                "parameters": details.get("parameters") or {},
                "operation": details.get("operation"),
                "source_image_id": details.get("source_image_id"),
                "source_sha256": details.get("source_sha256"),
            }
        )
    return ImageMetadata.model_validate(
        {
            **ImageRead.of(image).model_dump(),
            "provenance": provenance,
            "upload": UploadDetails.model_validate(upload) if upload else None,
            "usage": ImageUsage.model_validate(usage),
        }
    )


# -- deleting ------------------------------------------------------------------------------------


@router.delete(
    "/{image_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an image",
    description="For its owner, or someone who may change its subject (others who may read "
    "it get 403). The bytes and thumbnail leave storage once no other image has the same "
    "bytes (identical uploads share one stored object); images made from it keep existing.",
    responses=error_responses(401, 403, 404, 422),
)
async def delete_image(
    image_id: ImageId, request: Request, session: DbSession, principal: CurrentPrincipal
) -> Response:
    unused = await ImageService(session).delete(principal, image_id)
    # Runs after the route has committed and the response is out: a failed commit deletes
    # nothing, and a failed storage call leaves only an object no row points at.
    cleanup = BackgroundTask(delete_unused_objects, request.app.state.platform.storage, unused)
    return Response(status_code=status.HTTP_204_NO_CONTENT, background=cleanup)


# -- image to image ----------------------------------------------------------------------------

_SUBMITTED = error_responses(401, 403, 404, 409, 422, 429)


async def _submit_edit(
    session: AsyncSession,
    jobs: JobService,
    principal: Principal,
    response: Response,
    image_id: uuid.UUID,
    kind: str,
    fields: dict[str, Any],
    priority: int,
    idempotency_key: str | None,
) -> JobRead:
    service = ImageService(session)
    image = await service.changeable(principal, image_id)
    # The outputs belong where the source does, when the caller may add to it.
    subject = await service.writable_subject(principal, image)
    data = ImageEditJobInput.model_validate({**fields, "source_image_id": image.id})
    job, created = await jobs.submit(
        kind,
        data,
        subject=Subject(subject.type, subject.id) if subject else None,
        priority=priority,
        idempotency_key=idempotency_key,
    )
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return job_location(response, JobRead.of(job))


@router.post(
    "/{image_id}/variations",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobRead,
    summary="Make variations of an image (a job)",
    description="Answers at once with the queued job; when it succeeds, `result.images` "
    "lists the new images, each linked to this one (`source_image_id`) and to the job. "
    "`strength` (0-1) is how far they may move from the source. Needs the generation "
    "permission, counts in the generation rate limit; send an `Idempotency-Key` to make "
    "retries safe.",
    responses=_SUBMITTED,
)
async def create_variations(
    image_id: ImageId,
    body: VariationRequest,
    principal: LimitedGenerator,
    session: DbSession,
    jobs: JobServiceDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobRead:
    fields = body.model_dump(include={"prompt", "strength", "count", "seed", "format"})
    return await _submit_edit(
        session,
        jobs,
        principal,
        response,
        image_id,
        IMAGE_VARIATIONS_KIND,
        fields,
        body.priority,
        idempotency_key,
    )


@router.post(
    "/{image_id}/style-transfer",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobRead,
    summary="Restyle an image (a job)",
    description="As variations, with a `style` (modern, watercolor, noir, neon, pastel, "
    "vintage, comic, illustration), a `palette` of hex colours and/or a `prompt` naming "
    "them; at least one of the three.",
    responses=_SUBMITTED,
)
async def create_style_transfer(
    image_id: ImageId,
    body: StyleTransferRequest,
    principal: LimitedGenerator,
    session: DbSession,
    jobs: JobServiceDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobRead:
    if body.style is None and not body.palette and not body.prompt.strip():
        raise ValidationException.for_field("style", "give a style, a palette or a prompt")
    fields = body.model_dump(
        include={"prompt", "style", "palette", "strength", "count", "seed", "format"}
    )
    return await _submit_edit(
        session,
        jobs,
        principal,
        response,
        image_id,
        STYLE_TRANSFER_KIND,
        fields,
        body.priority,
        idempotency_key,
    )
