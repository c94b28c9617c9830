"""Style guide rules: it follows the project's membership (members read it, editors and the
owner change it); its first `PUT` creates it; version 0 stands for "none yet"."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.assets.service import ImageService
from creativeflow.db.ids import uuid7
from creativeflow.db.versioning import VersionConflict, ensure_version
from creativeflow.identity.principal import Principal
from creativeflow.shared.core.exceptions import NotFoundException, ValidationException
from creativeflow.stories.projects.service import Need, ProjectService
from creativeflow.stories.style.models import StyleGuide
from creativeflow.stories.style.repository import (
    StyleGuideRepository,
)
from creativeflow.stories.style.schemas import (
    StyleGuideRead,
    StyleGuideReplace,
)


def style_guide_read(project_id: uuid.UUID, guide: StyleGuide | None) -> StyleGuideRead:
    if guide is None:
        return StyleGuideRead(
            project_id=project_id, version=0, created_at=None, updated_at=None, updated_by=None
        )
    return StyleGuideRead(
        project_id=project_id,
        art_style=guide.art_style,
        palette=guide.palette,
        line_weight=guide.line_weight,
        lettering=guide.lettering,
        aspect_ratio=guide.aspect_ratio,
        negative_prompt=guide.negative_prompt,
        reference_image_ids=[uuid.UUID(image_id) for image_id in guide.reference_image_ids],
        version=guide.version,
        created_at=guide.created_at,
        updated_at=guide.updated_at,
        updated_by=guide.updated_by,
    )


class StyleGuideService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self.projects = ProjectService(session, principal)
        self.guides = StyleGuideRepository(session)

    async def get(self, project_id: uuid.UUID) -> StyleGuideRead:
        await self.projects.grant(project_id, Need.READ)
        return style_guide_read(project_id, await self.guides.of_project(project_id))

    async def replace(
        self, project_id: uuid.UUID, data: StyleGuideReplace, expected: int | None
    ) -> StyleGuideRead:
        await self.projects.grant(project_id, Need.WRITE)
        guide = await self.guides.of_project(project_id)
        if guide is None and expected not in (None, 0):
            raise VersionConflict(
                f"The style guide is at version 0, not {expected}: reload it",
                data={"current_version": 0},
            )
        if guide is not None:
            ensure_version(guide, expected, "style guide")
        known = set(guide.reference_image_ids) if guide is not None else set()
        await self._check_references(
            [image_id for image_id in data.reference_image_ids if str(image_id) not in known]
        )
        fields: dict[str, Any] = data.model_dump(exclude={"version"}, mode="json")
        actor = self.principal.user_id
        action = "updated"
        if guide is None:
            action = "created"
            guide = StyleGuide(
                id=uuid7(), project_id=project_id, created_by=actor, updated_by=actor, **fields
            )
            try:
                await self.guides.add(guide)
            except IntegrityError:  # created by a concurrent first PUT
                raise VersionConflict(
                    "Someone created the style guide since you read it: reload it",
                    data={"current_version": 1},
                ) from None
        else:
            for field, value in fields.items():
                setattr(guide, field, value)
            guide.touch(actor)
            await self.guides.flush()
        self.projects.changed(project_id, "style_guide", guide.id, action, guide.version)
        return style_guide_read(project_id, guide)

    async def _check_references(self, image_ids: list[uuid.UUID]) -> None:
        images = ImageService(self.session)
        for image_id in image_ids:
            try:
                await images.get(self.principal, image_id)
            except NotFoundException:
                raise ValidationException.for_field(
                    "reference_image_ids", f"no image {image_id} that you may read"
                ) from None
