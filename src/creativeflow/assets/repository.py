"""Image queries: the only place in the module that builds SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, func, insert, or_, select, true, update

from creativeflow.access import subject_types
from creativeflow.assets.models import Image, ImageOrigin, ImageTag
from creativeflow.db.repository import Repository
from creativeflow.identity.principal import Principal


@dataclass(frozen=True, slots=True)
class ImageFilters:
    """Combined with AND; `tag_keys` must all be present on an image."""

    tag_keys: Sequence[str] = ()
    origin: ImageOrigin | None = None
    subject_type: str | None = None
    subject_id: uuid.UUID | None = None
    source_image_id: uuid.UUID | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


SORTS = {
    "created_at": (Image.created_at, Image.id),
    "size_bytes": (Image.size_bytes, Image.id),
}


class ImageRepository(Repository[Image]):
    model = Image

    def visible_to(self, principal: Principal) -> ColumnElement[bool]:
        """Every read for a caller starts here: their images, images of subjects they may
        read; an administrator sees all."""
        if principal.is_admin:
            return true()
        clauses: list[ColumnElement[bool]] = [Image.owner_id == principal.user_id]
        for name, kind in subject_types().items():
            clauses.append(
                and_(Image.subject_type == name, Image.subject_id.in_(kind.readable(principal)))
            )
        return or_(*clauses)

    async def visible(self, principal: Principal, image_id: uuid.UUID) -> Image | None:
        stmt = select(Image).where(Image.id == image_id, self.visible_to(principal))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_ids(self, image_ids: Sequence[uuid.UUID]) -> list[Image]:
        if not image_ids:
            return []
        stmt = select(Image).where(Image.id.in_(list(image_ids)))
        return list((await self.session.execute(stmt)).scalars())

    async def visible_by_sha256(
        self, principal: Principal, digests: Sequence[str]
    ) -> dict[str, Image]:
        """For each content address, one image with those bytes the caller may read."""
        if not digests:
            return {}
        stmt = (
            select(Image)
            .where(Image.sha256.in_(list(digests)), self.visible_to(principal))
            .order_by(Image.created_at, Image.id)
        )
        found: dict[str, Image] = {}
        for image in (await self.session.execute(stmt)).scalars():
            found.setdefault(image.sha256, image)
        return found

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
        stmt = select(Image).where(self.visible_to(principal), *self._filters(filters))
        columns = SORTS[sort]
        stmt = stmt.order_by(*(c.desc() if descending else c.asc() for c in columns))
        return await self.page(stmt, limit=limit, offset=offset)

    @staticmethod
    def _filters(filters: ImageFilters) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        for key in dict.fromkeys(filters.tag_keys):
            clauses.append(exists().where(ImageTag.image_id == Image.id, ImageTag.tag_key == key))
        if filters.origin is not None:
            clauses.append(Image.origin == filters.origin)
        if filters.subject_type is not None:
            clauses.append(Image.subject_type == filters.subject_type)
        if filters.subject_id is not None:
            clauses.append(Image.subject_id == filters.subject_id)
        if filters.source_image_id is not None:
            clauses.append(Image.source_image_id == filters.source_image_id)
        if filters.created_after is not None:
            clauses.append(Image.created_at >= filters.created_after)
        if filters.created_before is not None:
            clauses.append(Image.created_at < filters.created_before)
        return clauses

    async def add_tags(self, image_id: uuid.UUID, tag_keys: Sequence[str]) -> None:
        keys = list(dict.fromkeys(tag_keys))
        if keys:
            await self.session.execute(
                insert(ImageTag), [{"image_id": image_id, "tag_key": key} for key in keys]
            )

    async def derived_from(
        self, principal: Principal, image_id: uuid.UUID, *, limit: int
    ) -> tuple[list[uuid.UUID], int]:
        """Ids of the images made from `image_id` that the caller may read (newest first, at
        most `limit`), and how many there are."""
        condition = and_(Image.source_image_id == image_id, self.visible_to(principal))
        total = await self.session.scalar(select(func.count()).where(condition)) or 0
        stmt = (
            select(Image.id)
            .where(condition)
            .order_by(Image.created_at.desc(), Image.id.desc())
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars()), total

    async def object_in_use(self, key: str) -> bool:
        """Whether any image row still needs the object: as its bytes or as its thumbnail."""
        stmt = select(exists().where(or_(Image.storage_key == key, Image.thumbnail_key == key)))
        return bool(await self.session.scalar(stmt))

    async def existing_id(self, image_id: uuid.UUID) -> uuid.UUID | None:
        return await self.session.scalar(select(Image.id).where(Image.id == image_id))

    async def set_thumbnail(self, storage_key: str, thumbnail_key: str) -> None:
        """Every image with these bytes gets the thumbnail (identical bytes, one thumbnail)."""
        await self.session.execute(
            update(Image)
            .where(Image.storage_key == storage_key, Image.thumbnail_key.is_(None))
            .values(thumbnail_key=thumbnail_key)
        )

    async def thumbnail_for(self, storage_key: str) -> str | None:
        """A thumbnail already made for the same bytes by another image row."""
        stmt = (
            select(Image.thumbnail_key)
            .where(Image.storage_key == storage_key, Image.thumbnail_key.is_not(None))
            .limit(1)
        )
        return await self.session.scalar(stmt)
