"""Webhook rules: endpoints a user registers, the deliveries events fan out to, and what one
delivery attempt reads and records.

Endpoints belong to one user; another user's endpoint (and its deliveries) is 404. An endpoint
hears an event when it subscribed to the event's type and its owner may read the event: the
owner of the event, or a member who may read the event's subject (`creativeflow.access`).
Administrators' platform-wide view does not extend to webhooks: an instance administrator's
endpoint hears what they own or may read as a member, not every user's events.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.access import subject_types
from creativeflow.db.ids import uuid7
from creativeflow.db.types import utcnow
from creativeflow.encryption import DecryptionError, FieldCipher
from creativeflow.identity.principal import Principal
from creativeflow.jobs.service import JobService
from creativeflow.settings import Settings
from creativeflow.shared.core.exceptions import ValidationException
from creativeflow.shared.messaging.events import BaseEvent, EventAudience, durable_event_types
from creativeflow.webhooks.delivery import Attempt, AttemptOutcome
from creativeflow.webhooks.errors import (
    DeliveryNotFound,
    DeliveryPending,
    WebhookLimitReached,
    WebhookNotFound,
)
from creativeflow.webhooks.events import WebhookPingEvent
from creativeflow.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from creativeflow.webhooks.repository import DeliveryRepository, EndpointRepository
from creativeflow.webhooks.schedule import DELIVER_KIND, DELIVERY_RETRIES, DeliverInput
from creativeflow.webhooks.schemas import ALL_EVENTS, WebhookCreate, WebhookUpdate
from creativeflow.webhooks.signing import new_secret
from creativeflow.webhooks.targets import TargetRefused, parse_target_url, resolve_target

SECRET_PURPOSE = "webhook_endpoints.secret"


def subscribable_event_types() -> dict[str, type[BaseEvent]]:
    """The event types an endpoint may subscribe to: every durable event type."""
    return durable_event_types()


def envelope_body(event: BaseEvent) -> str:
    """The delivery body: the event's envelope as compact JSON (signed byte for byte)."""
    return json.dumps(event.envelope(), separators=(",", ":"), ensure_ascii=False)


async def _submit_delivery_job(
    session: AsyncSession, delivery_id: uuid.UUID, *, default_max_attempts: int
) -> uuid.UUID:
    # The platform's own job (no owner): nobody's job list fills with deliveries, and its
    # end, announced like any job's, reaches no endpoint (no owner, no subject).
    job, _ = await JobService(session, None, default_max_attempts=default_max_attempts).submit(
        DELIVER_KIND,
        DeliverInput(delivery_id=delivery_id),
        idempotency_key=f"{DELIVER_KIND}:{delivery_id}",
    )
    return job.id


async def _add_delivery(
    session: AsyncSession,
    settings: Settings,
    endpoint_id: uuid.UUID,
    *,
    event_id: uuid.UUID,
    event_type: str,
    body: str,
    manual: bool,
    redelivery_of: uuid.UUID | None = None,
    actor: uuid.UUID | None = None,
) -> WebhookDelivery:
    delivery_id = uuid7()
    job_id = await _submit_delivery_job(
        session, delivery_id, default_max_attempts=settings.job_default_max_attempts
    )
    now = utcnow()
    delivery = WebhookDelivery(
        id=delivery_id,
        endpoint_id=endpoint_id,
        event_id=event_id,
        event_type=event_type,
        body=body,
        status=DeliveryStatus.PENDING,
        manual=manual,
        attempts=0,
        next_attempt_at=now,
        job_id=job_id,
        redelivery_of=redelivery_of,
        created_by=actor,
        updated_by=actor,
    )
    return await DeliveryRepository(session).add(delivery)


class WebhookService:
    def __init__(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        cipher: FieldCipher,
        settings: Settings,
    ) -> None:
        self.session = session
        self.principal = principal
        self.cipher = cipher
        self.settings = settings
        self.endpoints = EndpointRepository(session)
        self.deliveries = DeliveryRepository(session)

    # -- endpoints -----------------------------------------------------------------------------

    async def _checked_url(self, raw: str) -> str:
        """The URL, if webhooks may go there: http(s), and (unless allowed) a host resolving
        only to public addresses. Checked before anything is written."""
        try:
            url = parse_target_url(raw)
        except ValueError as exc:
            raise ValidationException.for_field("url", str(exc)) from None
        try:
            await resolve_target(
                url,
                allow_private=self.settings.webhook_allow_private_targets,
                resolve_seconds=min(self.settings.webhook_timeout_seconds, 5.0),
            )
        except TargetRefused as exc:
            raise ValidationException.for_field("url", exc.message) from None
        return str(url)

    @staticmethod
    def _checked_event_types(names: Sequence[str]) -> list[str]:
        known = subscribable_event_types()
        unknown = [name for name in names if name != ALL_EVENTS and name not in known]
        if unknown:
            raise ValidationException.for_field(
                "event_types",
                f"unknown event type(s) {', '.join(map(repr, unknown))}; known: "
                f"{', '.join(known)} (or '*' for all)",
            )
        return [ALL_EVENTS] if ALL_EVENTS in names else list(names)

    def _encrypt(self, secret: str, endpoint_id: uuid.UUID) -> str:
        return self.cipher.encrypt(secret, purpose=SECRET_PURPOSE, row_id=endpoint_id)

    async def create(self, data: WebhookCreate) -> tuple[WebhookEndpoint, str]:
        """The endpoint, and its signing secret (never shown again)."""
        event_types = self._checked_event_types(data.event_types)
        url = await self._checked_url(data.url)
        owner_id = self.principal.user_id
        if (
            await self.endpoints.count_owned(owner_id)
            >= self.settings.webhook_max_endpoints_per_user
        ):
            raise WebhookLimitReached(
                f"You have {self.settings.webhook_max_endpoints_per_user} webhooks, the most "
                "allowed; delete one first"
            )
        endpoint_id = uuid7()
        secret = new_secret()
        endpoint = WebhookEndpoint(
            id=endpoint_id,
            owner_id=owner_id,
            url=url,
            description=data.description,
            event_types=event_types,
            active=data.active,
            secret_ciphertext=self._encrypt(secret, endpoint_id),
            created_by=owner_id,
            updated_by=owner_id,
        )
        return await self.endpoints.add(endpoint), secret

    async def get(self, endpoint_id: uuid.UUID) -> WebhookEndpoint:
        endpoint = await self.endpoints.owned(self.principal.user_id, endpoint_id)
        if endpoint is None:
            raise WebhookNotFound("Webhook not found")
        return endpoint

    async def list_page(self, *, limit: int, offset: int) -> tuple[Sequence[WebhookEndpoint], int]:
        return await self.endpoints.list_page(self.principal.user_id, limit=limit, offset=offset)

    async def update(self, endpoint_id: uuid.UUID, data: WebhookUpdate) -> WebhookEndpoint:
        endpoint = await self.get(endpoint_id)
        changes = data.model_dump(exclude_unset=True)
        if changes.get("event_types") is not None:
            endpoint.event_types = self._checked_event_types(changes["event_types"])
        if changes.get("url") is not None:
            endpoint.url = await self._checked_url(changes["url"])
        if "description" in changes:
            endpoint.description = changes["description"]
        if changes.get("active") is not None:
            endpoint.active = changes["active"]
        endpoint.touch(self.principal.user_id)
        await self.endpoints.flush()
        return endpoint

    async def delete(self, endpoint_id: uuid.UUID) -> None:
        """The endpoint and its deliveries go; jobs still queued for them find nothing to do."""
        await self.endpoints.delete(await self.get(endpoint_id))

    async def rotate_secret(self, endpoint_id: uuid.UUID) -> tuple[WebhookEndpoint, str]:
        """A new signing secret, in force for every attempt from now on."""
        endpoint = await self.get(endpoint_id)
        secret = new_secret()
        endpoint.secret_ciphertext = self._encrypt(secret, endpoint.id)
        endpoint.touch(self.principal.user_id)
        await self.endpoints.flush()
        return endpoint, secret

    # -- deliveries ----------------------------------------------------------------------------

    async def ping(self, endpoint_id: uuid.UUID) -> WebhookDelivery:
        """A test delivery (`webhooks.ping`), sent once even to an inactive endpoint."""
        endpoint = await self.get(endpoint_id)
        event = WebhookPingEvent(webhook_id=endpoint.id, url=endpoint.url)
        return await _add_delivery(
            self.session,
            self.settings,
            endpoint.id,
            event_id=event.event_id,
            event_type=event.event_type,
            body=envelope_body(event),
            manual=True,
            actor=self.principal.user_id,
        )

    async def deliveries_page(
        self,
        endpoint_id: uuid.UUID,
        *,
        statuses: Sequence[DeliveryStatus],
        limit: int,
        offset: int,
    ) -> tuple[Sequence[WebhookDelivery], int]:
        endpoint = await self.get(endpoint_id)
        return await self.deliveries.list_page(
            endpoint.id, statuses=statuses, limit=limit, offset=offset
        )

    async def delivery(self, endpoint_id: uuid.UUID, delivery_id: uuid.UUID) -> WebhookDelivery:
        endpoint = await self.get(endpoint_id)
        delivery = await self.deliveries.of_endpoint(endpoint.id, delivery_id)
        if delivery is None:
            raise DeliveryNotFound("Delivery not found")
        return delivery

    async def redeliver(self, endpoint_id: uuid.UUID, delivery_id: uuid.UUID) -> WebhookDelivery:
        """The same event (same body and event id) sent again, as a new delivery with one
        attempt; the original is kept as it is."""
        original = await self.delivery(endpoint_id, delivery_id)
        if original.status is DeliveryStatus.PENDING:
            raise DeliveryPending(
                "This delivery is still being attempted; redeliver it once it has ended",
                data={"next_attempt_at": original.next_attempt_at.isoformat()}
                if original.next_attempt_at
                else None,
            )
        return await _add_delivery(
            self.session,
            self.settings,
            original.endpoint_id,
            event_id=original.event_id,
            event_type=original.event_type,
            body=original.body,
            manual=True,
            redelivery_of=original.id,
            actor=self.principal.user_id,
        )


class WebhookFanout:
    """Turns one dispatched event into deliveries, in the dispatcher's transaction: one per
    active endpoint that subscribed to its type, whose owner may read it, and that existed
    when the event happened."""

    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.endpoints = EndpointRepository(session)

    async def deliver(self, event: BaseEvent) -> list[WebhookDelivery]:
        audience = event.audience()
        if audience.owner_id is None and audience.subject_type is None:
            return []  # nobody may read it: the platform's own jobs, for one
        has_subject = audience.subject_type is not None and audience.subject_id is not None
        candidates = await self.endpoints.active(
            owner_id=None if has_subject else audience.owner_id
        )
        body: str | None = None
        made: list[WebhookDelivery] = []
        readers: dict[uuid.UUID, bool] = {}
        for endpoint in candidates:
            # Nor to an endpoint registered after the event happened (a sweep dispatching
            # the leftovers of a crash, minutes later).
            if not endpoint.wants(event.event_type) or endpoint.created_at > event.timestamp:
                continue
            if endpoint.owner_id not in readers:
                readers[endpoint.owner_id] = await self._may_read(endpoint.owner_id, audience)
            if not readers[endpoint.owner_id]:
                continue
            body = body or envelope_body(event)
            made.append(
                await _add_delivery(
                    self.session,
                    self.settings,
                    endpoint.id,
                    event_id=event.event_id,
                    event_type=event.event_type,
                    body=body,
                    manual=False,
                )
            )
        return made

    async def _may_read(self, user_id: uuid.UUID, audience: EventAudience) -> bool:
        if audience.owner_id == user_id:
            return True
        if audience.subject_type is None or audience.subject_id is None:
            return False
        kind = subject_types().get(audience.subject_type)
        if kind is None:
            return False
        # As a member: no platform roles (see the module's docstring).
        member = Principal(user_id=user_id, username="", roles=frozenset(), permissions=frozenset())
        ids = kind.readable(member).subquery()
        allowed = await self.session.scalar(select(exists().where(ids.c[0] == audience.subject_id)))
        return bool(allowed)


@dataclass(frozen=True, slots=True)
class PreparedAttempt:
    attempt: Attempt | None
    manual: bool
    # Why nothing is sent, when `attempt` is None.
    skipped: str | None = None


class DeliveryAttempts:
    """What the `webhooks.deliver` job reads before an attempt and writes after it."""

    def __init__(self, session: AsyncSession, cipher: FieldCipher) -> None:
        self.session = session
        self.cipher = cipher
        self.deliveries = DeliveryRepository(session)

    async def prepare(self, delivery_id: uuid.UUID) -> PreparedAttempt:
        found = await self.deliveries.with_endpoint(delivery_id)
        if found is None:
            return PreparedAttempt(None, manual=True, skipped="the delivery no longer exists")
        delivery, endpoint = found
        if delivery.status is not DeliveryStatus.PENDING:
            return PreparedAttempt(None, manual=delivery.manual, skipped="already finished")
        if not endpoint.active and not delivery.manual:
            return PreparedAttempt(
                None, manual=False, skipped="the webhook was deactivated; not sent"
            )
        try:
            secret = self.cipher.decrypt(
                endpoint.secret_ciphertext, purpose=SECRET_PURPOSE, row_id=endpoint.id
            )
        except DecryptionError as exc:
            return PreparedAttempt(
                None, manual=delivery.manual, skipped=f"the signing secret cannot be read: {exc}"
            )
        return PreparedAttempt(
            Attempt(
                url=endpoint.url,
                body=delivery.body.encode(),
                secret=secret,
                event_type=delivery.event_type,
                delivery_id=str(delivery.id),
            ),
            manual=delivery.manual,
        )

    async def record(
        self,
        delivery_id: uuid.UUID,
        outcome: AttemptOutcome,
        *,
        final: bool,
        next_attempt_at: datetime | None,
        now: datetime,
    ) -> bool:
        if outcome.delivered:
            status, delivered_at = DeliveryStatus.DELIVERED, now
        else:
            status, delivered_at = (
                (DeliveryStatus.FAILED if final else DeliveryStatus.PENDING),
                None,
            )
        return await self.deliveries.record_attempt(
            delivery_id,
            {
                "status": status,
                "last_status_code": outcome.status_code,
                "last_error": outcome.error,
                "last_duration_ms": outcome.duration_ms,
                "last_attempt_at": now,
                "next_attempt_at": None if outcome.delivered or final else next_attempt_at,
                "delivered_at": delivered_at,
            },
            now,
        )

    async def skip(self, delivery_id: uuid.UUID, reason: str, now: datetime) -> None:
        """End a pending delivery that will not be sent (deactivated webhook, unreadable
        secret), without counting an attempt."""
        await self.deliveries.give_up(delivery_id, reason, now)

    async def give_up_for_job(self, job_id: uuid.UUID, reason: str) -> bool:
        return await self.deliveries.give_up_for_job(job_id, reason, utcnow())


def next_attempt_after(attempt: int, now: datetime) -> datetime:
    """When the jobs engine runs the attempt after a failed `attempt` (the same policy)."""
    return now + timedelta(seconds=DELIVERY_RETRIES.delay(attempt))


async def reencrypt_secrets(
    session: AsyncSession, cipher: FieldCipher, *, after: uuid.UUID | None, limit: int
) -> tuple[uuid.UUID | None, int]:
    """Re-encrypt under the active key the signing secrets of up to `limit` endpoints after
    `after`: (the last id seen, or None when done; values changed)."""
    endpoints = await EndpointRepository(session).batch_after(after, limit)
    changed = 0
    for endpoint in endpoints:
        fresh = cipher.reencrypt(
            endpoint.secret_ciphertext, purpose=SECRET_PURPOSE, row_id=endpoint.id
        )
        if fresh is not None:
            endpoint.secret_ciphertext = fresh
            changed += 1
    await session.flush()
    return (endpoints[-1].id if endpoints else None), changed
