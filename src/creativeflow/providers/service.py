"""Provider work as the jobs and routes use it: running a text task (a malformed answer is
asked for again once), generating images into storage, and the usage ledger.

No provider call ever happens inside a database transaction: each call's usage row is written
in its own short transaction after the call returns.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.db.ids import uuid7
from creativeflow.identity.principal import Principal
from creativeflow.providers.base import TextProvider, TextRequest, TextResult, Usage
from creativeflow.providers.errors import MalformedResponse, ProviderError
from creativeflow.providers.models import UsageRecord
from creativeflow.providers.repository import UsageRepository
from creativeflow.providers.tasks import TaskSpec, parse_output
from creativeflow.shared.core.exceptions import PermissionDeniedException

if TYPE_CHECKING:
    from creativeflow.platform import Platform


@dataclass(frozen=True, slots=True)
class CallRecord:
    user_id: uuid.UUID | None
    job_id: uuid.UUID | None
    modality: str
    operation: str
    provider: str
    model: str
    succeeded: bool
    usage: Usage = field(default_factory=Usage)
    duration_ms: float = 0.0
    error_code: str | None = None


async def record_call(platform: Platform, call: CallRecord) -> None:
    """One ledger row, in its own transaction: a call costs whether or not its job succeeds."""
    async with platform.write_transaction() as session:
        session.add(
            UsageRecord(
                id=uuid7(),
                user_id=call.user_id,
                job_id=call.job_id,
                modality=call.modality,
                operation=call.operation,
                provider=call.provider,
                model=call.model,
                succeeded=call.succeeded,
                error_code=call.error_code,
                input_tokens=call.usage.input_tokens,
                output_tokens=call.usage.output_tokens,
                images=call.usage.images,
                duration_ms=call.duration_ms,
                created_by=call.user_id,
                updated_by=call.user_id,
            )
        )


async def run_text_task(
    platform: Platform,
    provider: TextProvider,
    spec: TaskSpec,
    request: TextRequest,
    *,
    user_id: uuid.UUID | None,
    job_id: uuid.UUID | None,
) -> tuple[TextResult, dict[str, Any]]:
    """The provider's result and its output validated against the task's output model. An
    answer that is not valid JSON of the right shape is asked for once more, then fails."""
    last_error: MalformedResponse | None = None
    for _ in range(2):
        try:
            result = await provider.complete(request)
        except ProviderError as exc:
            await record_call(
                platform,
                CallRecord(
                    user_id,
                    job_id,
                    "text",
                    spec.type.value,
                    exc.provider,
                    getattr(provider, "model", "unknown"),
                    False,
                    error_code=exc.code,
                ),
            )
            raise
        try:
            output = parse_output(spec.type, result.output, result.provider)
        except MalformedResponse as exc:
            await record_call(
                platform,
                CallRecord(
                    user_id,
                    job_id,
                    "text",
                    spec.type.value,
                    result.provider,
                    result.model,
                    False,
                    result.usage,
                    result.duration_ms,
                    exc.code,
                ),
            )
            last_error = exc
            continue
        await record_call(
            platform,
            CallRecord(
                user_id,
                job_id,
                "text",
                spec.type.value,
                result.provider,
                result.model,
                True,
                result.usage,
                result.duration_ms,
            ),
        )
        return result, output.model_dump(mode="json")
    assert last_error is not None
    raise last_error


def usage_document(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "images": usage.images,
    }


class UsageService:
    def __init__(self, session: AsyncSession) -> None:
        self.usage = UsageRepository(session)

    async def totals(
        self,
        actor: Principal,
        *,
        everyone: bool,
        user_id: uuid.UUID | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[Any], int]:
        """The caller's totals; an administrator may ask for everyone's or one user's."""
        if (everyone or user_id is not None) and not actor.is_admin:
            raise PermissionDeniedException(
                "Only administrators see other users' usage", code="PERMISSION_DENIED"
            )
        scope = None if everyone else (user_id or actor.user_id)
        return await self.usage.totals(
            user_id=scope, since=since, until=until, limit=limit, offset=offset
        )
