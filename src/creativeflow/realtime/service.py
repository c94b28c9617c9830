"""Who may open which socket: the credential a socket presents, and who may watch a subject.

Each check runs in its own short session, closed before the socket starts streaming: a socket
may stay open for hours and must hold no database connection meanwhile.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.access import subject_types
from creativeflow.identity.principal import Principal
from creativeflow.identity.service import API_KEY_PREFIX, AuthService
from creativeflow.jobs.repository import JobFilters
from creativeflow.jobs.service import JobService
from creativeflow.realtime.models import subject_channel, user_channel
from creativeflow.realtime.repository import SubjectRepository
from creativeflow.shared.core.exceptions import NotFoundException

if TYPE_CHECKING:
    from creativeflow.platform import Platform


class RealtimeAccess:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    async def authenticate(self, credential: str) -> Principal:
        """The principal of an access token (our own or an external RS256 one) or an API key,
        checked exactly as the HTTP API checks them; `AuthenticationException` otherwise."""
        opened: list[AsyncSession] = []

        def open_session() -> AsyncSession:
            session = self.platform.read_sessions()
            opened.append(session)
            return session

        service = AuthService(open_session, self.platform.auth)
        try:
            if credential.startswith(API_KEY_PREFIX):
                principal = await service.authenticate_api_key(credential)
            else:
                principal = await service.authenticate_token(credential)
            for session in opened:
                if session.dirty:  # an API key's coarse "last used" time
                    gate = self.platform.write_gate or contextlib.nullcontext()
                    async with gate:
                        await session.commit()
        finally:
            for session in opened:
                await session.close()
        return principal

    @staticmethod
    def user_channel(principal: Principal) -> str:
        return user_channel(principal.user_id)

    async def subject_channel(self, principal: Principal, subject_id: uuid.UUID) -> str:
        """The channel of a subject the principal may read: under a registered subject type
        (the module that owns it decides), or, for a subject whose type no module registers
        (yet), one the principal has jobs of. Anything else is `NotFoundException`, whether
        or not it exists. An instance administrator may watch any subject."""
        if principal.is_admin:
            return subject_channel(subject_id)
        async with self.platform.read_sessions() as session:
            if await SubjectRepository(session).readable(principal, subject_id):
                return subject_channel(subject_id)
            jobs = JobService(
                session,
                principal,
                default_max_attempts=self.platform.settings.job_default_max_attempts,
            )
            # Visible jobs are the caller's own or those of subjects they may read; the jobs
            # of one subject all share its type.
            found, _ = await jobs.list_page(
                JobFilters(subject_id=subject_id),
                sort="created_at",
                descending=True,
                limit=1,
                offset=0,
            )
        if found and found[0].subject_type not in subject_types():
            return subject_channel(subject_id)
        raise NotFoundException("Subject not found", code="SUBJECT_NOT_FOUND")
