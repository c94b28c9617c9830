"""Idea reads as deployed: pooled read connections (no test transaction around them), and JSON
written straight from rows, byte for byte what the response models would write."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from creativeflow.app import create_app
from creativeflow.db import migrate
from creativeflow.db.reads import ConnectionReads
from creativeflow.http.pagination import Page
from creativeflow.ideas.queries import IdeaFilter, PageRequest, document, fetch_one, fetch_page
from creativeflow.ideas.schemas import IdeaRead, render_idea, render_idea_page
from creativeflow.identity.bootstrap import sync_builtin_roles
from creativeflow.platform import Platform, build_platform
from creativeflow.settings import Settings
from tests.databases import empty_database
from tests.factories import UserFactory
from tests.ideas.support import create_idea, ideas_url, list_ideas

VARIED_IDEAS: list[dict[str, Any]] = [
    {"title": "Plain"},
    {
        "title": 'Ünïcode — «quotes» "and" \\ slashes',
        "notes": "line one\nline two\ttabbed",
        "tags": ["Été", "straße", "AI"],
        "stage": "draft",
        "priority": "high",
        "due_date": "2026-01-05T10:00:00Z",  # a whole second: still six digits of fraction
    },
    {"title": "Due with a fraction", "due_date": "2026-03-01T08:15:30.5+09:00"},
]


# -- documents: the database writes the API's spelling, rendered without models ---------------


async def test_documents_are_what_the_write_routes_return(
    users: UserFactory, platform: Platform
) -> None:
    """Ids, times (six digits of fraction, `Z`), ranks and tags, spelt by the database, equal
    what the models write, through the driver statements and through SQLAlchemy alike."""
    user = await users.create()
    created = [await create_idea(user, **fields) for fields in VARIED_IDEAS]
    owner = uuid.UUID(user.id)
    newest_first = PageRequest(sort="created_at", descending=True, limit=10)

    unfiltered = await fetch_page(platform.reads, owner, IdeaFilter(), newest_first)
    searched = await fetch_page(platform.reads, owner, IdeaFilter(search="a"), newest_first)
    assert [document(row) for row in unfiltered] == created[::-1]
    assert [document(row) for row in searched] == [
        idea for idea in created[::-1] if "a" in idea["title"].lower()
    ]
    for idea in created:
        row = await fetch_one(platform.reads, owner, uuid.UUID(idea["id"]))
        assert row is not None
        assert document(row) == idea


async def test_rendered_documents_equal_the_response_models(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    for fields in VARIED_IDEAS:
        await create_idea(user, **fields)
    request = PageRequest(sort="created_at", descending=True, limit=10)
    rows = await fetch_page(platform.reads, uuid.UUID(user.id), IdeaFilter(), request)
    documents = [document(row) for row in rows]
    assert len(documents) == len(VARIED_IDEAS)

    for idea in documents:
        assert render_idea(idea) == IdeaRead.model_validate(idea).model_dump_json().encode()

    page = Page[IdeaRead](
        items=[IdeaRead.model_validate(idea) for idea in documents],
        total=3,
        limit=10,
        offset=0,
        has_more=False,
        next_cursor="abc",
    )
    rendered = render_idea_page(
        documents, total=3, limit=10, offset=0, has_more=False, next_cursor="abc"
    )
    assert rendered == page.model_dump_json().encode()


async def test_one_rendered_idea_is_what_the_api_returns(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    created = await create_idea(user, **VARIED_IDEAS[1])
    row = await fetch_one(platform.reads, uuid.UUID(user.id), uuid.UUID(created["id"]))
    assert row is not None
    response = await user.get(ideas_url(user, created["id"]))
    assert response.content == render_idea(document(row))
    assert response.headers["content-type"] == "application/json"
    assert response.json() == created


# -- the deployed read path: pooled connections, committed data -------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def deployed_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with empty_database(request.param, tmp_path) as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture
async def deployed(deployed_url: str, tmp_path: Path) -> AsyncIterator[UserFactory]:
    """Users of an app on its own platform, as `creativeflow serve` builds it."""
    settings = Settings.model_validate(
        {
            "environment": "test",
            "database_url": deployed_url,
            "data_dir": tmp_path / "data",
            "secret_key": "test-secret-key-with-enough-entropy-0123456789",
            "log_level": "WARNING",
        }
    )
    platform = build_platform(settings)
    assert not isinstance(platform.reads, ConnectionReads)
    await sync_builtin_roles(platform)
    app = create_app(settings, platform=platform)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.20", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield UserFactory(client, platform)
    await platform.close()


async def test_reads_see_every_committed_write(deployed: UserFactory) -> None:
    user = await deployed.create()
    first = await create_idea(user, title="first video", tags=["video"])
    assert (await list_ideas(user))["total"] == 1
    second = await create_idea(user, title="second video", tags=["blog"], stage="draft")

    listed = await list_ideas(user)
    assert [item["id"] for item in listed["items"]] == [second["id"], first["id"]]
    assert listed["total"] == 2
    assert (await user.get(ideas_url(user, first["id"]))).json() == first

    # Filtered totals are counted on the read path (a page of one leaves more to count) and
    # follow later writes.
    assert (await list_ideas(user, search="VIDEO", limit=1))["total"] == 2
    assert (await list_ideas(user, tags="video,blog", limit=1))["total"] == 2
    await user.patch(ideas_url(user, first["id"]), json={"tags": ["blog"], "stage": "draft"})
    assert (await list_ideas(user, tags="video", limit=1))["total"] == 0
    assert (await list_ideas(user, tags="blog", stage="draft", limit=1))["total"] == 2

    await user.delete(ideas_url(user, second["id"]))
    assert (await user.get(ideas_url(user, second["id"]))).status_code == 404
    assert (await list_ideas(user))["total"] == 1


async def test_cursor_pages_walk_the_whole_list(deployed: UserFactory) -> None:
    user = await deployed.create()
    created = [(await create_idea(user, title=f"idea {n:02d}"))["id"] for n in range(7)]
    seen: list[str] = []
    page = await list_ideas(user, limit=3)
    while True:
        seen.extend(item["id"] for item in page["items"])
        if not page["next_cursor"]:
            break
        page = await list_ideas(user, limit=3, cursor=page["next_cursor"])
    assert seen == list(reversed(created))
    offset_page = await list_ideas(user, limit=3, offset=5)
    assert [item["id"] for item in offset_page["items"]] == list(reversed(created))[5:]


async def test_other_users_ideas_stay_invisible(deployed: UserFactory) -> None:
    owner, other = await deployed.create(), await deployed.create()
    idea = await create_idea(owner, title="private")
    assert (await other.get(ideas_url(other, idea["id"]))).status_code == 404
    assert (await other.get(ideas_url(owner, idea["id"]))).status_code == 403
    assert (await other.get(ideas_url(owner))).status_code == 403
    assert (await list_ideas(other))["total"] == 0


async def test_concurrent_writes_all_land(deployed: UserFactory) -> None:
    """On SQLite, write requests queue on the platform's write gate; on PostgreSQL they run
    side by side. Either way every create lands and is counted, and a refused write (422)
    leaves the gate open for the next one."""
    user = await deployed.create()
    refused = await user.post(ideas_url(user), json={"title": ""})
    assert refused.status_code == 422
    responses = await asyncio.wait_for(
        asyncio.gather(
            *(user.post(ideas_url(user), json={"title": f"idea {n}"}) for n in range(16))
        ),
        timeout=30,
    )
    assert [response.status_code for response in responses] == [201] * 16
    assert (await list_ideas(user))["total"] == 16
    gate = deployed.platform.write_gate
    assert (gate is not None) == deployed.platform.settings.resolved_database_url().startswith(
        "sqlite"
    )
    assert gate is None or not gate.locked()
