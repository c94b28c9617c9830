"""What the story studio's image generations send, decided when they are submitted.

Each generation is built from its target: a panel from its built prompt (the style guide, its
description, camera, cast, location, mood and instructions: `stories/prompts`), a cover from
its chapter and the main cast, a character sheet or design from the character, a background
from the location. The size follows the style guide's aspect ratio, the negative prompt is the
style guide's, the palette is the style guide's or else the reference images' own colours, and
the reference images (the characters' designs, the location's, the style guide's) are
recorded with the job. The exact prompt is the job's input and the draft's `prompt`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.assets.service import ImageService
from creativeflow.identity.principal import Principal
from creativeflow.jobs.models import Job
from creativeflow.jobs.service import JobService, Subject
from creativeflow.providers.jobs import TEXT_TASK_KIND
from creativeflow.providers.schemas import TextTaskJobInput
from creativeflow.settings import Settings
from creativeflow.shared.core.exceptions import ConflictException, ValidationException
from creativeflow.stories.access import PROJECT_SUBJECT
from creativeflow.stories.cast.models import CharacterRole
from creativeflow.stories.cast.service import CHARACTER, LOCATION, CastService
from creativeflow.stories.content.models import Panel
from creativeflow.stories.content.service import ContentService
from creativeflow.stories.drafts.models import Draft, DraftKind
from creativeflow.stories.drafts.service import DraftService
from creativeflow.stories.generation.jobs import GENERATE_IMAGE_KIND, PANEL_SEQUENCE_KIND
from creativeflow.stories.generation.schemas import (
    ImageOptions,
    PanelSequenceInput,
    ReviseRequest,
    StoryImageJobInput,
    StyleTransferRequest,
    VariationRequest,
)
from creativeflow.stories.projects.service import Need
from creativeflow.stories.prompts.schemas import PanelPrompt
from creativeflow.stories.prompts.service import PromptService
from creativeflow.stories.style.schemas import StyleGuideRead
from creativeflow.stories.style.service import StyleGuideService

PALETTE_SIZE = 5
MAX_REFERENCES = 8
COVER_RATIO = (2, 3)
SHEET_RATIO = (16, 9)
EXPRESSIONS = "neutral, happy, angry, sad, surprised"


class PanelHasNoImage(ConflictException):
    code = "PANEL_HAS_NO_IMAGE"


def image_size(ratio: tuple[int, int], long_side: int) -> tuple[int, int]:
    """Width and height for a W:H ratio, the longer side `long_side`, both multiples of 64."""
    width, height = ratio
    scale = long_side / max(width, height)

    def snap(value: float) -> int:
        return max(64, round(value / 64) * 64)

    return snap(width * scale), snap(height * scale)


def _ratio(guide: StyleGuideRead, default: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    if not guide.aspect_ratio:
        return default
    width, height = guide.aspect_ratio.split(":")
    return int(width), int(height)


def _join(*parts: str | None) -> str:
    return ", ".join(part.strip() for part in parts if part and part.strip())


def _shorten(text: str | None, limit: int = 400) -> str | None:
    if not text or len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"


class GenerationService:
    def __init__(self, session: AsyncSession, principal: Principal, settings: Settings) -> None:
        self.session = session
        self.principal = principal
        self.settings = settings
        self.content = ContentService(session, principal)
        self.cast = CastService(session, principal)
        self.prompts = PromptService(session, principal)
        self.style = StyleGuideService(session, principal)
        self.drafts = DraftService(session, principal)
        self.jobs = JobService(
            session, principal, default_max_attempts=settings.job_default_max_attempts
        )
        self._guides: dict[uuid.UUID, StyleGuideRead] = {}
        self._colours: dict[uuid.UUID, list[dict[str, Any]]] = {}

    # -- targets -------------------------------------------------------------------------------

    async def panel_image(
        self, panel_id: uuid.UUID, options: ImageOptions, key: str | None
    ) -> tuple[Job, bool]:
        panel = await self.content.panel(panel_id, Need.WRITE)
        built = await self.prompts.build(panel.id)
        data = await self._panel_input(panel, built, options)
        return await self._submit(data, options, key)

    async def _panel_input(
        self, panel: Panel, built: PanelPrompt, options: ImageOptions, seed_offset: int = 0
    ) -> StoryImageJobInput:
        guide = await self._guide(panel.project_id)
        seed = None if options.seed is None else (options.seed + seed_offset) % 2**32
        return await self._input(
            panel.project_id,
            "panel",
            panel.id,
            "panel_image",
            built.prompt or "an empty comic panel",
            guide,
            options,
            ratio=_ratio(guide),
            references=built.reference_image_ids,
            seed=seed,
        )

    async def cover(
        self, chapter_id: uuid.UUID, options: ImageOptions, key: str | None
    ) -> tuple[Job, bool]:
        chapter = await self.content.chapter(chapter_id, Need.WRITE)
        guide = await self.style.get(chapter.project_id)
        leads, references = await self._main_cast(chapter.project_id)
        prompt = _join(
            guide.art_style,
            f"cover illustration for chapter {chapter.position}: {chapter.title}",
            _shorten(chapter.summary),
            *leads,
            "dramatic composition, space for the title at the top",
        )
        data = await self._input(
            chapter.project_id,
            "cover",
            chapter.id,
            "cover",
            prompt,
            guide,
            options,
            ratio=COVER_RATIO,
            references=references,
        )
        return await self._submit(data, options, key)

    async def character_sheet(
        self, character_id: uuid.UUID, options: ImageOptions, key: str | None
    ) -> tuple[Job, bool]:
        return await self._character(character_id, options, key, sheet=True)

    async def character_design(
        self, character_id: uuid.UUID, options: ImageOptions, key: str | None
    ) -> tuple[Job, bool]:
        return await self._character(character_id, options, key, sheet=False)

    async def _character(
        self, character_id: uuid.UUID, options: ImageOptions, key: str | None, *, sheet: bool
    ) -> tuple[Job, bool]:
        character = await self.cast.character(character_id, Need.WRITE)
        guide = await self.style.get(character.project_id)
        traits = ", ".join(character.appearance)
        if sheet:
            subject = (
                f"character turnaround sheet of {character.name}: front view, side view, back "
                f"view, and a row of facial expressions ({EXPRESSIONS})"
            )
            ending = "full body, same outfit in every view, plain light background"
        else:
            subject = f"full-body character design of {character.name}"
            ending = "standing pose, plain light background"
        prompt = _join(guide.art_style, subject, traits, _shorten(character.description), ending)
        links = (await self.cast.links(CHARACTER, [character.id])).get(character.id, [])
        data = await self._input(
            character.project_id,
            "character",
            character.id,
            "character_sheet" if sheet else "character_design",
            prompt,
            guide,
            options,
            ratio=SHEET_RATIO if sheet else (2, 3),
            references=[link.image_id for link in links],
            palette=list(character.palette),
        )
        return await self._submit(data, options, key)

    async def background(
        self,
        location_id: uuid.UUID,
        options: ImageOptions,
        key: str | None,
        *,
        time_of_day: str | None = None,
    ) -> tuple[Job, bool]:
        location = await self.cast.location(location_id, Need.WRITE)
        guide = await self.style.get(location.project_id)
        prompt = _join(
            guide.art_style,
            f"background art of {location.name}",
            (location.setting or "").replace("_", " "),
            location.time_period,
            _shorten(location.description),
            time_of_day,
            "wide establishing view, no characters",
        )
        links = (await self.cast.links(LOCATION, [location.id])).get(location.id, [])
        data = await self._input(
            location.project_id,
            "location",
            location.id,
            "background",
            prompt,
            guide,
            options,
            ratio=_ratio(guide, (16, 9)),
            references=[link.image_id for link in links],
            palette=list(location.palette),
        )
        return await self._submit(data, options, key)

    async def transform(
        self,
        panel_id: uuid.UUID,
        options: VariationRequest | StyleTransferRequest,
        key: str | None,
    ) -> tuple[Job, bool]:
        """Variations of a panel's image, or the image restyled: a draft for the panel."""
        panel = await self.content.panel(panel_id, Need.WRITE)
        if panel.selected_image_id is None:
            raise PanelHasNoImage("The panel has no image yet: generate or select one first")
        built = await self.prompts.build(panel.id)
        data = await self._panel_input(panel, built, options)
        restyle = isinstance(options, StyleTransferRequest)
        changes: dict[str, Any] = {
            "operation": "style_transfer" if restyle else "variation",
            "source_image_id": panel.selected_image_id,
            "strength": options.strength,
            "prompt": options.prompt or data.prompt,
        }
        if isinstance(options, StyleTransferRequest):
            changes["style"] = options.style
            changes["palette"] = options.palette or data.palette
        return await self._submit(data.model_copy(update=changes), options, key)

    # -- many panels ---------------------------------------------------------------------------

    async def panel_sequence(
        self,
        options: ImageOptions,
        key: str | None,
        *,
        scene_id: uuid.UUID | None = None,
        panel_ids: Sequence[uuid.UUID] | None = None,
        only_missing: bool = False,
        workflow: str = "panel_sequence",
    ) -> tuple[Job, bool]:
        """One job per panel under one group: a scene's panels in reading order, or the
        panels listed (all of one project)."""
        rows = await self._sequence_panels(scene_id, panel_ids)
        if only_missing:
            rows = [(panel, chapter) for panel, chapter in rows if panel.selected_image_id is None]
        if not rows:
            raise ValidationException.for_field(
                "scene_id" if scene_id is not None else "panel_ids",
                "has no panels to generate" + (" without an image" if only_missing else ""),
            )
        project_id = rows[0][0].project_id
        inputs = await self.panel_image_inputs(project_id, rows, options)
        children = [(GENERATE_IMAGE_KIND, data) for data in inputs]
        group = PanelSequenceInput(
            project_id=project_id,
            scene_id=scene_id,
            panel_ids=[panel.id for panel, _ in rows],
            workflow=workflow,  # type: ignore[arg-type]
        )
        return await self.jobs.submit_group(
            PANEL_SEQUENCE_KIND,
            group,
            children,
            subject=Subject(PROJECT_SUBJECT, project_id),
            priority=options.priority,
            idempotency_key=key,
            subject_checked=True,
        )

    async def panel_image_inputs(
        self,
        project_id: uuid.UUID,
        rows: Sequence[tuple[Panel, uuid.UUID]],
        options: ImageOptions,
    ) -> list[StoryImageJobInput]:
        """The `stories.generate_image` input of each panel (with its chapter id; all of one
        project, access checked by the caller), their prompts built from one context; with a
        seed, panel n of the list gets seed + n."""
        built = await self.prompts.build_many(project_id, rows)
        return [
            await self._panel_input(panel, prompt, options, offset)
            for offset, ((panel, _), prompt) in enumerate(zip(rows, built, strict=True))
        ]

    async def _sequence_panels(
        self, scene_id: uuid.UUID | None, panel_ids: Sequence[uuid.UUID] | None
    ) -> list[tuple[Panel, uuid.UUID]]:
        if scene_id is not None:
            scene = await self.content.scene(scene_id, Need.WRITE)
            return await self.content.panels_in_reading_order(scene.project_id, scene_id=scene.id)
        assert panel_ids is not None
        first = await self.content.panel(panel_ids[0], Need.WRITE)
        ordered = await self.content.panels_in_reading_order(first.project_id)
        by_id = {panel.id: (panel, chapter) for panel, chapter in ordered}
        for index, panel_id in enumerate(panel_ids):
            if panel_id not in by_id:
                raise ValidationException.for_field(
                    f"panel_ids[{index}]", "is not a panel of the first panel's project"
                )
        return [by_id[panel_id] for panel_id in panel_ids]

    # -- revising ------------------------------------------------------------------------------

    async def revise(
        self, draft_id: uuid.UUID, request: ReviseRequest, key: str | None
    ) -> tuple[Job, bool]:
        """A new generation from the draft's prompt with what to change: the instructions and
        the feedback comments. Unless a seed is given, the best-rated variant's seed is kept,
        so what was liked stays. A text draft's task runs again with them as revision notes.
        The new draft links to this one (`revises_id`)."""
        draft = await self.drafts.get(draft_id, Need.WRITE)
        feedback = (await self.drafts.feedback([draft])).get(draft.id, [])
        notes = [row.comment for row in feedback if row.comment]
        if draft.kind != DraftKind.IMAGE:
            return await self._revise_text(draft, request, notes, key)
        prompt = _join(draft.prompt, request.instructions, *notes)
        rated = sorted(
            (row for row in feedback if row.rating is not None),
            key=lambda row: -(row.rating or 0),
        )
        seed = request.seed
        if seed is None and rated:
            seed = draft.variants[rated[0].variant].get("seed")
        parameters = {
            name: value
            for name, value in draft.parameters.items()
            if name in StoryImageJobInput.model_fields
        }
        data = StoryImageJobInput.model_validate(
            {
                **parameters,
                "prompt": prompt[:8000],
                "negative_prompt": draft.negative_prompt or "",
                "count": request.count or parameters.get("count", 1),
                "seed": seed,
                "revises_id": draft.id,
            }
        )
        options = ImageOptions(count=data.count, priority=request.priority)
        return await self._submit(data, options, key)

    async def _revise_text(
        self, draft: Draft, request: ReviseRequest, notes: list[str], key: str | None
    ) -> tuple[Job, bool]:
        """The draft's text task again, as it ran, with the instructions and the comments as
        revision notes; its draft revises this one."""
        if "task_type" not in draft.parameters:
            raise ValidationException.for_field("draft_id", "this draft cannot be run again")
        changes: dict[str, Any] = {
            "revision_notes": [note[:2000] for note in [request.instructions, *notes] if note],
            "revises": draft.id,
        }
        if request.seed is not None:
            changes["seed"] = request.seed
        data = TextTaskJobInput.model_validate(
            {
                name: value
                for name, value in draft.parameters.items()
                if name in TextTaskJobInput.model_fields
            }
            | changes
        )
        return await self.jobs.submit(
            TEXT_TASK_KIND,
            data,
            subject=Subject(PROJECT_SUBJECT, draft.project_id),
            priority=request.priority,
            idempotency_key=key,
            subject_checked=True,
        )

    # -- shared --------------------------------------------------------------------------------

    async def _main_cast(self, project_id: uuid.UUID) -> tuple[list[str], list[uuid.UUID]]:
        """The protagonists' and antagonists' descriptions and primary designs (at most 4)."""
        characters, _ = await self.cast.page(CHARACTER, project_id, None, limit=100, offset=0)
        leads = [
            character
            for character in characters
            if character.role in (CharacterRole.PROTAGONIST, CharacterRole.ANTAGONIST)
        ][:4]
        links = await self.cast.links(CHARACTER, [character.id for character in leads])
        texts = [f"{c.name} ({', '.join(c.appearance)})" if c.appearance else c.name for c in leads]
        references = [
            link.image_id
            for character in leads
            for link in links.get(character.id, [])
            if link.is_primary
        ]
        return texts, references

    async def _input(
        self,
        project_id: uuid.UUID,
        target_type: str,
        target_id: uuid.UUID,
        operation: str,
        prompt: str,
        guide: StyleGuideRead,
        options: ImageOptions,
        *,
        ratio: tuple[int, int],
        references: Sequence[uuid.UUID],
        palette: Sequence[str] = (),
        seed: int | None = None,
    ) -> StoryImageJobInput:
        width, height = image_size(ratio, self.settings.story_image_long_side)
        chosen = list(dict.fromkeys([*references, *guide.reference_image_ids]))[:MAX_REFERENCES]
        colours = list(palette) or list(guide.palette) or await self._reference_palette(chosen)
        return StoryImageJobInput(
            project_id=project_id,
            target_type=target_type,  # type: ignore[arg-type]
            target_id=target_id,
            operation=operation,  # type: ignore[arg-type]
            prompt=prompt[:8000],
            negative_prompt=(guide.negative_prompt or "")[:5000],
            width=width,
            height=height,
            count=options.count,
            seed=options.seed if seed is None else seed,
            palette=colours[:8],
            format=options.format,
            reference_image_ids=chosen,
        )

    async def _guide(self, project_id: uuid.UUID) -> StyleGuideRead:
        """The style guide, read once per request (a sequence builds many panels' inputs)."""
        if project_id not in self._guides:
            self._guides[project_id] = await self.style.get(project_id)
        return self._guides[project_id]

    async def _reference_palette(self, image_ids: Sequence[uuid.UUID]) -> list[str]:
        """The colours the reference images share most, weighted by their share in each;
        each image's colours read once per request."""
        unknown = [image_id for image_id in image_ids if image_id not in self._colours]
        if unknown:
            for image in await ImageService(self.session).by_ids(unknown):
                self._colours[image.id] = list(image.dominant_colors)
            for image_id in unknown:
                self._colours.setdefault(image_id, [])  # deleted: not asked again
        shares: dict[str, float] = {}
        for image_id in image_ids:
            for colour in self._colours.get(image_id, []):
                hex_colour = str(colour["hex"]).lower()
                shares[hex_colour] = shares.get(hex_colour, 0.0) + float(colour.get("share", 0))
        return sorted(shares, key=lambda colour: -shares[colour])[:PALETTE_SIZE]

    async def _submit(
        self, data: StoryImageJobInput, options: ImageOptions, key: str | None
    ) -> tuple[Job, bool]:
        return await self.jobs.submit(
            GENERATE_IMAGE_KIND,
            data,
            subject=Subject(PROJECT_SUBJECT, data.project_id),
            priority=options.priority,
            idempotency_key=key,
            subject_checked=True,
        )
