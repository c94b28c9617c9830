"""`stories.consistency_check`: a consistency check too large for the request, in a job whose
result is the report.

The job runs as the member who asked, with their rights as they are when it runs (removed from
the project in the meantime, it fails with PROJECT_NOT_FOUND), and with the threshold fixed
when it was submitted. The project is read when the job runs, not when it was asked.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from creativeflow.assets.errors import StorageUnavailableError
from creativeflow.identity.repository import UserRepository
from creativeflow.identity.service import principal_for
from creativeflow.jobs.context import JobContext
from creativeflow.jobs.errors import JobFailed
from creativeflow.jobs.kinds import Retries, job_kind
from creativeflow.shared.core.exceptions import BaseAPIException
from creativeflow.stories.consistency.schemas import ConsistencyCheckRequest
from creativeflow.stories.consistency.service import (
    CONSISTENCY_KIND,
    ConsistencyService,
    run_check,
)

if TYPE_CHECKING:
    from creativeflow.identity.principal import Principal
    from creativeflow.platform import Platform


async def _member(platform: Platform, owner_id: uuid.UUID | None) -> Principal:
    async with platform.read_sessions() as session:
        user = await UserRepository(session).get_with_roles(owner_id) if owner_id else None
        if user is None or not user.is_active:
            raise JobFailed("OWNER_GONE", "The member who asked for the check is no longer active")
        return principal_for(user)


@job_kind(
    CONSISTENCY_KIND,
    ConsistencyCheckRequest,
    description="Check a story project's (or chapter's) characters for drift from their "
    "primary designs, and its panels' text for inconsistencies",
    time_limit_seconds=1800,
    retries=Retries(max_attempts=2, backoff_seconds=10),
)
async def consistency_check(context: JobContext, data: ConsistencyCheckRequest) -> dict[str, Any]:
    platform = context.platform
    member = await _member(platform, context.owner_id)
    try:
        async with platform.read_sessions() as session:
            plan = await ConsistencyService(session, member, platform.settings).plan(data)
        await context.progress(0.02, "project read")
        report = await run_check(plan, platform, context.progress)
    except StorageUnavailableError as exc:
        raise JobFailed(exc.code, exc.detail, retryable=True) from exc
    except BaseAPIException as exc:  # the project is gone, or no longer readable
        raise JobFailed(exc.code, exc.detail) from exc
    return report.model_dump(mode="json")
