"""`WS /api/v1/ws` (the caller's own jobs) and `WS /api/v1/ws/{project_id}` (a subject: a
story project, a brand ...). FastAPI leaves WebSockets out of the OpenAPI document; the
protocol is described in `creativeflow.realtime` (and the README)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import APIRouter, WebSocket

from creativeflow.http.auth import authenticating
from creativeflow.identity.principal import Principal
from creativeflow.realtime.connection import RealtimeConnection
from creativeflow.realtime.service import RealtimeAccess
from creativeflow.shared.core.exceptions import NotFoundException

router = APIRouter(tags=["realtime"])


async def _own_channel(access: RealtimeAccess, principal: Principal) -> str:
    return access.user_channel(principal)


@router.websocket("/ws")
@authenticating
async def watch_own_jobs(websocket: WebSocket) -> None:
    """Progress and completion of the caller's own jobs (channel `user:{user_id}`)."""
    await RealtimeConnection(websocket, websocket.app.state.platform, _own_channel).serve()


@router.websocket("/ws/{project_id}")
@authenticating
async def watch_subject(websocket: WebSocket, project_id: str) -> None:
    """Everything published about a subject the caller may read (channel `subject:{id}`):
    its jobs' progress and completion, content updates, drafts ready. A subject the caller
    may not read closes with 4404, exactly like one that does not exist."""

    async def subject_channel(access: RealtimeAccess, principal: Principal) -> str:
        try:
            subject_id = uuid.UUID(project_id)
        except ValueError:
            raise NotFoundException("Subject not found") from None
        return await access.subject_channel(principal, subject_id)

    await RealtimeConnection(websocket, websocket.app.state.platform, subject_channel).serve()


class RedactSocketTokens(logging.Filter):
    """uvicorn logs each WebSocket handshake with its query string: keep a `token=` query
    parameter out of the logs (the first-message `auth` keeps it out of URLs altogether)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and "WebSocket" in str(record.msg):
            record.args = tuple(_redact(arg) for arg in record.args)
        return True


def _redact(value: Any) -> Any:
    if not isinstance(value, str) or "token=" not in value:
        return value
    path, _, query = value.partition("?")
    pairs = ["token=[redacted]" if pair.startswith("token=") else pair for pair in query.split("&")]
    return f"{path}?{'&'.join(pairs)}"


_REDACTION = RedactSocketTokens()


def install_token_redaction() -> None:
    """Idempotent: adding the same filter object twice keeps one."""
    logging.getLogger("uvicorn.error").addFilter(_REDACTION)
