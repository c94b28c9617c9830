"""Image queries: the only place in the module that builds SQL."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, and_, or_, select, true

from creativeflow.access import subject_types
from creativeflow.assets.models import Image
from creativeflow.db.repository import Repository
from creativeflow.identity.principal import Principal


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
