"""/api/v1/webhooks through the HTTP API: registering, reading, changing, deleting, secrets,
pings and deliveries listed per endpoint; another user's endpoint is 404."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.encryption import DecryptionError
from creativeflow.platform import Platform
from creativeflow.webhooks.models import WebhookEndpoint
from creativeflow.webhooks.service import SECRET_PURPOSE
from tests.factories import TestUser as SignedInUser
from tests.factories import UserFactory

URL = "http://127.0.0.1:8765/hook"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # The endpoints here point at this machine (nothing is sent: no runner runs).
    return {"webhook_allow_private_targets": True, "webhook_max_endpoints_per_user": 3}


async def create(user: SignedInUser, **fields: Any) -> dict[str, Any]:
    payload = {"url": URL, "event_types": ["jobs.finished"], **fields}
    response = await user.post("/api/v1/webhooks", json=payload)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def field_errors(response: Any) -> list[str]:
    return [error["field"] for error in response.json()["errors"]]


async def test_a_webhook_is_registered_and_its_secret_shown_only_once(
    users: UserFactory,
) -> None:
    user = await users.create()
    created = await create(user, description="CI notifications")
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["url"] == URL and created["event_types"] == ["jobs.finished"]
    assert created["active"] is True and created["owner_id"] == user.id
    assert created["description"] == "CI notifications"

    fetched = await user.get(f"/api/v1/webhooks/{created['id']}")
    listed = await user.get("/api/v1/webhooks")
    assert fetched.status_code == listed.status_code == 200
    assert "secret" not in fetched.json()
    assert "secret" not in listed.json()["items"][0]
    assert created["secret"] not in fetched.text + listed.text


async def test_the_secret_is_stored_encrypted_and_bound_to_its_row(
    users: UserFactory, session: AsyncSession, platform: Platform
) -> None:
    user = await users.create()
    first, second = await create(user), await create(user)
    rows = {
        str(row.id): row
        for row in (await session.execute(select(WebhookEndpoint))).scalars()
        if str(row.id) in (first["id"], second["id"])
    }
    stored = rows[first["id"]].secret_ciphertext
    assert first["secret"] not in stored and stored.startswith("v1.")
    raw = await session.scalar(
        text("SELECT secret_ciphertext FROM webhook_endpoints WHERE url = :url LIMIT 1"),
        {"url": URL},
    )
    assert raw is not None and "whsec_" not in raw
    cipher = platform.field_cipher
    assert (
        cipher.decrypt(stored, purpose=SECRET_PURPOSE, row_id=rows[first["id"]].id)
        == first["secret"]
    )
    # Copied onto another row, the ciphertext opens nothing.
    with pytest.raises(DecryptionError):
        cipher.decrypt(stored, purpose=SECRET_PURPOSE, row_id=rows[second["id"]].id)


async def test_rotating_the_secret_returns_a_new_one_once(users: UserFactory) -> None:
    user = await users.create()
    created = await create(user)
    response = await user.post(f"/api/v1/webhooks/{created['id']}/rotate-secret")
    assert response.status_code == 200, response.text
    rotated = response.json()["secret"]
    assert rotated.startswith("whsec_") and rotated != created["secret"]
    assert "secret" not in (await user.get(f"/api/v1/webhooks/{created['id']}")).json()


async def test_webhooks_are_listed_newest_first_with_pagination(users: UserFactory) -> None:
    user = await users.create()
    ids = [(await create(user, description=str(n)))["id"] for n in range(3)]
    page = (await user.get("/api/v1/webhooks", params={"limit": 2})).json()
    assert page["total"] == 3 and page["limit"] == 2 and page["offset"] == 0
    assert page["has_more"] is True
    assert [item["id"] for item in page["items"]] == ids[::-1][:2]
    rest = (await user.get("/api/v1/webhooks", params={"limit": 2, "offset": 2})).json()
    assert [item["id"] for item in rest["items"]] == [ids[0]] and rest["has_more"] is False
    # The limit per user (3 here) is a clear 409.
    response = await user.post("/api/v1/webhooks", json={"url": URL, "event_types": ["*"]})
    assert response.status_code == 409
    assert response.json()["code"] == "WEBHOOK_LIMIT_REACHED"


async def test_a_webhook_is_updated_field_by_field_and_deleted(users: UserFactory) -> None:
    user = await users.create()
    created = await create(user, description="first")
    response = await user.patch(
        f"/api/v1/webhooks/{created['id']}",
        json={"event_types": ["*"], "active": False, "url": "https://127.0.0.1:9443/new"},
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["event_types"] == ["*"] and changed["active"] is False
    assert changed["url"] == "https://127.0.0.1:9443/new"
    assert changed["description"] == "first"  # not sent, not changed
    cleared = await user.patch(f"/api/v1/webhooks/{created['id']}", json={"description": None})
    assert cleared.json()["description"] is None

    assert (await user.delete(f"/api/v1/webhooks/{created['id']}")).status_code == 204
    gone = await user.get(f"/api/v1/webhooks/{created['id']}")
    assert gone.status_code == 404 and gone.json()["code"] == "WEBHOOK_NOT_FOUND"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"url": "ftp://127.0.0.1/x", "event_types": ["*"]}, "url"),
        ({"url": "file:///etc/passwd", "event_types": ["*"]}, "url"),
        ({"url": "javascript:alert(1)", "event_types": ["*"]}, "url"),
        ({"url": "http://user:pw@127.0.0.1/x", "event_types": ["*"]}, "url"),
        ({"url": "not a url", "event_types": ["*"]}, "url"),
        ({"url": URL, "event_types": ["jobs.exploded"]}, "event_types"),
        ({"url": URL, "event_types": ["jobs.queued"]}, "event_types"),  # a signal, not durable
        ({"url": URL, "event_types": []}, "event_types"),
        ({"url": URL, "event_types": ["  "]}, "event_types"),
        ({"url": URL}, "event_types"),
        ({"url": URL, "event_types": ["*"], "secret": "mine"}, "secret"),
    ],
)
async def test_bad_registrations_are_422_naming_the_field(
    users: UserFactory, payload: dict[str, Any], field: str
) -> None:
    user = await users.create()
    response = await user.post("/api/v1/webhooks", json=payload)
    assert response.status_code == 422, response.text
    assert field in field_errors(response)
    assert (await user.get("/api/v1/webhooks")).json()["total"] == 0  # nothing half-written


async def test_the_event_types_listed_are_the_ones_accepted(users: UserFactory) -> None:
    user = await users.create()
    response = await user.get("/api/v1/webhooks/event-types")
    assert response.status_code == 200
    names = [entry["name"] for entry in response.json()]
    assert "jobs.finished" in names and "identity.user_registered" in names
    assert "jobs.queued" not in names and "webhooks.ping" not in names
    assert all(entry["description"] and entry["version"] >= 1 for entry in response.json())
    created = await create(user, event_types=names)
    assert created["event_types"] == names
    assert (await create(user, event_types=["jobs.finished", "*"]))["event_types"] == ["*"]


async def test_another_users_webhook_and_its_deliveries_are_404(users: UserFactory) -> None:
    owner, stranger = await users.create(), await users.create()
    webhook = await create(owner)
    ping = await owner.post(f"/api/v1/webhooks/{webhook['id']}/ping")
    assert ping.status_code == 202
    delivery_id = ping.json()["id"]
    base = f"/api/v1/webhooks/{webhook['id']}"
    attempts = [
        await stranger.get(base),
        await stranger.patch(base, json={"active": False}),
        await stranger.delete(base),
        await stranger.post(f"{base}/ping"),
        await stranger.post(f"{base}/rotate-secret"),
        await stranger.get(f"{base}/deliveries"),
        await stranger.get(f"{base}/deliveries/{delivery_id}"),
        await stranger.post(f"{base}/deliveries/{delivery_id}/redeliver"),
    ]
    assert [r.status_code for r in attempts] == [404] * len(attempts)
    assert {r.json()["code"] for r in attempts} == {"WEBHOOK_NOT_FOUND"}
    assert (await stranger.get("/api/v1/webhooks")).json()["total"] == 0
    # Untouched by all that.
    mine = await owner.get(base)
    assert mine.json()["active"] is True
    assert (await owner.get(f"{base}/deliveries")).json()["total"] == 1
    # A delivery of one of my webhooks is not found under another of mine.
    other = await create(owner)
    wrong = await owner.get(f"/api/v1/webhooks/{other['id']}/deliveries/{delivery_id}")
    assert wrong.status_code == 404 and wrong.json()["code"] == "WEBHOOK_DELIVERY_NOT_FOUND"


async def test_a_ping_is_a_pending_delivery_listed_per_webhook(users: UserFactory) -> None:
    user = await users.create()
    webhook = await create(user)
    response = await user.post(f"/api/v1/webhooks/{webhook['id']}/ping")
    assert response.status_code == 202, response.text
    ping = response.json()
    assert ping["webhook_id"] == webhook["id"] and ping["event_type"] == "webhooks.ping"
    assert ping["status"] == "pending" and ping["attempts"] == 0 and ping["manual"] is True
    assert ping["job_id"] and ping["next_attempt_at"]
    listed = await user.get(f"/api/v1/webhooks/{webhook['id']}/deliveries")
    assert listed.json()["total"] == 1 and listed.json()["items"][0]["id"] == ping["id"]
    pending = await user.get(
        f"/api/v1/webhooks/{webhook['id']}/deliveries", params={"status": "pending"}
    )
    delivered = await user.get(
        f"/api/v1/webhooks/{webhook['id']}/deliveries", params={"status": "delivered"}
    )
    assert pending.json()["total"] == 1 and delivered.json()["total"] == 0
    # Still being attempted: not redeliverable yet.
    again = await user.post(f"/api/v1/webhooks/{webhook['id']}/deliveries/{ping['id']}/redeliver")
    assert again.status_code == 409 and again.json()["code"] == "WEBHOOK_DELIVERY_PENDING"
    unknown = await user.get(f"/api/v1/webhooks/{webhook['id']}/deliveries/{uuid.uuid4()}")
    assert unknown.status_code == 404


async def test_routes_need_a_signed_in_user(client: Any) -> None:
    for method, path in [
        ("GET", "/api/v1/webhooks"),
        ("POST", "/api/v1/webhooks"),
        ("GET", "/api/v1/webhooks/event-types"),
        ("GET", f"/api/v1/webhooks/{uuid.uuid4()}"),
    ]:
        response = await client.request(method, path)
        assert response.status_code == 401, (method, path)
