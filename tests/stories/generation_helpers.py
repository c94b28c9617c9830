"""A small project ready to generate from, and reading what its jobs made."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from creativeflow.platform import Platform
from creativeflow.realtime.hub import Subscription
from creativeflow.realtime.models import RealtimeMessage
from creativeflow.webhooks.models import OutboxEvent
from tests.factories import TestUser as SignedInUser
from tests.stories.helpers import chapter, panel, post, project, scene


async def studio(user: SignedInUser, *, panels: int = 2) -> dict[str, Any]:
    """A project with a style guide, a character and a location, one chapter, one scene and
    `panels` panels with both in them."""
    made = await project(user, "Harbour Lights")
    pid = made["id"]
    guide = await user.put(
        f"/api/v1/projects/{pid}/style-guide",
        json={
            "art_style": "ink and watercolour",
            "aspect_ratio": "2:3",
            "negative_prompt": "blurry, extra fingers",
            "palette": ["#1b3a4b", "#f2c14e"],
        },
    )
    assert guide.status_code == 200, guide.text
    mara = await post(
        user,
        f"/api/v1/projects/{pid}/characters",
        {"name": "Mara", "role": "protagonist", "appearance": ["red scarf", "short black hair"]},
    )
    tower = await post(
        user,
        f"/api/v1/projects/{pid}/locations",
        {"name": "Lighthouse", "setting": "exterior", "description": "a white tower on rocks"},
    )
    first = await chapter(user, pid, "The Storm", summary="Mara keeps the light burning.")
    opening = await scene(user, first["id"], "Stairs", summary="Mara climbs to the lamp.")
    made_panels = [
        await panel(
            user,
            opening["id"],
            f"Mara on the stairs, step {number}",
            shot="wide",
            character_ids=[mara["id"]],
            location_id=tower["id"],
        )
        for number in range(1, panels + 1)
    ]
    return {
        "project": made,
        "character": mara,
        "location": tower,
        "chapter": first,
        "scene": opening,
        "panels": made_panels,
    }


async def finished_job(user: SignedInUser, platform: Platform, job_id: str) -> dict[str, Any]:
    await platform.jobs.drain()
    job: dict[str, Any] = (await user.get(f"/api/v1/jobs/{job_id}")).json()
    assert job["status"] == "succeeded", job
    return job


async def generated_draft(
    user: SignedInUser, platform: Platform, url: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """POST a generation, run its job, and read the draft it wrote."""
    response = await user.post(url, json=body)
    assert response.status_code == 202, response.text
    job = await finished_job(user, platform, response.json()["id"])
    draft = await user.get(f"/api/v1/drafts/{job['result']['draft_id']}")
    assert draft.status_code == 200, draft.text
    result: dict[str, Any] = draft.json()
    return result


async def dispatch_events(platform: Platform) -> int:
    """Hand the outbox's undispatched events to this process's subscribers (realtime): in the
    test's transaction nothing commits, so nothing rings the dispatcher."""
    async with platform.read_sessions() as session:
        undispatched = select(OutboxEvent.id).where(OutboxEvent.dispatched_at.is_(None))
        ids = list((await session.execute(undispatched)).scalars())
    return await platform.outbox.dispatch(ids) if ids else 0


async def messages_of(socket: Subscription, kind: str) -> list[RealtimeMessage]:
    """The messages of type `kind` the socket holds now (waiting briefly for the first)."""
    found = []
    try:
        while True:
            message = await asyncio.wait_for(socket.get(), timeout=0.5)
            if message.type == kind:
                found.append(message)
    except TimeoutError:
        return found
