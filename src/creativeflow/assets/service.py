"""Image rules: storing uploaded and generated images with their provenance, serving them to who
may read them, deleting them, and their thumbnails.

Bytes go to the object storage first (content-addressed, de-duplicated), with no transaction
open; the row that points at them is written in the caller's transaction. Deleting works the
other way round: the row goes in the transaction, the bytes after it commits and only when no
row needs them any more, so a failed storage call can leave an unused object, never a row
without its bytes. Storage outages are StorageUnavailableError (503) here.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.access import ensure_writable, subject_type
from creativeflow.assets import imaging
from creativeflow.assets.errors import (
    ImageNotChangeable,
    ImageNotFound,
    StorageUnavailableError,
)
from creativeflow.assets.imaging import CONTENT_TYPES, DominantColour
from creativeflow.assets.models import Image, ImageOrigin, tag_key
from creativeflow.assets.repository import ImageFilters, ImageRepository
from creativeflow.assets.storage import ObjectNotFound, ObjectStorage, StorageUnavailable
from creativeflow.assets.uploads import UploadLimits, receive_upload, upload_directory
from creativeflow.db.ids import uuid7
from creativeflow.identity.principal import Principal
from creativeflow.shared.core.exceptions import NotFoundException
from creativeflow.shared.core.logging import get_logger

if TYPE_CHECKING:
    from creativeflow.platform import Platform

__all__ = [
    "CONTENT_TYPES",
    "ImageNotFound",
    "ImageService",
    "StoredImage",
    "UploadedImage",
    "put_image_bytes",
    "receive_image",
]

_log = get_logger("creativeflow.assets")
DERIVED_LISTED = 100

# -- where images are used -----------------------------------------------------------------------

# Modules that point at images (the story studio's panels) register a function giving, for a
# principal and an image id, a SELECT of the ids of their things that use it and the principal
# may read. The metadata route lists them under `usage.used_by`.
UsageFinder = Callable[[Principal, uuid.UUID], Select[Any]]
_usage_finders: dict[str, UsageFinder] = {}


def register_image_usage(name: str, finder: UsageFinder) -> None:
    _usage_finders[name] = finder


def unregister_image_usage(name: str) -> None:
    _usage_finders.pop(name, None)


# -- storage -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _storage(operation: str) -> AsyncIterator[None]:
    try:
        yield
    except StorageUnavailable as exc:
        _log.warning("storage_unavailable", operation=operation, error=str(exc))
        raise StorageUnavailableError(
            f"The image storage is unavailable ({operation}); try again shortly"
        ) from exc


@dataclass(frozen=True, slots=True)
class StoredImage:
    """Bytes already in storage, waiting for their row."""

    id: uuid.UUID
    storage_key: str
    sha256: str
    size_bytes: int
    width: int
    height: int
    format: str
    dominant_colors: list[DominantColour] = field(default_factory=list)
    # False when identical bytes were stored before (another row may share them).
    created: bool = True

    def describe(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "url": f"/api/v1/images/{self.id}",
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "dominant_colors": [colour.document() for colour in self.dominant_colors],
        }


async def store_bytes(
    storage: ObjectStorage,
    image_id: uuid.UUID,
    data: bytes,
    *,
    width: int,
    height: int,
    image_format: str,
    dominant_colors: list[DominantColour],
) -> StoredImage:
    """Store the bytes (outside any transaction: object storage is slow and not transactional;
    an object whose row never comes is harmless, as identical bytes share one object)."""
    async with _storage("put"):
        stored = await storage.put(
            data, content_type=CONTENT_TYPES.get(image_format, "application/octet-stream")
        )
    return StoredImage(
        id=image_id,
        storage_key=stored.key,
        sha256=stored.sha256,
        size_bytes=stored.size,
        width=width,
        height=height,
        format=image_format,
        dominant_colors=dominant_colors,
        created=stored.created,
    )


async def put_image_bytes(
    storage: ObjectStorage,
    image_id: uuid.UUID,
    data: bytes,
    *,
    image_format: str,
    max_pixels: int,
) -> StoredImage:
    """A provider's image: decoded (in a thread) for its true size and dominant colours, then
    stored. Bytes that do not decode as `image_format` are refused (UnsupportedImage)."""
    facts = await asyncio.to_thread(imaging.describe, data, image_format, max_pixels=max_pixels)
    return await store_bytes(
        storage,
        image_id,
        data,
        width=facts.width,
        height=facts.height,
        image_format=image_format,
        dominant_colors=facts.dominant_colors,
    )


async def prepare_upload(
    path: Path, image_format: str, *, max_pixels: int, slots: asyncio.Semaphore
) -> imaging.PreparedImage:
    """Decode, turn upright and re-encode an upload in a thread; `slots` bounds how many are
    decoded at once (each holds its pixels in memory)."""
    async with slots:
        return await asyncio.to_thread(
            imaging.prepare_upload, path, image_format, max_pixels=max_pixels
        )


FormT = TypeVar("FormT")


@dataclass(frozen=True, slots=True)
class UploadedImage:
    """An upload received, re-encoded and stored: its row is still to be written
    (`ImageService.record_upload`, in the caller's unit of work), and once that has committed
    the bytes checked (`ensure_still_stored(storage, uploaded.stored, uploaded.data)`)."""

    stored: StoredImage
    data: bytes
    details: dict[str, Any]


async def receive_image(
    platform: Platform,
    stream: AsyncIterator[bytes],
    *,
    content_type: str | None,
    content_length: str | None,
    check: Callable[[dict[str, list[str]]], Awaitable[FormT]],
) -> tuple[UploadedImage, FormT]:
    """An image upload, with no transaction open (close the request's session first): the
    multipart body streamed in (IMAGE_UPLOAD_MAX_BYTES, the format judged by the bytes: 413,
    415, 422 naming `file`), its text fields given to `check` (validate them, check access:
    raise to refuse; what it returns is returned), then the image decoded, turned upright and
    re-encoded (IMAGE_MAX_PIXELS) and its bytes stored, content addressed."""
    settings = platform.settings
    upload = await receive_upload(
        stream,
        content_type=content_type,
        content_length=content_length,
        directory=upload_directory(settings.data_dir),
        limits=UploadLimits(max_file_bytes=settings.image_upload_max_bytes),
    )
    try:
        form = await check(upload.fields)
        prepared = await prepare_upload(
            upload.path,
            upload.image_format,
            max_pixels=settings.image_max_pixels,
            slots=platform.image_decode_slots,
        )
    finally:
        upload.discard()
    stored = await store_bytes(
        platform.storage,
        uuid7(),
        prepared.data,
        width=prepared.width,
        height=prepared.height,
        image_format=prepared.format,
        dominant_colors=prepared.dominant_colors,
    )
    details = {
        "upload": {
            "filename": upload.filename,
            "sha256": upload.sha256,
            "size_bytes": upload.size,
            "format": upload.image_format,
        }
    }
    return UploadedImage(stored, prepared.data, details), form


async def ensure_still_stored(storage: ObjectStorage, stored: StoredImage, data: bytes) -> None:
    """After the row committed: when the bytes were already stored, a concurrent delete of
    the last other image with them may have removed the object in between; put it back. The
    row is committed whatever happens here, so a storage failure is logged, not raised."""
    if stored.created:
        return
    try:
        if not await storage.exists(stored.storage_key):
            await storage.put(data, content_type=CONTENT_TYPES.get(stored.format, "image/png"))
            _log.warning("image_object_restored", key=stored.storage_key)
    except StorageUnavailable as exc:
        _log.warning("image_object_not_checked", key=stored.storage_key, error=str(exc))


async def read_object(storage: ObjectStorage, key: str) -> bytes:
    async with _storage("get"):
        try:
            return await storage.get(key)
        except ObjectNotFound as exc:
            raise ImageNotFound(
                "The image's bytes are missing from storage", code="IMAGE_BYTES_MISSING"
            ) from exc


async def delete_unused_objects(storage: ObjectStorage, keys: Sequence[str]) -> None:
    """Remove objects no row needs any more (after the commit that made them unused). A
    missing object is fine; a storage failure only leaves an unused object, so it is logged."""
    for key in keys:
        try:
            await storage.delete(key)
        except (StorageUnavailable, OSError) as exc:
            _log.warning("image_object_not_deleted", key=key, error=str(exc))


async def store_thumbnail(
    storage: ObjectStorage, image: Image, data: bytes, *, max_pixels: int
) -> tuple[str, bytes]:
    """Make the image's WebP thumbnail (in a thread) and store it; its key and bytes."""
    thumbnail = await asyncio.to_thread(
        imaging.make_thumbnail, data, image.format, max_pixels=max_pixels
    )
    async with _storage("put"):
        stored = await storage.put(thumbnail, content_type=imaging.THUMBNAIL_CONTENT_TYPE)
    return stored.key, thumbnail


# -- rows --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubjectRef:
    type: str
    id: uuid.UUID


def normalise_tags(tags: Sequence[str]) -> list[str]:
    """Tags as spelled, without case-insensitive duplicates (the first spelling wins)."""
    unique: dict[str, str] = {}
    for tag in tags:
        unique.setdefault(tag_key(tag), tag)
    return list(unique.values())


class ImageService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.images = ImageRepository(session)

    async def record(
        self,
        stored: StoredImage,
        *,
        owner_id: uuid.UUID,
        subject_type: str | None,
        subject_id: uuid.UUID | None,
        job_id: uuid.UUID | None,
        details: dict[str, Any],
        origin: ImageOrigin = ImageOrigin.GENERATED,
        tags: Sequence[str] = (),
        source_image_id: uuid.UUID | None = None,
    ) -> Image:
        if source_image_id is not None and await self.images.existing_id(source_image_id) is None:
            # Deleted while the job ran: the details keep which image it was.
            source_image_id = None
        tags = normalise_tags(tags)
        image = Image(
            id=stored.id,
            owner_id=owner_id,
            subject_type=subject_type,
            subject_id=subject_id,
            origin=origin,
            job_id=job_id,
            source_image_id=source_image_id,
            storage_key=stored.storage_key,
            sha256=stored.sha256,
            width=stored.width,
            height=stored.height,
            format=stored.format,
            size_bytes=stored.size_bytes,
            tags=tags,
            dominant_colors=[colour.document() for colour in stored.dominant_colors],
            # Identical bytes share their thumbnail too.
            thumbnail_key=await self.images.thumbnail_for(stored.storage_key),
            details=details,
            created_by=owner_id,
            updated_by=owner_id,
        )
        await self.images.add(image)
        await self.images.add_tags(image.id, [tag_key(tag) for tag in tags])
        return image

    async def record_upload(
        self,
        uploaded: UploadedImage,
        *,
        owner_id: uuid.UUID,
        subject: SubjectRef | None,
        tags: Sequence[str] = (),
    ) -> Image:
        """The row of an upload (`receive_image`), of `subject` when given."""
        return await self.record(
            uploaded.stored,
            owner_id=owner_id,
            subject_type=subject.type if subject else None,
            subject_id=subject.id if subject else None,
            job_id=None,
            details=uploaded.details,
            origin=ImageOrigin.UPLOAD,
            tags=tags,
        )

    async def check_subject(self, principal: Principal, subject: SubjectRef, field: str) -> None:
        """The subject exists and the principal may write it (404 otherwise); an unknown type
        is a 422 naming `field`."""
        subject_type(subject.type, field=field)
        await ensure_writable(self.session, principal, subject.type, subject.id)

    async def get(self, principal: Principal, image_id: uuid.UUID) -> Image:
        image = await self.images.visible(principal, image_id)
        if image is None:
            raise ImageNotFound("Image not found")
        return image

    async def by_ids(self, image_ids: Sequence[uuid.UUID]) -> list[Image]:
        """Images by id, for a caller that already holds their references (a project's)."""
        return await self.images.by_ids(image_ids)

    async def visible_by_sha256(
        self, principal: Principal, digests: Sequence[str]
    ) -> dict[str, Image]:
        return await self.images.visible_by_sha256(principal, digests)

    async def share_into(self, image: Image, *, owner_id: uuid.UUID, subject: SubjectRef) -> Image:
        """A new image row for a subject, on the same stored bytes (content addressed: nothing
        is copied), as an imported project's images are."""
        copy = Image(
            owner_id=owner_id,
            subject_type=subject.type,
            subject_id=subject.id,
            origin=image.origin,
            source_image_id=image.id,
            storage_key=image.storage_key,
            sha256=image.sha256,
            width=image.width,
            height=image.height,
            format=image.format,
            size_bytes=image.size_bytes,
            tags=list(image.tags),
            dominant_colors=list(image.dominant_colors),
            thumbnail_key=image.thumbnail_key,
            details=dict(image.details),
            created_by=owner_id,
            updated_by=owner_id,
        )
        await self.images.add(copy)
        await self.images.add_tags(copy.id, [tag_key(tag) for tag in copy.tags])
        return copy

    async def changeable(self, principal: Principal, image_id: uuid.UUID) -> Image:
        """An image the caller may delete or derive from: their own, one of a subject they may
        write, or any for an administrator. Who may only read it is told why (403)."""
        image = await self.get(principal, image_id)
        if principal.is_admin or image.owner_id == principal.user_id:
            return image
        if image.subject_type is not None and image.subject_id is not None:
            with contextlib.suppress(NotFoundException):
                await ensure_writable(self.session, principal, image.subject_type, image.subject_id)
                return image
        raise ImageNotChangeable(
            "Only the image's owner, or someone who may change its subject, may do this"
        )

    async def writable_subject(self, principal: Principal, image: Image) -> SubjectRef | None:
        """The image's subject when the caller may write it: where images made from it go."""
        if image.subject_type is None or image.subject_id is None:
            return None
        try:
            await ensure_writable(self.session, principal, image.subject_type, image.subject_id)
        except NotFoundException:
            return None
        return SubjectRef(image.subject_type, image.subject_id)

    async def list_page(
        self,
        principal: Principal,
        filters: ImageFilters,
        *,
        sort: str,
        descending: bool,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[Image], int]:
        filters = ImageFilters(
            tag_keys=[tag_key(tag) for tag in filters.tag_keys],
            origin=filters.origin,
            subject_type=filters.subject_type,
            subject_id=filters.subject_id,
            source_image_id=filters.source_image_id,
            created_after=filters.created_after,
            created_before=filters.created_before,
        )
        return await self.images.list_page(
            principal, filters, sort=sort, descending=descending, limit=limit, offset=offset
        )

    async def usage(self, principal: Principal, image: Image) -> dict[str, Any]:
        """Where the image is used: its subject, the images made from it (that the caller may
        read), and what other modules registered (`register_image_usage`)."""
        derived, derived_total = await self.images.derived_from(
            principal, image.id, limit=DERIVED_LISTED
        )
        used_by = []
        for name, finder in sorted(_usage_finders.items()):
            ids = list((await self.session.execute(finder(principal, image.id))).scalars())
            if ids:
                used_by.append({"type": name, "ids": ids})
        subject = (
            {"type": image.subject_type, "id": image.subject_id}
            if image.subject_type is not None and image.subject_id is not None
            else None
        )
        return {
            "subject": subject,
            "derived_images": {"ids": derived, "total": derived_total},
            "used_by": used_by,
        }

    async def delete(self, principal: Principal, image_id: uuid.UUID) -> list[str]:
        """Delete the row; the storage keys (bytes, thumbnail) no other row needs any more,
        to delete once this transaction has committed."""
        image = await self.changeable(principal, image_id)
        keys = [key for key in (image.storage_key, image.thumbnail_key) if key is not None]
        await self.images.delete(image)
        return [key for key in dict.fromkeys(keys) if not await self.images.object_in_use(key)]

    async def record_thumbnail(self, storage_key: str, thumbnail_key: str) -> None:
        await self.images.set_thumbnail(storage_key, thumbnail_key)

    async def source_for_job(self, image_id: uuid.UUID) -> Image | None:
        """The source of an image job (its submitter was checked when it was submitted)."""
        return await self.images.get_or_none(image_id)
