"""/api/v1/{user_id}/ideas."""

from __future__ import annotations

from creativeflow.http.routing import api_router

router = api_router(tags=["ideas"])
