"""Character consistency: the check of a project or chapter (`POST /workflow/consistency-check`)
and the drift warnings of a locked character's new image (`locked_drift_warnings`).

A check is read first, in one short read (`ConsistencyService.plan`: the panels in reading
order with their places, the whole cast, the panels' casting, the characters' designs and
where the images are stored), then run with no session open (`run_check`): the text checks
(`text.py`), then each reference image's features computed once, then each panel image's,
decoded in a worker thread under the platform's decode slots, and its drift against the
primary design of each checked character cast in it. Up to STORY_CONSISTENCY_INLINE_PANELS
panel images are compared in the request; more run as a `stories.consistency_check` job whose
result is the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.assets.errors import ImageNotFound
from creativeflow.assets.service import ImageService, read_object
from creativeflow.identity.principal import Principal
from creativeflow.jobs.models import Job
from creativeflow.jobs.service import JobService, Subject, succeeded_result
from creativeflow.providers.embeddings import cosine_distance
from creativeflow.providers.errors import ProviderError
from creativeflow.settings import Settings
from creativeflow.shared.core.exceptions import ValidationException
from creativeflow.stories.access import PROJECT_SUBJECT
from creativeflow.stories.cast.service import CHARACTER, CastService
from creativeflow.stories.consistency.features import ImageFeatures, drift, features_of
from creativeflow.stories.consistency.repository import ConsistencyRepository
from creativeflow.stories.consistency.schemas import (
    CharacterDrift,
    ConsistencyCheckRequest,
    ConsistencyReport,
    ImageProblem,
    PanelDrift,
    TextIssue,
    UncheckedCharacter,
    UncheckedReason,
)
from creativeflow.stories.consistency.text import Named, NameFinder, PanelText, panel_findings
from creativeflow.stories.projects.service import Need, ProjectService

if TYPE_CHECKING:
    from creativeflow.platform import Platform

CONSISTENCY_KIND = "stories.consistency_check"
DRIFT_DIGITS = 4  # drift is reported rounded, and compared with the threshold unrounded

Progress = Callable[[float, str], Awaitable[None]]


# -- what a check reads ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reference:
    image_id: uuid.UUID
    storage_key: str | None  # None: the image row is gone


@dataclass(frozen=True, slots=True)
class CharacterView:
    id: uuid.UUID
    name: str
    locked: bool
    designs: int
    primary: tuple[Reference, ...]


@dataclass(frozen=True, slots=True)
class PanelView:
    id: uuid.UUID
    chapter_id: uuid.UUID
    scene_id: uuid.UUID
    chapter_position: int
    scene_position: int
    panel_position: int
    text: PanelText
    image: Reference | None

    def place(self) -> dict[str, Any]:
        return {
            "panel_id": self.id,
            "chapter_id": self.chapter_id,
            "scene_id": self.scene_id,
            "chapter_position": self.chapter_position,
            "scene_position": self.scene_position,
            "panel_position": self.panel_position,
        }


@dataclass(frozen=True, slots=True)
class CheckPlan:
    """Everything a check needs, read in one short read: no ORM object, no session."""

    project_id: uuid.UUID
    chapter_id: uuid.UUID | None
    character_ids: tuple[uuid.UUID, ...] | None
    threshold: float
    panels: tuple[PanelView, ...]
    characters: tuple[CharacterView, ...]  # the whole project's, by name
    locations: dict[uuid.UUID, str]
    # The cosine distance flagged too when image embeddings are configured.
    embedding_threshold: float = 0.25

    @property
    def checked(self) -> tuple[CharacterView, ...]:
        if self.character_ids is None:
            return self.characters
        wanted = set(self.character_ids)
        return tuple(character for character in self.characters if character.id in wanted)

    def panels_to_compare(self) -> list[PanelView]:
        """The panels with an image that cast a checked character with a primary design."""
        measured = {character.id for character in self.checked if character.primary}
        return [
            panel for panel in self.panels if panel.image is not None and panel.text.cast & measured
        ]


# -- the service -------------------------------------------------------------------------------


class ConsistencyService:
    def __init__(self, session: AsyncSession, principal: Principal, settings: Settings) -> None:
        self.session = session
        self.principal = principal
        self.settings = settings
        self.projects = ProjectService(session, principal)
        self.cast = CastService(session, principal)
        self.rows = ConsistencyRepository(session)
        self.jobs = JobService(
            session, principal, default_max_attempts=settings.job_default_max_attempts
        )

    def threshold(self, asked: float | None) -> float:
        return self.settings.story_drift_threshold if asked is None else asked

    async def _check_scope(self, request: ConsistencyCheckRequest) -> None:
        """The caller may read the project (404 otherwise); the chapter and the characters
        are the project's (422 naming the field)."""
        await self.projects.grant(request.project_id, Need.READ)
        if request.chapter_id is not None and not await self.rows.chapter_in_project(
            request.project_id, request.chapter_id
        ):
            raise ValidationException.for_field("chapter_id", "is not a chapter of this project")
        if request.character_ids:
            await self.cast.check_panel_cast(request.project_id, request.character_ids, None)

    async def plan(self, request: ConsistencyCheckRequest) -> CheckPlan:
        await self._check_scope(request)
        project_id = request.project_id
        rows = await self.rows.panels(project_id, request.chapter_id)
        characters = await self.rows.characters(project_id)
        locations = await self.rows.locations(project_id)
        casting = await self.cast.panel_characters([row.id for row in rows])
        designs = await self.cast.links(CHARACTER, [character.id for character in characters])
        primaries = {
            character_id: [link.image_id for link in links if link.is_primary]
            for character_id, links in designs.items()
        }
        image_ids = {row.selected_image_id for row in rows if row.selected_image_id}
        image_ids |= {image_id for ids in primaries.values() for image_id in ids}
        keys = {
            image.id: image.storage_key
            for image in await ImageService(self.session).by_ids(sorted(image_ids))
        }

        def reference(image_id: uuid.UUID) -> Reference:
            return Reference(image_id, keys.get(image_id))

        return CheckPlan(
            project_id=project_id,
            chapter_id=request.chapter_id,
            character_ids=tuple(dict.fromkeys(request.character_ids))
            if request.character_ids
            else None,
            threshold=self.threshold(request.threshold),
            embedding_threshold=self.settings.story_embedding_threshold,
            panels=tuple(
                PanelView(
                    id=row.id,
                    chapter_id=row.chapter_id,
                    scene_id=row.scene_id,
                    chapter_position=row.chapter_position,
                    scene_position=row.scene_position,
                    panel_position=row.panel_position,
                    text=PanelText(
                        description=row.description,
                        dialogue=tuple(row.dialogue or ()),
                        cast=frozenset(casting.get(row.id, ())),
                        location_id=row.location_id,
                    ),
                    image=reference(row.selected_image_id) if row.selected_image_id else None,
                )
                for row in rows
            ),
            characters=tuple(
                CharacterView(
                    id=character.id,
                    name=character.name,
                    locked=character.locked,
                    designs=len(designs.get(character.id, [])),
                    primary=tuple(reference(i) for i in primaries.get(character.id, [])),
                )
                for character in characters
            ),
            locations={location.id: location.name for location in locations},
        )

    def runs_inline(self, plan: CheckPlan) -> bool:
        return len(plan.panels_to_compare()) <= self.settings.story_consistency_inline_panels

    async def submit(self, request: ConsistencyCheckRequest, idempotency_key: str | None) -> Job:
        """A `stories.consistency_check` job for a check too large for the request, with the
        threshold as it is now."""
        await self._check_scope(request)
        data = request.model_dump(mode="json") | {"threshold": self.threshold(request.threshold)}
        job, _ = await self.jobs.submit(
            CONSISTENCY_KIND,
            data,
            subject=Subject(PROJECT_SUBJECT, request.project_id),
            subject_checked=True,  # reading the project is enough: the check changes nothing
            idempotency_key=idempotency_key,
        )
        return job

    async def finished_report(self, job_id: uuid.UUID) -> dict[str, Any]:
        """A succeeded check's report: 404 for a job the caller may not read (or of another
        kind), 409 while it runs or when it failed."""
        job = await self.jobs.get(job_id, kinds=[CONSISTENCY_KIND])
        return succeeded_result(job, "The check has no report")


# -- running a check ---------------------------------------------------------------------------


class _Problem(Exception):
    """An image that could not be read: its code and why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Features:
    """Image features computed once per stored picture in a run (images are stored by content:
    a panel showing a design's very bytes is decoded once), or why it could not be read."""

    platform: Platform
    known: dict[str | uuid.UUID, ImageFeatures | _Problem] = field(default_factory=dict)
    # With an image embedder: each picture's embedding, asked for as it is read.
    vectors: dict[str | uuid.UUID, list[float]] = field(default_factory=dict)
    embedding_error: str | None = None

    def vector_of(self, reference: Reference) -> list[float] | None:
        return self.vectors.get(reference.storage_key or reference.image_id)

    async def embed(self, key: str | uuid.UUID, data: bytes) -> None:
        embedder = self.platform.image_embedder
        if embedder is None or self.embedding_error is not None:
            return
        try:
            [self.vectors[key]] = await embedder.embed([data])
        except ProviderError as exc:  # the drift stands without them
            self.embedding_error = exc.message

    async def of(self, reference: Reference) -> ImageFeatures:
        key = reference.storage_key or reference.image_id
        found = self.known.get(key)
        if found is None:
            try:
                found = await self._read(reference)
            except _Problem as problem:
                found = problem
            self.known[key] = found
        if isinstance(found, _Problem):
            raise found
        return found

    async def _read(self, reference: Reference) -> ImageFeatures:
        if reference.storage_key is None:
            raise _Problem("IMAGE_BYTES_MISSING", "The image is gone")
        try:
            data = await read_object(self.platform.storage, reference.storage_key)
        except ImageNotFound as exc:
            raise _Problem("IMAGE_BYTES_MISSING", "The image's bytes are missing") from exc
        async with self.platform.image_decode_slots:
            try:
                found = await asyncio.to_thread(features_of, data)
            except ValueError as exc:
                raise _Problem("IMAGE_UNREADABLE", str(exc)) from exc
        await self.embed(reference.storage_key, data)
        return found

    def embedding_distance(self, panel: Reference, references: Sequence[Reference]) -> float | None:
        """The cosine distance of the panel's embedding from the closest reference's; None
        without embeddings."""
        vector = self.vector_of(panel)
        others = [v for v in (self.vector_of(ref) for ref in references) if v is not None]
        if vector is None or not others:
            return None
        return min(cosine_distance(vector, other) for other in others)


def _text_issues(plan: CheckPlan) -> list[TextIssue]:
    names = {character.id: character.name for character in plan.characters}
    characters = NameFinder(Named(c.id, c.name) for c in plan.characters)
    locations = NameFinder(Named(i, name) for i, name in plan.locations.items())
    checked = frozenset(character.id for character in plan.checked)
    return [
        TextIssue(
            **panel.place(),
            code=finding.code,  # type: ignore[arg-type]
            field=finding.field,
            message=finding.message,
            character_id=finding.character_id,
            location_id=finding.location_id,
        )
        for panel in plan.panels
        for finding in panel_findings(
            panel.text,
            characters=characters,
            locations=locations,
            project_characters=names,
            location_names=plan.locations,
            checked=checked,
        )
    ]


async def _references(
    plan: CheckPlan, features: _Features
) -> tuple[dict[uuid.UUID, list[ImageFeatures]], list[UncheckedCharacter]]:
    """The features of each checked character's primary designs, and the characters that
    cannot be measured, with why."""
    references: dict[uuid.UUID, list[ImageFeatures]] = {}
    unchecked: list[UncheckedCharacter] = []

    def skip(character: CharacterView, reason: UncheckedReason, message: str) -> None:
        unchecked.append(
            UncheckedCharacter(
                character_id=character.id, name=character.name, reason=reason, message=message
            )
        )

    for character in plan.checked:
        if not character.primary:
            if character.designs:
                skip(character, "NO_PRIMARY_DESIGN", "None of its designs is primary")
            else:
                skip(character, "NO_DESIGNS", "It has no designs")
            continue
        readable = []
        for reference in character.primary:
            with contextlib.suppress(_Problem):
                readable.append(await features.of(reference))
        if readable:
            references[character.id] = readable
        else:
            skip(character, "REFERENCE_UNREADABLE", "Its primary design could not be read")
    return references, unchecked


async def run_check(
    plan: CheckPlan, platform: Platform, progress: Progress | None = None
) -> ConsistencyReport:
    """The report of a plan, with no session open: images are read from storage and decoded
    in worker threads. Progress (0.05..0.99) as the panel images are compared."""
    features = _Features(platform)
    embedder = platform.image_embedder
    issues = await asyncio.to_thread(_text_issues, plan)  # many panels: many regex passes
    references, unchecked = await _references(plan, features)
    if progress is not None:
        await progress(0.05, "references read")

    measured = set(references)
    primaries = {character.id: character.primary for character in plan.checked}
    drifts: dict[uuid.UUID, list[PanelDrift]] = {character_id: [] for character_id in references}
    problems: list[ImageProblem] = []
    to_compare = [panel for panel in plan.panels_to_compare() if panel.text.cast & measured]
    every = max(1, len(to_compare) // 100)  # at most about 100 progress writes
    for number, panel in enumerate(to_compare, 1):
        assert panel.image is not None
        try:
            image = await features.of(panel.image)
        except _Problem as problem:
            problems.append(
                ImageProblem(
                    **panel.place(),
                    image_id=panel.image.image_id,
                    code=problem.code,  # type: ignore[arg-type]
                    message=problem.message,
                )
            )
        else:
            for character_id in panel.text.cast & measured:
                value = drift(image, references[character_id])
                distance = features.embedding_distance(panel.image, primaries[character_id])
                drifts[character_id].append(
                    PanelDrift(
                        **panel.place(),
                        image_id=panel.image.image_id,
                        drift=round(value, DRIFT_DIGITS),
                        embedding_distance=None
                        if distance is None
                        else round(distance, DRIFT_DIGITS),
                        over_threshold=value > plan.threshold
                        or (distance is not None and distance > plan.embedding_threshold),
                    )
                )
        if progress is not None and (number % every == 0 or number == len(to_compare)):
            await progress(
                0.05 + 0.94 * number / len(to_compare),
                f"panel image {number} of {len(to_compare)}",
            )

    without_image = Counter(
        character_id
        for panel in plan.panels
        if panel.image is None
        for character_id in panel.text.cast
    )
    return ConsistencyReport(
        project_id=plan.project_id,
        chapter_id=plan.chapter_id,
        character_ids=list(plan.character_ids) if plan.character_ids is not None else None,
        threshold=plan.threshold,
        embedding_threshold=plan.embedding_threshold if embedder else None,
        embedding_model=embedder.model if embedder else None,
        embedding_error=features.embedding_error,
        panels=len(plan.panels),
        images=len(to_compare) - len(problems),
        characters=[
            CharacterDrift(
                character_id=character.id,
                name=character.name,
                locked=character.locked,
                reference_image_ids=[reference.image_id for reference in character.primary],
                panels=drifts[character.id],
                over_threshold=[d.panel_id for d in drifts[character.id] if d.over_threshold],
                max_drift=max((d.drift for d in drifts[character.id]), default=None),
                panels_without_image=without_image[character.id],
            )
            for character in plan.checked
            if character.id in references
        ],
        unchecked=unchecked,
        issues=issues,
        image_problems=problems,
    )


# -- after a generation ------------------------------------------------------------------------


async def locked_drift_warnings(
    platform: Platform,
    panel_id: uuid.UUID,
    image: bytes,
    *,
    threshold: float | None = None,
) -> list[dict[str, Any]]:
    """Warnings for a new image of a panel: one per LOCKED character cast in it whose drift
    from its primary design is above `threshold` (default STORY_DRIFT_THRESHOLD), as
    `{"code": "CHARACTER_DRIFT", "character_id", "name", "drift", "threshold", "message"}`;
    an empty list when none drifts (or the panel is gone, or casts no locked character with
    a primary design).

    Call it outside any transaction: the panel's cast is read in a short read session, then
    the images are decoded in worker threads. A locked character whose primary design cannot
    be read is left out. Raises ValueError for a threshold outside 0..1 or an `image` that is
    not a readable image."""
    [warnings] = await locked_drift_of_images(platform, panel_id, [image], threshold=threshold)
    if warnings is None:
        raise ValueError("the image cannot be read")
    return warnings


async def locked_drift_of_images(
    platform: Platform,
    panel_id: uuid.UUID,
    images: Sequence[bytes],
    *,
    threshold: float | None = None,
) -> list[list[dict[str, Any]] | None]:
    """`locked_drift_warnings` for several new images of one panel (a generation's
    variants): the cast and its designs read, and the designs decoded, once for all of
    them. None for an image that is not a readable image."""
    limit = platform.settings.story_drift_threshold if threshold is None else threshold
    if not 0.0 <= limit <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1, not {limit}")
    async with platform.read_sessions() as session:
        repository = ConsistencyRepository(session)
        locked = await repository.locked_cast(panel_id)
        designs = await repository.primary_designs([character.id for character in locked])
        keys = {
            row.id: row.storage_key
            for row in await ImageService(session).by_ids(
                sorted({image_id for ids in designs.values() for image_id in ids})
            )
        }
        cast = [(character.id, character.name) for character in locked if designs[character.id]]
    if not cast:
        return [[] for _ in images]
    features = _Features(platform)
    embedding_limit = platform.settings.story_embedding_threshold
    found: list[list[dict[str, Any]] | None] = []
    for image in images:
        async with platform.image_decode_slots:
            try:
                panel = await asyncio.to_thread(features_of, image)
            except ValueError:
                found.append(None)
                continue
        new_image = Reference(uuid.uuid4(), None)  # this image's embedding, under its own key
        await features.embed(new_image.image_id, image)
        warnings = []
        for character_id, name in cast:
            primaries = [
                Reference(image_id, keys.get(image_id)) for image_id in designs[character_id]
            ]
            references = []
            for reference in primaries:
                with contextlib.suppress(_Problem):
                    references.append(await features.of(reference))
            if not references:
                continue
            value = drift(panel, references)
            distance = features.embedding_distance(new_image, primaries)
            if value > limit or (distance is not None and distance > embedding_limit):
                warning = _drift_warning(character_id, name, value, limit)
                if distance is not None:
                    warning["embedding_distance"] = round(distance, DRIFT_DIGITS)
                warnings.append(warning)
        found.append(warnings)
    return found


def _drift_warning(
    character_id: uuid.UUID, name: str, value: float, limit: float
) -> dict[str, Any]:
    shown = round(value, DRIFT_DIGITS)
    return {
        "code": "CHARACTER_DRIFT",
        "character_id": str(character_id),
        "name": name,
        "drift": shown,
        "threshold": limit,
        "message": f"{name} drifts {shown:.2f} from their primary design "
        f"(threshold {limit:.2f}): the image may not show them as designed",
    }
