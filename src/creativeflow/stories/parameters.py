"""What every story router's routes take: who may read or write, a project's id in the path,
and the spec's `skip` beside `offset`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Path, Query, Request

from creativeflow.http.auth import require_permission
from creativeflow.http.rate_limits import charge_generation
from creativeflow.identity.permissions import Permission
from creativeflow.identity.principal import Principal

Reader = Annotated[Principal, Depends(require_permission(Permission.STORIES_READ))]
Writer = Annotated[Principal, Depends(require_permission(Permission.STORIES_WRITE))]
ProjectId = Annotated[uuid.UUID, Path(description="The project's id")]
Skip = Annotated[int | None, Query(ge=0, description="The spec's name for `offset`")]


async def _generation_quota(
    request: Request,
    principal: Annotated[Principal, Depends(require_permission(Permission.GENERATION_CREATE))],
) -> Principal:
    # After the permission check, before the body is used: a refused request submits nothing.
    await charge_generation(request, principal.user_id)
    return principal


# A user allowed to generate, within the generation rate limit (RATE_LIMIT_GENERATION);
# the project's editors and owner only (checked by the services).
Generator = Annotated[Principal, Depends(_generation_quota)]
