"""Draft rules: reading a project's drafts, choosing, restoring, rejecting, feedback, bulk.

Drafts are written by generation jobs (`record_draft`, in the job's success transaction) and
read and decided by the project's members: readers see them, editors and the owner decide.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.db.ids import uuid7
from creativeflow.db.types import utcnow
from creativeflow.db.versioning import ensure_version
from creativeflow.identity.principal import Principal
from creativeflow.shared.core.exceptions import (
    ConflictException,
    NotFoundException,
    ValidationException,
)
from creativeflow.shared.messaging.bus import record_event
from creativeflow.stories.access import readable_projects
from creativeflow.stories.drafts.models import Draft, DraftFeedback, DraftStatus
from creativeflow.stories.drafts.repository import DraftFilters, DraftRepository
from creativeflow.stories.drafts.schemas import BulkAction, FeedbackCreate
from creativeflow.stories.drafts.targets import DraftTargets
from creativeflow.stories.events import DraftReady
from creativeflow.stories.projects.service import Need, ProjectNotFound, ProjectService


class DraftNotFound(NotFoundException):
    code = "DRAFT_NOT_FOUND"


class DraftStateConflict(ConflictException):
    code = "DRAFT_STATE_CONFLICT"


@dataclass(frozen=True, slots=True)
class NewDraft:
    """What a generation made, as its job records it."""

    project_id: uuid.UUID
    kind: str
    operation: str
    target_type: str
    target_id: uuid.UUID
    variants: list[dict[str, Any]]
    job_id: uuid.UUID | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    provider: str | None = None
    model: str | None = None
    parameters: dict[str, Any] | None = None
    warnings: list[dict[str, Any]] | None = None
    revises_id: uuid.UUID | None = None
    created_by: uuid.UUID | None = None
    # Chosen up front, so the job's result can name the draft its success writes.
    id: uuid.UUID = field(default_factory=uuid7)


def record_draft(session: AsyncSession, new: NewDraft) -> Draft:
    """Add the draft (no access check: its job was checked when submitted) and announce it
    with the transaction: `draft_ready` goes out exactly when the draft exists."""
    variants = [{**variant, "index": index} for index, variant in enumerate(new.variants)]
    draft = Draft(
        id=new.id,
        project_id=new.project_id,
        kind=new.kind,
        operation=new.operation,
        target_type=new.target_type,
        target_id=new.target_id,
        status=DraftStatus.PENDING,
        job_id=new.job_id,
        prompt=new.prompt,
        negative_prompt=new.negative_prompt,
        provider=new.provider,
        model=new.model,
        parameters=new.parameters or {},
        variants=variants,
        history=[],
        warnings=new.warnings or [],
        revises_id=new.revises_id,
        created_by=new.created_by,
        updated_by=new.created_by,
    )
    session.add(draft)
    record_event(
        session.info,
        DraftReady(
            project_id=draft.project_id,
            draft_id=draft.id,
            job_id=draft.job_id,
            kind=draft.kind,
            operation=draft.operation,
            target_type=draft.target_type,
            target_id=draft.target_id,
            variants=len(variants),
            warnings=[warning.get("code", "") for warning in draft.warnings],
            owner_id=new.created_by,
        ),
    )
    return draft


class DraftService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self.drafts = DraftRepository(session)
        self.projects = ProjectService(session, principal)

    # -- reading -------------------------------------------------------------------------------

    async def get(self, draft_id: uuid.UUID, need: Need = Need.READ) -> Draft:
        draft = await self.drafts.get_or_none(draft_id)
        if draft is None:
            raise DraftNotFound(f"No draft {draft_id}")
        try:
            await self.projects.grant(draft.project_id, need)
        except ProjectNotFound:
            raise DraftNotFound(f"No draft {draft_id}") from None
        return draft

    async def page(
        self, filters: DraftFilters, *, limit: int, offset: int
    ) -> tuple[Sequence[Draft], int]:
        if filters.project_id is not None:
            await self.projects.grant(filters.project_id, Need.READ)
        return await self.drafts.page_in(
            readable_projects(self.principal), filters, limit=limit, offset=offset
        )

    async def feedback(self, drafts: Sequence[Draft]) -> dict[uuid.UUID, list[DraftFeedback]]:
        return await self.drafts.feedback_of([draft.id for draft in drafts])

    async def pending_counts(self, project_id: uuid.UUID) -> dict[str, int]:
        await self.projects.grant(project_id, Need.READ)
        return await self.drafts.pending_counts(project_id)

    # -- deciding ------------------------------------------------------------------------------

    async def select(self, draft_id: uuid.UUID, variant: int, expected: int | None) -> Draft:
        draft = await self.get(draft_id, Need.WRITE)
        ensure_version(draft, expected, "draft")
        return await self._select(draft, variant)

    async def _select(self, draft: Draft, variant: int, field_name: str = "variant") -> Draft:
        if not draft.variants:
            raise DraftStateConflict("The draft has no variants to select")
        if variant >= len(draft.variants):
            raise ValidationException.for_field(
                field_name, f"must be between 0 and {len(draft.variants) - 1}"
            )
        if draft.status == DraftStatus.SELECTED and draft.selected_variant == variant:
            raise DraftStateConflict(f"Variant {variant} is already selected")
        previous = await DraftTargets(self.session, self.principal).apply(
            draft, draft.variants[variant]
        )
        entry = {
            "variant": variant,
            "at": utcnow().isoformat(),
            "by": str(self.principal.user_id),
            "previous": previous,
            "restored_at": None,
        }
        draft.history = [*draft.history, entry]
        draft.status = DraftStatus.SELECTED
        draft.selected_variant = variant
        return await self._save(draft)

    async def restore(self, draft_id: uuid.UUID, entry: int | None, expected: int | None) -> Draft:
        """Undo a selection: the target gets back what it held before it."""
        draft = await self.get(draft_id, Need.WRITE)
        ensure_version(draft, expected, "draft")
        if not draft.history:
            raise DraftStateConflict("Nothing was selected from this draft yet")
        index = len(draft.history) - 1 if entry is None else entry
        if index >= len(draft.history):
            raise ValidationException.for_field(
                "entry", f"must be between 0 and {len(draft.history) - 1}"
            )
        chosen = draft.history[index]
        if chosen.get("restored_at"):
            raise DraftStateConflict(f"History entry {index} was restored already")
        await DraftTargets(self.session, self.principal).restore(draft, chosen["previous"])
        history = [dict(item) for item in draft.history]
        history[index]["restored_at"] = utcnow().isoformat()
        draft.history = history
        active = [item for item in history if not item.get("restored_at")]
        if active:
            draft.selected_variant = active[-1]["variant"]
        else:
            draft.status = DraftStatus.PENDING
            draft.selected_variant = None
        return await self._save(draft)

    async def reject(self, draft_id: uuid.UUID, reason: str | None, expected: int | None) -> Draft:
        draft = await self.get(draft_id, Need.WRITE)
        ensure_version(draft, expected, "draft")
        return await self._reject(draft, reason)

    async def _reject(self, draft: Draft, reason: str | None) -> Draft:
        if draft.status == DraftStatus.SELECTED:
            raise DraftStateConflict(
                "A selected draft is in use: restore it first (POST /drafts/{id}/restore)",
                data={"draft_id": str(draft.id)},
            )
        if draft.status == DraftStatus.REJECTED:
            raise DraftStateConflict(
                "The draft is rejected already", data={"draft_id": str(draft.id)}
            )
        draft.status = DraftStatus.REJECTED
        if reason:
            draft.warnings = [*draft.warnings, {"code": "REJECTED", "message": reason}]
        return await self._save(draft)

    async def add_feedback(self, draft_id: uuid.UUID, data: FeedbackCreate) -> DraftFeedback:
        draft = await self.get(draft_id, Need.WRITE)
        if data.variant >= len(draft.variants):
            raise ValidationException.for_field(
                "variant", f"must be between 0 and {len(draft.variants) - 1}"
            )
        row = DraftFeedback(
            id=uuid7(),
            draft_id=draft.id,
            variant=data.variant,
            rating=data.rating,
            comment=data.comment,
            created_by=self.principal.user_id,
            updated_by=self.principal.user_id,
        )
        self.session.add(row)
        await self.session.flush()
        self._changed(draft)
        return row

    async def bulk(self, action: BulkAction, draft_ids: Sequence[uuid.UUID]) -> list[Draft]:
        """All or nothing: any draft missing, not the caller's to decide or in the wrong state
        fails the whole request (the unit of work rolls back what was done before it)."""
        found = {draft.id: draft for draft in await self.drafts.many(draft_ids)}
        drafts = []
        for index, draft_id in enumerate(draft_ids):
            draft = found.get(draft_id)
            if draft is None:
                raise DraftNotFound(f"No draft {draft_id} (draft_ids[{index}])")
            try:
                await self.projects.grant(draft.project_id, Need.WRITE)
            except ProjectNotFound:
                raise DraftNotFound(f"No draft {draft_id} (draft_ids[{index}])") from None
            drafts.append(draft)
        if action is BulkAction.DELETE:
            await self.drafts.delete_many([draft.id for draft in drafts])
            for draft in drafts:
                self.projects.changed(draft.project_id, "draft", draft.id, "deleted")
            return []
        for index, draft in enumerate(drafts):
            if action is BulkAction.SELECT_FIRST:
                await self._select(draft, 0, f"draft_ids[{index}]")
            else:
                await self._reject(draft, None)
        return drafts

    async def _save(self, draft: Draft) -> Draft:
        draft.touch(self.principal.user_id)
        await self.session.flush()
        self._changed(draft)
        return draft

    def _changed(self, draft: Draft) -> None:
        self.projects.changed(draft.project_id, "draft", draft.id, "updated", draft.version)
