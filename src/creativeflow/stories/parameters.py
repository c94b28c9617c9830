"""What every story router's routes take: who may read or write, a project's id in the path,
and the spec's `skip` beside `offset`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Path, Query

from creativeflow.http.auth import require_permission
from creativeflow.identity.permissions import Permission
from creativeflow.identity.principal import Principal

Reader = Annotated[Principal, Depends(require_permission(Permission.STORIES_READ))]
Writer = Annotated[Principal, Depends(require_permission(Permission.STORIES_WRITE))]
ProjectId = Annotated[uuid.UUID, Path(description="The project's id")]
Skip = Annotated[int | None, Query(ge=0, description="The spec's name for `offset`")]
