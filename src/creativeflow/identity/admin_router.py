"""/api/v1/users, /api/v1/roles and /api/v1/auth/api-keys."""

from __future__ import annotations

from creativeflow.http.routing import api_router

router = api_router()
