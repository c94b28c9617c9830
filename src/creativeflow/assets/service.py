"""Image rules: storing generated images with their provenance, and serving them to who may
read them. Bytes go to the object storage first (content-addressed, de-duplicated); the row
that points at them is written in the caller's transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.assets.models import Image
from creativeflow.assets.repository import ImageRepository
from creativeflow.assets.storage import ObjectNotFound, ObjectStorage
from creativeflow.identity.principal import Principal
from creativeflow.shared.core.exceptions import NotFoundException

CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


class ImageNotFound(NotFoundException):
    code = "IMAGE_NOT_FOUND"


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

    def describe(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "url": f"/api/v1/images/{self.id}",
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
        }


async def put_image_bytes(
    storage: ObjectStorage,
    image_id: uuid.UUID,
    data: bytes,
    *,
    width: int,
    height: int,
    image_format: str,
) -> StoredImage:
    """Store the bytes (outside any transaction: object storage is slow and not transactional;
    an object whose row never comes is harmless, as identical bytes share one object)."""
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
    )


class ImageService:
    def __init__(self, session: AsyncSession) -> None:
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
    ) -> Image:
        image = Image(
            id=stored.id,
            owner_id=owner_id,
            subject_type=subject_type,
            subject_id=subject_id,
            job_id=job_id,
            storage_key=stored.storage_key,
            sha256=stored.sha256,
            width=stored.width,
            height=stored.height,
            format=stored.format,
            size_bytes=stored.size_bytes,
            details=details,
            created_by=owner_id,
            updated_by=owner_id,
        )
        return await self.images.add(image)

    async def get(self, principal: Principal, image_id: uuid.UUID) -> Image:
        image = await self.images.visible(principal, image_id)
        if image is None:
            raise ImageNotFound("Image not found")
        return image

    @staticmethod
    async def read_bytes(image: Image, storage: ObjectStorage) -> bytes:
        try:
            return await storage.get(image.storage_key)
        except ObjectNotFound as exc:
            raise ImageNotFound(
                "The image's bytes are missing from storage", code="IMAGE_BYTES_MISSING"
            ) from exc
