"""Outbox and webhook queries: the only place in the module that builds SQL.

An outbox row is taken by a conditional update (not dispatched, and nobody's claim alive), so
however many dispatchers race for it, one holds it at a time; marking it dispatched names that
claim, so a dispatcher whose claim ran out cannot dispatch it a second time.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select, update

from creativeflow.db.repository import Repository
from creativeflow.webhooks.models import (
    DeliveryStatus,
    OutboxEvent,
    WebhookDelivery,
    WebhookEndpoint,
)


class OutboxRepository(Repository[OutboxEvent]):
    model = OutboxEvent

    async def undispatched(
        self, *, created_before: datetime, now: datetime, limit: int
    ) -> list[uuid.UUID]:
        """Rows nobody dispatched (nor holds), oldest first."""
        stmt = (
            select(OutboxEvent.id)
            .where(
                OutboxEvent.dispatched_at.is_(None),
                OutboxEvent.created_at < created_before,
                or_(OutboxEvent.claimed_until.is_(None), OutboxEvent.claimed_until < now),
            )
            .order_by(OutboxEvent.created_at, OutboxEvent.id)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def claim(
        self, ids: Sequence[uuid.UUID], token: uuid.UUID, now: datetime, until: datetime
    ) -> Sequence[OutboxEvent]:
        """Take the rows of `ids` that are free; the rows taken, oldest first."""
        if not ids:
            return []
        await self.session.execute(
            update(OutboxEvent)
            .where(
                OutboxEvent.id.in_(list(ids)),
                OutboxEvent.dispatched_at.is_(None),
                or_(OutboxEvent.claimed_until.is_(None), OutboxEvent.claimed_until < now),
            )
            .values(
                claim_token=token,
                claimed_until=until,
                dispatch_attempts=OutboxEvent.dispatch_attempts + 1,
                updated_at=now,
            )
        )
        stmt = (
            select(OutboxEvent)
            .where(OutboxEvent.claim_token == token, OutboxEvent.dispatched_at.is_(None))
            .order_by(OutboxEvent.created_at, OutboxEvent.id)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def mark_dispatched(
        self, row_id: uuid.UUID, token: uuid.UUID, now: datetime, *, error: str | None = None
    ) -> bool:
        stmt = (
            update(OutboxEvent)
            .where(
                OutboxEvent.id == row_id,
                OutboxEvent.claim_token == token,
                OutboxEvent.dispatched_at.is_(None),
            )
            .values(
                dispatched_at=now,
                claim_token=None,
                claimed_until=None,
                last_error=error,
                updated_at=now,
            )
        )
        return (await self.session.execute(stmt)).rowcount == 1  # type: ignore[attr-defined]

    async def release(self, row_id: uuid.UUID, token: uuid.UUID, now: datetime, error: str) -> None:
        """Give a row back after a failed dispatch: the next sweep tries again."""
        await self.session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == row_id, OutboxEvent.claim_token == token)
            .values(claim_token=None, claimed_until=None, last_error=error[:2000], updated_at=now)
        )

    async def release_claims(self, tokens: Iterable[uuid.UUID], now: datetime) -> None:
        await self.session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.claim_token.in_(list(tokens)), OutboxEvent.dispatched_at.is_(None))
            .values(claim_token=None, claimed_until=None, updated_at=now)
        )

    async def prune(self, dispatched_before: datetime, limit: int) -> int:
        ids = list(
            (
                await self.session.execute(
                    select(OutboxEvent.id)
                    .where(OutboxEvent.dispatched_at < dispatched_before)
                    .limit(limit)
                )
            ).scalars()
        )
        if ids:
            await self.session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(ids)))
        return len(ids)


class EndpointRepository(Repository[WebhookEndpoint]):
    model = WebhookEndpoint

    async def batch_after(self, after: uuid.UUID | None, limit: int) -> Sequence[WebhookEndpoint]:
        """Endpoints in id order after `after` (re-encrypting every secret, in batches)."""
        stmt = select(WebhookEndpoint).order_by(WebhookEndpoint.id).limit(limit)
        if after is not None:
            stmt = stmt.where(WebhookEndpoint.id > after)
        return (await self.session.execute(stmt)).scalars().all()

    async def owned(self, owner_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
        stmt = select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.owner_id == owner_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_page(
        self, owner_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[Sequence[WebhookEndpoint], int]:
        stmt = (
            select(WebhookEndpoint)
            .where(WebhookEndpoint.owner_id == owner_id)
            .order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id.desc())
        )
        return await self.page(stmt, limit=limit, offset=offset)

    async def count_owned(self, owner_id: uuid.UUID) -> int:
        stmt = select(func.count()).where(WebhookEndpoint.owner_id == owner_id)
        return int((await self.session.execute(stmt)).scalar_one())

    async def active(self, *, owner_id: uuid.UUID | None = None) -> Sequence[WebhookEndpoint]:
        """Active endpoints (of one owner, when given): the candidates for an event."""
        stmt = select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True))
        if owner_id is not None:
            stmt = stmt.where(WebhookEndpoint.owner_id == owner_id)
        return (await self.session.execute(stmt.order_by(WebhookEndpoint.id))).scalars().all()


class DeliveryRepository(Repository[WebhookDelivery]):
    model = WebhookDelivery

    async def of_endpoint(
        self, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> WebhookDelivery | None:
        stmt = select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_page(
        self,
        endpoint_id: uuid.UUID,
        *,
        statuses: Sequence[DeliveryStatus],
        limit: int,
        offset: int,
    ) -> tuple[Sequence[WebhookDelivery], int]:
        stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        if statuses:
            stmt = stmt.where(WebhookDelivery.status.in_(list(statuses)))
        stmt = stmt.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        return await self.page(stmt, limit=limit, offset=offset)

    async def with_endpoint(
        self, delivery_id: uuid.UUID
    ) -> tuple[WebhookDelivery, WebhookEndpoint] | None:
        stmt = (
            select(WebhookDelivery, WebhookEndpoint)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.id == delivery_id)
        )
        row = (await self.session.execute(stmt)).first()
        return None if row is None else (row[0], row[1])

    async def record_attempt(
        self, delivery_id: uuid.UUID, values: dict[str, Any], now: datetime
    ) -> bool:
        """Write an attempt's outcome onto a delivery still pending."""
        stmt = (
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == DeliveryStatus.PENDING,
            )
            .values(attempts=WebhookDelivery.attempts + 1, updated_at=now, **values)
        )
        return (await self.session.execute(stmt)).rowcount == 1  # type: ignore[attr-defined]

    async def give_up(self, delivery_id: uuid.UUID, message: str, now: datetime) -> bool:
        return await self._give_up(WebhookDelivery.id == delivery_id, message, now)

    async def give_up_for_job(self, job_id: uuid.UUID, message: str, now: datetime) -> bool:
        """A delivery whose job ended without recording it (its worker was lost)."""
        return await self._give_up(WebhookDelivery.job_id == job_id, message, now)

    async def _give_up(self, which: ColumnElement[bool], message: str, now: datetime) -> bool:
        stmt = (
            update(WebhookDelivery)
            .where(which, WebhookDelivery.status == DeliveryStatus.PENDING)
            .values(
                status=DeliveryStatus.FAILED,
                last_error=message[:500],
                next_attempt_at=None,
                updated_at=now,
            )
        )
        return (await self.session.execute(stmt)).rowcount == 1  # type: ignore[attr-defined]

    async def prune(self, finished_before: datetime, limit: int) -> int:
        ids = list(
            (
                await self.session.execute(
                    select(WebhookDelivery.id)
                    .where(
                        WebhookDelivery.status != DeliveryStatus.PENDING,
                        WebhookDelivery.updated_at < finished_before,
                    )
                    .limit(limit)
                )
            ).scalars()
        )
        if ids:
            # Redeliveries of a pruned delivery keep their rows (`redelivery_of` goes NULL).
            await self.session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
        return len(ids)
