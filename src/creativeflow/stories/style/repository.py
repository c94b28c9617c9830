"""Style guide queries: the only place in the aggregate that builds SQL."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from creativeflow.db.repository import Repository
from creativeflow.stories.style.models import StyleGuide


class StyleGuideRepository(Repository[StyleGuide]):
    model = StyleGuide

    async def of_project(self, project_id: uuid.UUID) -> StyleGuide | None:
        stmt = select(StyleGuide).where(StyleGuide.project_id == project_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()
