"""/api/v1/webhooks: the caller's webhook endpoints, their deliveries, pings and redeliveries.

Another user's endpoint, and its deliveries, are 404 WEBHOOK_NOT_FOUND. The signing secret is
in the response of the create and rotate-secret calls only.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Path, Query, Request, Response, status

from creativeflow.http.auth import CurrentPrincipal, DbSession
from creativeflow.http.pagination import Limit, Offset, Page
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import api_router
from creativeflow.webhooks.models import DeliveryStatus
from creativeflow.webhooks.schedule import retry_delays
from creativeflow.webhooks.schemas import (
    DeliveryRead,
    EventTypeRead,
    WebhookCreate,
    WebhookRead,
    WebhookUpdate,
    WebhookWithSecret,
)
from creativeflow.webhooks.service import WebhookService, subscribable_event_types

router = api_router(prefix="/webhooks", tags=["webhooks"])

WebhookId = Annotated[uuid.UUID, Path(description="The webhook's id")]
DeliveryId = Annotated[uuid.UUID, Path(description="The delivery's id")]

_SCHEDULE = ", ".join(f"{delay / 60:g} min" for delay in retry_delays())
DELIVERY_DOC = (
    "Each delivery is a POST of the event's envelope (JSON) with `X-CreativeFlow-Event` (the "
    "event type), `X-CreativeFlow-Delivery` (the delivery id, the same on every retry) and "
    "`X-CreativeFlow-Signature: t=<unix time>,v1=<hex>`, HMAC-SHA256 with the webhook's secret "
    "over `<t>.<raw body>`. Any 2xx answer is success; anything else (redirects included: they "
    "are not followed) or no answer is retried after " + _SCHEDULE + ", then the delivery is "
    "`failed`."
)


async def webhook_service(
    request: Request, session: DbSession, principal: CurrentPrincipal
) -> WebhookService:
    platform = request.app.state.platform
    return WebhookService(
        session, principal, cipher=platform.field_cipher, settings=platform.settings
    )


WebhookServiceDep = Annotated[WebhookService, Depends(webhook_service)]


def _located(response: Response, webhook: WebhookRead) -> None:
    response.headers["Location"] = f"/api/v1/webhooks/{webhook.id}"


@router.get(
    "/event-types",
    response_model=list[EventTypeRead],
    summary="List the event types a webhook can subscribe to",
    responses=error_responses(401),
)
async def list_event_types(_principal: CurrentPrincipal) -> list[EventTypeRead]:
    return [
        EventTypeRead(
            name=name,
            version=cls.version,
            description=(cls.__doc__ or name).strip().split("\n\n")[0].replace("\n", " "),
        )
        for name, cls in subscribable_event_types().items()
    ]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookWithSecret,
    summary="Register a webhook endpoint",
    description="The URL must be http(s) and its host must resolve to public addresses only "
    "(unless the platform allows private targets); 422 naming `url` otherwise. The response "
    "holds the signing `secret`, shown only once. " + DELIVERY_DOC,
    responses=error_responses(401, 409, 422),
)
async def create_webhook(
    data: WebhookCreate, service: WebhookServiceDep, response: Response
) -> WebhookWithSecret:
    endpoint, secret = await service.create(data)
    body = WebhookWithSecret.with_secret(endpoint, secret)
    _located(response, body)
    return body


@router.get(
    "",
    response_model=Page[WebhookRead],
    summary="List your webhooks",
    description="Newest first.",
    responses=error_responses(401, 422),
)
async def list_webhooks(
    service: WebhookServiceDep, limit: Limit = 20, offset: Offset = 0
) -> Page[WebhookRead]:
    rows, total = await service.list_page(limit=limit, offset=offset)
    return Page[WebhookRead].of(
        [WebhookRead.of(row) for row in rows], total=total, limit=limit, offset=offset
    )


@router.get(
    "/{webhook_id}",
    response_model=WebhookRead,
    summary="Get a webhook",
    responses=error_responses(401, 404, 422),
)
async def get_webhook(webhook_id: WebhookId, service: WebhookServiceDep) -> WebhookRead:
    return WebhookRead.of(await service.get(webhook_id))


@router.patch(
    "/{webhook_id}",
    response_model=WebhookRead,
    summary="Change a webhook's URL, event types, description or whether it is active",
    description="Only the fields sent change. An inactive webhook receives no events; "
    "deliveries already under way for it end without being sent.",
    responses=error_responses(401, 404, 422),
)
async def update_webhook(
    webhook_id: WebhookId, data: WebhookUpdate, service: WebhookServiceDep
) -> WebhookRead:
    return WebhookRead.of(await service.update(webhook_id, data))


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a webhook and its deliveries",
    responses=error_responses(401, 404, 422),
)
async def delete_webhook(webhook_id: WebhookId, service: WebhookServiceDep) -> Response:
    await service.delete(webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookWithSecret,
    summary="Replace a webhook's signing secret",
    description="Every attempt from now on is signed with the new secret, shown only in this "
    "response.",
    responses=error_responses(401, 404, 422),
)
async def rotate_webhook_secret(
    webhook_id: WebhookId, service: WebhookServiceDep
) -> WebhookWithSecret:
    endpoint, secret = await service.rotate_secret(webhook_id)
    return WebhookWithSecret.with_secret(endpoint, secret)


@router.post(
    "/{webhook_id}/ping",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryRead,
    summary="Send a test delivery (`webhooks.ping`)",
    description="One attempt, at once, also to an inactive webhook; follow it in the "
    "webhook's deliveries.",
    responses=error_responses(401, 404, 422),
)
async def ping_webhook(webhook_id: WebhookId, service: WebhookServiceDep) -> DeliveryRead:
    return DeliveryRead.of(await service.ping(webhook_id))


@router.get(
    "/{webhook_id}/deliveries",
    response_model=Page[DeliveryRead],
    summary="List a webhook's deliveries",
    description="Newest first, with each one's status, attempts, last answer and next "
    "attempt. " + DELIVERY_DOC,
    responses=error_responses(401, 404, 422),
)
async def list_deliveries(
    webhook_id: WebhookId,
    service: WebhookServiceDep,
    status_filter: Annotated[
        list[DeliveryStatus] | None, Query(alias="status", description="Repeat for several")
    ] = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Page[DeliveryRead]:
    rows, total = await service.deliveries_page(
        webhook_id, statuses=status_filter or (), limit=limit, offset=offset
    )
    return Page[DeliveryRead].of(
        [DeliveryRead.of(row) for row in rows], total=total, limit=limit, offset=offset
    )


@router.get(
    "/{webhook_id}/deliveries/{delivery_id}",
    response_model=DeliveryRead,
    summary="Get one delivery",
    responses=error_responses(401, 404, 422),
)
async def get_delivery(
    webhook_id: WebhookId, delivery_id: DeliveryId, service: WebhookServiceDep
) -> DeliveryRead:
    return DeliveryRead.of(await service.delivery(webhook_id, delivery_id))


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryRead,
    summary="Send a delivered or failed delivery again",
    description="A new delivery (its own id, one attempt) of the same event: same body, same "
    "`event_id`. A delivery still being attempted is 409 WEBHOOK_DELIVERY_PENDING.",
    responses=error_responses(401, 404, 409, 422),
)
async def redeliver(
    webhook_id: WebhookId, delivery_id: DeliveryId, service: WebhookServiceDep
) -> DeliveryRead:
    return DeliveryRead.of(await service.redeliver(webhook_id, delivery_id))
