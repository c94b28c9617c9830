"""Deciding on drafts: reject, bulk actions (all or nothing), filters, pending."""

from __future__ import annotations

import uuid

from creativeflow.platform import Platform
from tests.factories import TestUser as SignedInUser
from tests.factories import UserFactory
from tests.stories.generation_helpers import generated_draft, studio


async def three_drafts(user: SignedInUser, platform: Platform) -> tuple[dict, list[dict]]:
    made = await studio(user, panels=3)
    drafts = [
        await generated_draft(user, platform, f"/api/v1/panels/{panel['id']}/generate-image")
        for panel in made["panels"]
    ]
    return made, drafts


async def test_reject_and_what_a_selected_draft_refuses(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    _, (first, second, _) = await three_drafts(user, platform)
    rejected = await user.post(f"/api/v1/drafts/{first['id']}/reject", json={"reason": "too dark"})
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["warnings"] == [{"code": "REJECTED", "message": "too dark"}]
    assert (await user.post(f"/api/v1/drafts/{first['id']}/reject")).status_code == 409
    # A rejected draft can still be chosen later.
    assert (await user.post(f"/api/v1/drafts/{first['id']}/select")).status_code == 200
    await user.post(f"/api/v1/drafts/{second['id']}/select")
    refused = await user.post(f"/api/v1/drafts/{second['id']}/reject")
    assert refused.status_code == 409 and refused.json()["code"] == "DRAFT_STATE_CONFLICT"


async def test_bulk_actions_are_all_or_nothing(users: UserFactory, platform: Platform) -> None:
    user, other = await users.create(), await users.create()
    made, drafts = await three_drafts(user, platform)
    _, (foreign, *_) = await three_drafts(other, platform)
    ids = [draft["id"] for draft in drafts]
    await user.post(f"/api/v1/drafts/{ids[1]}/select")

    # Rejecting a selected one fails the whole batch: the first stays pending.
    refused = await user.post(
        "/api/v1/drafts/bulk-action", json={"action": "reject", "draft_ids": ids}
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["data"]["draft_id"] == ids[1] if "data" in refused.json() else True
    assert (await user.get(f"/api/v1/drafts/{ids[0]}")).json()["status"] == "pending"

    # Someone else's draft in the batch: 404, and nothing deleted.
    mixed = [ids[0], foreign["id"]]
    missing = await user.post(
        "/api/v1/drafts/bulk-action", json={"action": "delete", "draft_ids": mixed}
    )
    assert missing.status_code == 404 and "draft_ids[1]" in missing.json()["detail"]
    assert (await user.get(f"/api/v1/drafts/{ids[0]}")).status_code == 200

    chosen = await user.post(
        "/api/v1/drafts/bulk-action",
        json={"action": "select_first", "draft_ids": [ids[0], ids[2]]},
    )
    assert chosen.status_code == 200, chosen.text
    assert [draft["status"] for draft in chosen.json()["drafts"]] == ["selected", "selected"]
    panels = [(await user.get(f"/api/v1/panels/{p['id']}")).json() for p in made["panels"]]
    assert [p["selected_image_id"] for p in panels] == [
        draft["variants"][0]["image_id"] for draft in drafts
    ]

    deleted = await user.post(
        "/api/v1/drafts/bulk-action", json={"action": "delete", "draft_ids": ids}
    )
    assert deleted.status_code == 200 and deleted.json()["count"] == 3
    assert (await user.get("/api/v1/drafts")).json()["total"] == 0
    # The panels keep the images they were given.
    assert (await user.get(f"/api/v1/panels/{made['panels'][0]['id']}")).json()[
        "selected_image_id"
    ] == drafts[0]["variants"][0]["image_id"]

    for body, field in (
        ({"action": "select_first", "draft_ids": []}, "draft_ids"),
        ({"action": "archive", "draft_ids": ids}, "action"),
        ({"action": "reject", "draft_ids": [ids[0], ids[0]]}, None),
    ):
        bad = await user.post("/api/v1/drafts/bulk-action", json=body)
        assert bad.status_code == 422, bad.text
        if field:
            assert bad.json()["errors"][0]["field"] == field


async def test_filters_and_pending(users: UserFactory, platform: Platform) -> None:
    user = await users.create()
    made, drafts = await three_drafts(user, platform)
    cover = await generated_draft(
        user, platform, f"/api/v1/chapters/{made['chapter']['id']}/generate-cover"
    )
    await user.post(f"/api/v1/drafts/{drafts[0]['id']}/select")
    await user.post(f"/api/v1/drafts/{drafts[1]['id']}/reject")

    async def ids(url: str, **params: object) -> list[str]:
        response = await user.get(url, params=params)
        assert response.status_code == 200, response.text
        return [draft["id"] for draft in response.json()["items"]]

    newest_first = [cover["id"], drafts[2]["id"], drafts[1]["id"], drafts[0]["id"]]
    assert await ids("/api/v1/drafts") == newest_first
    assert await ids("/api/v1/drafts", target_type="cover") == [cover["id"]]
    assert await ids("/api/v1/drafts", target_id=made["panels"][1]["id"]) == [drafts[1]["id"]]
    assert await ids("/api/v1/drafts", status=["selected", "rejected"]) == [
        drafts[1]["id"],
        drafts[0]["id"],
    ]
    assert await ids("/api/v1/drafts/pending") == [cover["id"], drafts[2]["id"]]
    assert await ids("/api/v1/drafts/pending", kind="image", limit=1, skip=1) == [drafts[2]["id"]]
    assert (await user.get("/api/v1/drafts", params={"status": "maybe"})).status_code == 422
    unknown = await user.get(f"/api/v1/drafts/{uuid.uuid4()}")
    assert unknown.status_code == 404 and unknown.json()["code"] == "DRAFT_NOT_FOUND"
