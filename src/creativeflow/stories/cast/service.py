"""Rules of a project's cast: characters and locations, their reference images, and the
characters and location of a panel.

Access is the project's (`ProjectService.grant`): members read, editors and the owner change,
strangers get 404 for the thing itself. Names are unique in a project whatever their case
(409 CHARACTER_NAME_TAKEN / LOCATION_NAME_TAKEN). A reference image must be one the caller may
read (422 naming `image_id` otherwise), or one uploaded for it, which becomes the project's
image (`upload_image`: its row and the link written together); at most one is primary. The
content service asks this one to check and store a panel's cast (`check_panel_cast`,
`set_panel_characters`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified

from creativeflow.assets.service import ImageService, SubjectRef, UploadedImage
from creativeflow.db.ids import uuid7
from creativeflow.db.versioning import ensure_version
from creativeflow.identity.principal import Principal
from creativeflow.shared.core.exceptions import (
    ConflictException,
    NotFoundException,
    ValidationException,
)
from creativeflow.stories.access import PROJECT_SUBJECT
from creativeflow.stories.cast.models import (
    Character,
    CharacterDesign,
    Location,
    LocationReference,
)
from creativeflow.stories.cast.repository import (
    CastRepository,
    CharacterRepository,
    LocationRepository,
    PanelCastRepository,
)
from creativeflow.stories.cast.schemas import ImageLink, ImageUpload
from creativeflow.stories.projects.service import Need, ProjectNotFound, ProjectService


class CharacterNotFound(NotFoundException):
    code = "CHARACTER_NOT_FOUND"


class LocationNotFound(NotFoundException):
    code = "LOCATION_NOT_FOUND"


class CharacterNameTaken(ConflictException):
    code = "CHARACTER_NAME_TAKEN"


class LocationNameTaken(ConflictException):
    code = "LOCATION_NAME_TAKEN"


@dataclass(frozen=True, slots=True)
class CastKind:
    what: str  # "character" / "location"
    not_found: type[NotFoundException]
    taken: type[ConflictException]


CHARACTER = CastKind("character", CharacterNotFound, CharacterNameTaken)
LOCATION = CastKind("location", LocationNotFound, LocationNameTaken)


def _name_key(name: str) -> str:
    return name.strip().lower()


class CastService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self.projects = ProjectService(session, principal)
        self.characters = CharacterRepository(session)
        self.locations = LocationRepository(session)
        self.panels = PanelCastRepository(session)

    def _of(self, kind: CastKind) -> CastRepository[Any, Any]:
        return self.characters if kind is CHARACTER else self.locations

    # -- loading -------------------------------------------------------------------------------

    async def _load(self, kind: CastKind, entity_id: uuid.UUID, need: Need) -> Any:
        entity = await self._of(kind).get_or_none(entity_id)
        if entity is None:
            raise kind.not_found(f"No {kind.what} {entity_id}")
        try:
            await self.projects.grant(entity.project_id, need)
        except ProjectNotFound:
            raise kind.not_found(f"No {kind.what} {entity_id}") from None
        return entity

    async def character(self, character_id: uuid.UUID, need: Need = Need.READ) -> Character:
        character: Character = await self._load(CHARACTER, character_id, need)
        return character

    async def location(self, location_id: uuid.UUID, need: Need = Need.READ) -> Location:
        location: Location = await self._load(LOCATION, location_id, need)
        return location

    async def links(
        self, kind: CastKind, owner_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[Any]]:
        return await self._of(kind).links(owner_ids)

    async def page(
        self, kind: CastKind, project_id: uuid.UUID, search: str | None, *, limit: int, offset: int
    ) -> tuple[Sequence[Any], int]:
        await self.projects.grant(project_id, Need.READ)
        return await self._of(kind).of_project(project_id, search, limit=limit, offset=offset)

    # -- changes -------------------------------------------------------------------------------

    async def _ensure_name_free(
        self, kind: CastKind, project_id: uuid.UUID, name: str, entity_id: uuid.UUID | None
    ) -> str:
        key = _name_key(name)
        existing = await self._of(kind).named(project_id, key)
        if existing is not None and existing.id != entity_id:
            raise kind.taken(
                f"The project already has a {kind.what} named {existing.name!r}",
                errors=[{"field": "name", "message": "is taken in this project"}],
            )
        return key

    def _changed(self, kind: CastKind, entity: Any, action: str) -> None:
        version = None if action == "deleted" else entity.version
        self.projects.changed(entity.project_id, kind.what, entity.id, action, version)

    async def create(self, kind: CastKind, project_id: uuid.UUID, data: BaseModel) -> Any:
        await self.projects.grant(project_id, Need.WRITE)
        values = data.model_dump(mode="json")
        key = await self._ensure_name_free(kind, project_id, values["name"], None)
        actor = self.principal.user_id
        model: Any = self._of(kind).model
        entity = model(
            id=uuid7(),
            project_id=project_id,
            name_key=key,
            created_by=actor,
            updated_by=actor,
            **values,
        )
        await self._of(kind).add(entity)
        self._changed(kind, entity, "created")
        return entity

    async def update(
        self,
        kind: CastKind,
        entity_id: uuid.UUID,
        data: BaseModel,
        expected: int | None,
        *,
        whole: bool,
    ) -> Any:
        entity = await self._load(kind, entity_id, Need.WRITE)
        ensure_version(entity, expected, kind.what)
        fields = (set(type(data).model_fields) if whole else set(data.model_fields_set)) - {
            "version"
        }
        values = data.model_dump(mode="json", include=fields)
        for field in fields:
            value = values[field]
            if value is None and field in ("name", "role", "appearance", "palette", "locked"):
                raise ValidationException.for_field(field, "must not be null")
            if field == "name":
                entity.name_key = await self._ensure_name_free(
                    kind, entity.project_id, value, entity.id
                )
            setattr(entity, field, value)
        return await self._save(kind, entity)

    async def _save(self, kind: CastKind, entity: Any) -> Any:
        entity.touch(self.principal.user_id)
        flag_modified(entity, "updated_by")  # a new version even when only its images changed
        await self.session.flush()
        self._changed(kind, entity, "updated")
        return entity

    async def delete(self, kind: CastKind, entity_id: uuid.UUID, expected: int | None) -> None:
        """Delete it: its panels lose it (characters) or their location (locations)."""
        entity = await self._load(kind, entity_id, Need.WRITE)
        ensure_version(entity, expected, kind.what)
        await self._of(kind).delete(entity)
        self._changed(kind, entity, "deleted")

    # -- reference images ----------------------------------------------------------------------

    async def link_image(self, kind: CastKind, entity_id: uuid.UUID, data: ImageLink) -> Any:
        """Link an image the caller may read (or change the label and primary of a link)."""
        entity = await self._load(kind, entity_id, Need.WRITE)
        try:
            image = await ImageService(self.session).get(self.principal, data.image_id)
        except NotFoundException:
            raise ValidationException.for_field(
                "image_id", "is not an image you may read"
            ) from None
        return await self._link(kind, entity, image.id, data.label, data.primary)

    async def check_writable(self, kind: CastKind, entity_id: uuid.UUID) -> None:
        """The caller may change it (404 / 403 otherwise): asked before an upload is read."""
        await self._load(kind, entity_id, Need.WRITE)

    async def upload_image(
        self, kind: CastKind, entity_id: uuid.UUID, uploaded: UploadedImage, form: ImageUpload
    ) -> Any:
        """Record an uploaded image as the project's (its members may read it) and link it."""
        entity = await self._load(kind, entity_id, Need.WRITE)
        image = await ImageService(self.session).record_upload(
            uploaded,
            owner_id=self.principal.user_id,
            subject=SubjectRef(PROJECT_SUBJECT, entity.project_id),
        )
        return await self._link(kind, entity, image.id, form.label, form.primary)

    async def _link(
        self,
        kind: CastKind,
        entity: Any,
        image_id: uuid.UUID,
        label: str | None,
        primary: bool,
    ) -> Any:
        repository = self._of(kind)
        if primary:
            await repository.clear_primary(entity.id)
        link = await repository.link(entity.id, image_id)
        if link is None:
            owner = {repository.link_owner: entity.id}
            link_model: Any = CharacterDesign if kind is CHARACTER else LocationReference
            link = link_model(
                id=uuid7(), image_id=image_id, created_by=self.principal.user_id, **owner
            )
            self.session.add(link)
        link.label = label
        link.is_primary = primary
        link.updated_by = self.principal.user_id
        return await self._save(kind, entity)

    async def unlink_image(self, kind: CastKind, entity_id: uuid.UUID, image_id: uuid.UUID) -> Any:
        entity = await self._load(kind, entity_id, Need.WRITE)
        link = await self._of(kind).link(entity.id, image_id)
        if link is None:
            raise NotFoundException(
                f"Image {image_id} is not linked to this {kind.what}", code="IMAGE_NOT_LINKED"
            )
        await self.session.delete(link)
        return await self._save(kind, entity)

    # -- panels --------------------------------------------------------------------------------

    async def check_panel_cast(
        self,
        project_id: uuid.UUID,
        character_ids: Sequence[uuid.UUID] | None,
        location_id: uuid.UUID | None,
    ) -> None:
        """The characters and the location are the project's (422 naming the field)."""
        if character_ids:
            if len(set(character_ids)) != len(character_ids):
                raise ValidationException.for_field("character_ids", "names a character twice")
            found = await self.characters.in_project(project_id, character_ids)
            if found != set(character_ids):
                raise ValidationException.for_field(
                    "character_ids",
                    f"{len(set(character_ids) - found)} of them are not this project's characters",
                )
        if location_id is not None and not await self.locations.in_project(
            project_id, [location_id]
        ):
            raise ValidationException.for_field("location_id", "is not this project's location")

    async def check_speakers(
        self, project_id: uuid.UUID, speakers: Sequence[uuid.UUID | None], field: str
    ) -> None:
        """Each bubble's speaker, when it has one, is a character of the project (422 naming
        `field[index].speaker_id`)."""
        named = [speaker for speaker in speakers if speaker is not None]
        found = await self.characters.in_project(project_id, named) if named else set()
        for index, speaker in enumerate(speakers):
            if speaker is not None and speaker not in found:
                raise ValidationException.for_field(
                    f"{field}[{index}].speaker_id", "is not this project's character"
                )

    async def names(self, kind: CastKind, project_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
        """Every character's (or location's) id and name, for callers that checked the
        project already."""
        return await self._of(kind).names(project_id)

    async def rows(self, kind: CastKind, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
        """Characters or locations by id, for callers that checked the project already."""
        return await self._of(kind).many(ids)

    async def panel_characters(
        self, panel_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        return await self.panels.characters_of(panel_ids)

    async def set_panel_characters(
        self, panel_id: uuid.UUID, character_ids: Sequence[uuid.UUID]
    ) -> None:
        await self.panels.set_characters(panel_id, character_ids)

    async def appearances(
        self, kind: CastKind, entity_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[list[Row[Any]], int]:
        """The panels it is in, in reading order (chapter, scene, panel position)."""
        entity = await self._load(kind, entity_id, Need.READ)
        if kind is CHARACTER:
            return await self.panels.appearances(entity.id, limit=limit, offset=offset)
        return await self.panels.usage(entity.id, limit=limit, offset=offset)
