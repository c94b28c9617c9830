"""A whole project as a JSON bundle, and a project made again from one.

Export reads each table once. Import validates everything with the same models the API's
create routes use (a problem names its place: `chapters[0].scenes[1].fields.title`), then
writes the new project, owned by the importer, in the request's one transaction. Images are
matched by content address among those the importer may read, and shared into the new project
(new rows on the same stored bytes); the ones not found are listed and left out.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.assets.service import ImageService, SubjectRef
from creativeflow.db.ids import uuid7
from creativeflow.db.types import utcnow
from creativeflow.identity.principal import Principal
from creativeflow.shared.core.exceptions import ValidationException
from creativeflow.stories.access import PROJECT_SUBJECT
from creativeflow.stories.cast.models import (
    Character,
    CharacterDesign,
    Location,
    LocationReference,
    PanelCharacter,
)
from creativeflow.stories.cast.schemas import CharacterFields, LocationFields
from creativeflow.stories.content.models import Chapter, Panel, Scene
from creativeflow.stories.content.schemas import Bubble, ChapterFields, PanelFields, SceneFields
from creativeflow.stories.instructions.models import Instruction
from creativeflow.stories.instructions.schemas import InstructionFields
from creativeflow.stories.projects.models import Project
from creativeflow.stories.projects.schemas import ProjectCreate
from creativeflow.stories.projects.service import Need, ProjectService
from creativeflow.stories.style.models import StyleGuide
from creativeflow.stories.style.repository import StyleGuideRepository
from creativeflow.stories.style.schemas import StyleGuideFields
from creativeflow.stories.whole.bundle_schemas import (
    CastEntry,
    ChapterEntry,
    Digest,
    ImageEntry,
    ImageLink,
    InstructionEntry,
    PanelEntry,
    SceneEntry,
    StoryBundle,
)
from creativeflow.stories.whole.repository import CopyRepository

SchemaT = TypeVar("SchemaT", bound=BaseModel)
# A panel's fields the bundle carries apart (by key, by place), never as ids.
_PANEL_LINKS = ("dialogue", "character_ids", "location_id")


def _fields(entity: Any, schema: type[BaseModel], *, skip: Sequence[str] = ()) -> dict[str, Any]:
    """The entity's values of the schema's fields, as JSON would carry them."""
    values = {
        name: getattr(entity, name)
        for name in schema.model_fields
        if name not in skip and hasattr(entity, name)
    }
    return schema.model_validate(values).model_dump(mode="json", exclude=set(skip))


def _validated(schema: type[SchemaT], data: dict[str, Any], path: str) -> SchemaT:
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        errors = [
            {
                "field": ".".join([path, *(str(part) for part in error["loc"])]),
                "message": error["msg"],
            }
            for error in exc.errors(include_url=False)
        ]
        raise ValidationException(
            "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors
        ) from None


class BundleService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self.projects = ProjectService(session, principal)
        self.rows = CopyRepository(session)
        self.guides = StyleGuideRepository(session)
        self.images = ImageService(session)

    # -- export --------------------------------------------------------------------------------

    async def export(self, project_id: uuid.UUID) -> StoryBundle:
        return (await self.export_with_storage(project_id))[0]

    async def export_with_storage(
        self, project_id: uuid.UUID
    ) -> tuple[StoryBundle, dict[Digest, str]]:
        """The bundle, and where each of its images is stored (content address to storage key),
        for the exports that draw them."""
        project = (await self.projects.grant(project_id, Need.READ)).project
        guide = await self.guides.of_project(project_id)
        chapters = await self.rows.chapters(project_id)
        scenes = sorted(await self.rows.scenes(project_id), key=lambda s: s.position)
        panels = sorted(await self.rows.panels(project_id), key=lambda p: p.position)
        characters = sorted(await self.rows.characters(project_id), key=lambda c: c.name_key)
        locations = sorted(await self.rows.locations(project_id), key=lambda c: c.name_key)
        designs = await self.rows.designs(project_id)
        references = await self.rows.references(project_id)
        casting = sorted(await self.rows.panel_characters(project_id), key=lambda c: c.position)
        instructions = await self.rows.instructions(project_id)

        image_ids = {
            *(c.cover_image_id for c in chapters),
            *(p.selected_image_id for p in panels),
            *(d.image_id for d in designs),
            *(r.image_id for r in references),
            *(uuid.UUID(str(i)) for i in (guide.reference_image_ids if guide else [])),
        } - {None}
        stored = await self.images.by_ids([i for i in image_ids if i is not None])
        digest = {image.id: image.sha256 for image in stored}

        character_keys = {c.id: f"c{n}" for n, c in enumerate(characters, 1)}
        location_keys = {loc.id: f"l{n}" for n, loc in enumerate(locations, 1)}

        def links(rows: Sequence[Any], owner: str, owner_id: uuid.UUID) -> list[ImageLink]:
            return [
                ImageLink(image=digest[row.image_id], label=row.label, primary=row.is_primary)
                for row in sorted(rows, key=lambda r: str(digest.get(r.image_id)))
                if getattr(row, owner) == owner_id and row.image_id in digest
            ]

        cast_of: dict[uuid.UUID, list[str]] = {}
        for link in casting:
            cast_of.setdefault(link.panel_id, []).append(character_keys[link.character_id])
        places: dict[uuid.UUID, dict[str, int]] = {}
        chapter_entries = []
        for c_index, chapter in enumerate(chapters):
            places[chapter.id] = {"chapter": c_index}
            scene_entries = []
            own_scenes = [s for s in scenes if s.chapter_id == chapter.id]
            for s_index, scene in enumerate(own_scenes):
                places[scene.id] = {"chapter": c_index, "scene": s_index}
                panel_entries = []
                for p_index, panel in enumerate(p for p in panels if p.scene_id == scene.id):
                    places[panel.id] = {"chapter": c_index, "scene": s_index, "panel": p_index}
                    dialogue = [
                        {
                            **bubble,
                            "speaker_id": _key_of(character_keys, bubble.get("speaker_id")),
                        }
                        for bubble in panel.dialogue
                    ]
                    panel_entries.append(
                        PanelEntry(
                            fields=_fields(panel, PanelFields, skip=_PANEL_LINKS)
                            | {"prompt": panel.prompt},
                            dialogue=dialogue,
                            characters=cast_of.get(panel.id, []),
                            location=location_keys.get(panel.location_id)
                            if panel.location_id
                            else None,
                            selected_image=digest.get(panel.selected_image_id)
                            if panel.selected_image_id
                            else None,
                        )
                    )
                scene_entries.append(
                    SceneEntry(fields=_fields(scene, SceneFields), panels=panel_entries)
                )
            chapter_entries.append(
                ChapterEntry(
                    fields=_fields(chapter, ChapterFields),
                    cover_image=digest.get(chapter.cover_image_id)
                    if chapter.cover_image_id
                    else None,
                    scenes=scene_entries,
                )
            )
        instruction_entries = sorted(
            (
                InstructionEntry(
                    scope=i.scope,  # type: ignore[arg-type]
                    target=places.get(i.panel_id or i.scene_id or i.chapter_id, {}),  # type: ignore[arg-type]
                    fields=_fields(i, InstructionFields),
                )
                for i in instructions
            ),
            key=lambda e: (e.scope, sorted(e.target.items()), e.fields.get("text", "")),
        )
        bundle = StoryBundle(
            exported_at=utcnow(),
            project=_fields(project, ProjectCreate),
            style_guide=_fields(guide, StyleGuideFields, skip=("reference_image_ids",))
            if guide
            else None,
            style_images=[
                digest[uuid.UUID(str(i))]
                for i in (guide.reference_image_ids if guide else [])
                if uuid.UUID(str(i)) in digest
            ],
            characters=[
                CastEntry(
                    key=character_keys[c.id],
                    fields=_fields(c, CharacterFields),
                    images=links(designs, "character_id", c.id),
                )
                for c in characters
            ],
            locations=[
                CastEntry(
                    key=location_keys[loc.id],
                    fields=_fields(loc, LocationFields),
                    images=links(references, "location_id", loc.id),
                )
                for loc in locations
            ],
            chapters=chapter_entries,
            instructions=instruction_entries,
            images={
                image.sha256: ImageEntry(
                    format=image.format,
                    width=image.width,
                    height=image.height,
                    size_bytes=image.size_bytes,
                )
                for image in stored
            },
        )
        return bundle, {image.sha256: image.storage_key for image in stored}

    # -- import --------------------------------------------------------------------------------

    async def import_bundle(self, bundle: StoryBundle) -> tuple[Project, list[str]]:
        """A new project, the importer's, made from the bundle; the images it could not find."""
        actor = self.principal.user_id
        project_data = _validated(ProjectCreate, bundle.project, "project")
        project = await self.projects.create(project_data)
        subject = SubjectRef(PROJECT_SUBJECT, project.id)

        wanted = set(bundle.images) | set(bundle.style_images)
        for entry in [*bundle.characters, *bundle.locations]:
            wanted |= {link.image for link in entry.images}
        for chapter_entry in bundle.chapters:
            wanted |= {chapter_entry.cover_image} if chapter_entry.cover_image else set()
            for scene_entry in chapter_entry.scenes:
                wanted |= {p.selected_image for p in scene_entry.panels if p.selected_image}
        found = await self.images.visible_by_sha256(self.principal, sorted(wanted))
        shared: dict[str, uuid.UUID] = {}
        for digest_value, image in found.items():
            shared[digest_value] = (
                await self.images.share_into(image, owner_id=actor, subject=subject)
            ).id
        missing = sorted(wanted - set(found))

        def audit() -> dict[str, Any]:
            return {"id": uuid7(), "created_by": actor, "updated_by": actor}

        if bundle.style_guide is not None:
            guide = _validated(StyleGuideFields, bundle.style_guide, "style_guide")
            values = guide.model_dump(mode="json", exclude={"reference_image_ids"})
            references = [str(shared[d]) for d in bundle.style_images if d in shared]
            self.session.add(
                StyleGuide(
                    project_id=project.id, reference_image_ids=references, **values, **audit()
                )
            )
        keys: dict[str, uuid.UUID] = {}
        # Rows that point at rows added just before: added after those are flushed (no ORM
        # relationship tells the unit of work the order).
        links: list[Any] = []
        for kind, entries, model, link_model, owner, schema in (
            (
                "characters",
                bundle.characters,
                Character,
                CharacterDesign,
                "character_id",
                CharacterFields,
            ),
            (
                "locations",
                bundle.locations,
                Location,
                LocationReference,
                "location_id",
                LocationFields,
            ),
        ):
            for index, entry in enumerate(entries):
                data = _validated(schema, entry.fields, f"{kind}[{index}].fields")
                if entry.key in keys:
                    raise ValidationException.for_field(f"{kind}[{index}].key", "is used twice")
                row = model(
                    project_id=project.id,
                    name_key=data.name.strip().lower(),  # type: ignore[attr-defined]
                    **data.model_dump(mode="json"),
                    **audit(),
                )
                self.session.add(row)
                keys[entry.key] = row.id
                for link in entry.images:
                    if link.image in shared:
                        links.append(
                            link_model(
                                **{owner: row.id},
                                image_id=shared[link.image],
                                label=link.label,
                                is_primary=link.primary,
                                **audit(),
                            )
                        )
        await self.session.flush()
        self.session.add_all(links)
        links.clear()

        def key(value: str | None, path: str) -> uuid.UUID | None:
            if value is None:
                return None
            if value not in keys:
                raise ValidationException.for_field(path, f"no character or location {value!r}")
            return keys[value]

        places: dict[tuple[int, ...], tuple[str, uuid.UUID]] = {}
        # Written level by level (chapters, scenes, panels, then what points at panels): the
        # tables have no ORM relationships to tell the unit of work that order.
        levels: list[list[Any]] = [[], [], []]
        for c_index, chapter_entry in enumerate(bundle.chapters):
            path = f"chapters[{c_index}]"
            chapter_data = _validated(ChapterFields, chapter_entry.fields, f"{path}.fields")
            chapter = Chapter(
                project_id=project.id,
                position=c_index + 1,
                cover_image_id=shared.get(chapter_entry.cover_image or ""),
                **chapter_data.model_dump(),
                **audit(),
            )
            levels[0].append(chapter)
            places[(c_index,)] = ("chapter", chapter.id)
            for s_index, scene_entry in enumerate(chapter_entry.scenes):
                s_path = f"{path}.scenes[{s_index}]"
                scene_data = _validated(SceneFields, scene_entry.fields, f"{s_path}.fields")
                scene = Scene(
                    project_id=project.id,
                    chapter_id=chapter.id,
                    position=s_index + 1,
                    **scene_data.model_dump(),
                    **audit(),
                )
                levels[1].append(scene)
                places[(c_index, s_index)] = ("scene", scene.id)
                for p_index, panel_entry in enumerate(scene_entry.panels):
                    p_path = f"{s_path}.panels[{p_index}]"
                    fields = dict(panel_entry.fields)
                    prompt = fields.pop("prompt", None)
                    panel_data = _validated(PanelFields, fields, f"{p_path}.fields")
                    bubbles = [
                        _validated(
                            Bubble,
                            {**b, "speaker_id": key(b.get("speaker_id"), f"{p_path}.dialogue")},
                            f"{p_path}.dialogue[{b_index}]",
                        ).model_dump(mode="json")
                        for b_index, b in enumerate(panel_entry.dialogue)
                    ]
                    panel = Panel(
                        project_id=project.id,
                        scene_id=scene.id,
                        position=p_index + 1,
                        location_id=key(panel_entry.location, f"{p_path}.location"),
                        selected_image_id=shared.get(panel_entry.selected_image or ""),
                        prompt=prompt if isinstance(prompt, str) else None,
                        **panel_data.model_dump(mode="json", exclude=set(_PANEL_LINKS)),
                        **audit(),
                    )
                    panel.set_dialogue(bubbles)
                    levels[2].append(panel)
                    places[(c_index, s_index, p_index)] = ("panel", panel.id)
                    for position, character in enumerate(panel_entry.characters, 1):
                        character_id = key(character, f"{p_path}.characters")
                        links.append(
                            PanelCharacter(
                                panel_id=panel.id, character_id=character_id, position=position
                            )
                        )
        for level in (*levels, links):
            self.session.add_all(level)
            await self.session.flush()
        for index, order in enumerate(bundle.instructions):
            rule = _validated(InstructionFields, order.fields, f"instructions[{index}].fields")
            place = tuple(
                order.target[k] for k in ("chapter", "scene", "panel") if k in order.target
            )
            target = places.get(place) if order.scope != "project" else None
            if order.scope != "project" and (target is None or target[0] != order.scope):
                raise ValidationException.for_field(
                    f"instructions[{index}].target", "names no such place in the bundle"
                )
            self.session.add(
                Instruction(
                    project_id=project.id,
                    scope=order.scope,
                    **({f"{order.scope}_id": target[1]} if target else {}),
                    **rule.model_dump(mode="json"),
                    **audit(),
                )
            )
        await self.session.flush()
        return project, missing


def _key_of(keys: dict[uuid.UUID, str], value: Any) -> str | None:
    """A character's bundle key from its id as a bubble stores it (text), if it is one."""
    try:
        return keys.get(uuid.UUID(str(value))) if value else None
    except ValueError:
        return None
