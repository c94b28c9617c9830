"""A project's style guide (defaults, PUT/GET, validation, versions, access), its stats (the
numbers, in a fixed number of statements whatever its size) and its duplication."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from creativeflow.db.ids import uuid7
from creativeflow.db.types import utcnow
from creativeflow.jobs.models import Job, JobStatus
from creativeflow.providers.models import UsageRecord
from creativeflow.stories.content.models import Panel
from tests.assets.images import UPLOAD, png
from tests.factories import TestUser as SignedInUser
from tests.factories import UserFactory
from tests.stories.helpers import chapter, panel, post, project, scene

BASE = "/api/v1/projects"
GUIDE = {
    "art_style": "ink and watercolour",
    "palette": ["#1A2B3C", "#ffffff"],
    "line_weight": "bold",
    "lettering": "hand-lettered caps",
    "aspect_ratio": "2:3",
    "negative_prompt": "blurry, extra fingers",
}


async def share(owner: SignedInUser, project_id: str, member: SignedInUser, role: str) -> None:
    response = await owner.post(
        f"{BASE}/{project_id}/members", json={"user": member.username, "role": role}
    )
    assert response.status_code == 201, response.text


async def image(user: SignedInUser, project_id: str | None = None) -> str:
    """An uploaded image (of the project, when given: covers must be the project's)."""
    form = {"subject_type": "project", "subject_id": project_id} if project_id else {}
    response = await user.post(UPLOAD, files={"file": ("p.png", png(), "image/png")}, data=form)
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


async def select_image(session: AsyncSession, panel_id: str, image_id: str) -> None:
    """Set in the table: the statement counts of the test stay the test's own."""
    await session.execute(
        update(Panel)
        .where(Panel.id == uuid.UUID(panel_id))
        .values(selected_image_id=uuid.UUID(image_id))
    )
    await session.commit()


# -- style guide ----------------------------------------------------------------------------


async def test_style_guide_defaults_then_put_and_get(users: UserFactory) -> None:
    owner, editor = await users.create(), await users.create()
    book = await project(owner)
    await share(owner, book["id"], editor, "editor")
    url = f"{BASE}/{book['id']}/style-guide"
    defaults = await owner.get(url)
    assert defaults.status_code == 200 and defaults.headers["ETag"] == '"0"'
    body = defaults.json()
    assert body["version"] == 0 and body["palette"] == [] and body["reference_image_ids"] == []
    assert body["art_style"] is None and body["line_weight"] is None

    picture = await image(owner)
    created = await owner.put(url, json={**GUIDE, "reference_image_ids": [picture]})
    assert created.status_code == 200, created.text
    saved = created.json()
    assert saved["version"] == 1 and saved["palette"] == ["#1a2b3c", "#ffffff"]
    assert saved["reference_image_ids"] == [picture] and saved["aspect_ratio"] == "2:3"
    assert (await owner.get(url)).json() == saved

    # An editor keeps the owner's reference (already in the guide) and changes the rest.
    changed = await editor.put(
        url,
        json={"line_weight": "thin", "reference_image_ids": [picture]},
        headers={"If-Match": '"1"'},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2 and changed.json()["art_style"] is None
    assert changed.headers["ETag"] == '"2"'


async def test_style_guide_validation_names_the_field(users: UserFactory) -> None:
    owner, other = await users.create(), await users.create()
    book = await project(owner)
    url = f"{BASE}/{book['id']}/style-guide"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"palette": ["red"]}, "palette"),
        ({"palette": ["#12345"]}, "palette"),
        ({"line_weight": "heavy"}, "line_weight"),
        ({"aspect_ratio": "2x3"}, "aspect_ratio"),
        ({"aspect_ratio": "0:3"}, "aspect_ratio"),
        ({"reference_image_ids": [str(uuid.uuid4())]}, "reference_image_ids"),
        ({"reference_image_ids": [await image(other)]}, "reference_image_ids"),
    ]
    for payload, field in cases:
        response = await owner.put(url, json=payload)
        assert response.status_code == 422, (payload, response.text)
        assert field in response.json()["errors"][0]["field"], response.json()
    assert (await owner.get(url)).json()["version"] == 0


async def test_style_guide_versions_and_access(users: UserFactory) -> None:
    owner, viewer, stranger = [await users.create() for _ in range(3)]
    book = await project(owner)
    await share(owner, book["id"], viewer, "viewer")
    url = f"{BASE}/{book['id']}/style-guide"
    assert (await owner.put(url, json={**GUIDE, "version": 1})).status_code == 409
    assert (await owner.put(url, json={**GUIDE, "version": 0})).status_code == 200
    stale = await owner.put(url, json=GUIDE, headers={"If-Match": '"0"'})
    assert stale.status_code == 409 and stale.json()["code"] == "VERSION_CONFLICT"
    assert (await owner.put(url, json={"version": 1})).json()["version"] == 2

    assert (await viewer.get(url)).status_code == 200
    refused = await viewer.put(url, json=GUIDE)
    assert refused.status_code == 403 and refused.json()["code"] == "PROJECT_ROLE_INSUFFICIENT"
    for response in (await stranger.get(url), await stranger.put(url, json=GUIDE)):
        assert response.status_code == 404 and response.json()["code"] == "PROJECT_NOT_FOUND"


# -- stats ----------------------------------------------------------------------------------


async def build(
    user: SignedInUser, chapters: int, scenes: int, panels: int, *, cast: bool = False
) -> dict[str, Any]:
    """chapters x scenes x panels; with `cast`, every panel has a character and a location."""
    book = await project(user)
    casting: dict[str, Any] = {}
    if cast:
        who = await post(user, f"{BASE}/{book['id']}/characters", {"name": "Mara"})
        where = await post(user, f"{BASE}/{book['id']}/locations", {"name": "Tower"})
        casting = {"character_ids": [who["id"]], "location_id": where["id"]}
    for c in range(chapters):
        ch = await chapter(user, book["id"], f"Chapter {c + 1}")
        for s in range(scenes):
            sc = await scene(user, ch["id"], f"Scene {s + 1}")
            for p in range(panels):
                await panel(
                    user,
                    sc["id"],
                    f"Panel {p + 1}",
                    dialogue=[{"kind": "speech", "text": "a b"}],
                    **casting,
                )
    return book


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


def job(project_id: str, status: JobStatus) -> Job:
    now = utcnow()
    return Job(
        id=uuid7(),
        kind="story.test",
        subject_type="project",
        subject_id=uuid.UUID(project_id),
        status=status,
        input={},
        input_hash="0" * 64,
        max_attempts=1,
        queued_at=now,
        run_after=now,
    )


def usage(job_id: uuid.UUID | None, **counts: Any) -> UsageRecord:
    return UsageRecord(
        id=uuid7(),
        job_id=job_id,
        modality="image",
        operation="generate",
        provider="fake",
        model="fake-1",
        succeeded=counts.pop("succeeded", True),
        **counts,
    )


async def test_stats_of_a_built_project(users: UserFactory, session: AsyncSession) -> None:
    owner, viewer, stranger = [await users.create() for _ in range(3)]
    book = await project(owner)
    await share(owner, book["id"], viewer, "viewer")
    one = await chapter(owner, book["id"], "One")
    two = await chapter(owner, book["id"], "Two")
    await chapter(owner, book["id"], "Empty")
    sc1 = await scene(owner, one["id"], "Stairs")
    sc2 = await scene(owner, one["id"], "Lamp")
    sc3 = await scene(owner, two["id"], "Shore")
    picture = await image(owner)
    p1 = await panel(
        owner, sc1["id"], "Mara climbs", dialogue=[{"kind": "speech", "text": "Up  we go."}]
    )
    await panel(
        owner,
        sc1["id"],
        "Dark",
        dialogue=[{"kind": "caption", "text": "Midnight."}, {"kind": "sfx", "text": "CLANG"}],
    )
    await panel(owner, sc2["id"], "The lamp")
    await panel(owner, sc3["id"], "Waves", dialogue=[{"kind": "thought", "text": "Too late now"}])
    await select_image(session, p1["id"], picture)

    succeeded, failed = job(book["id"], JobStatus.SUCCEEDED), job(book["id"], JobStatus.FAILED)
    queued = job(book["id"], JobStatus.QUEUED)
    session.add_all([succeeded, failed, queued])
    await session.flush()
    session.add_all(
        [
            usage(succeeded.id, images=2, duration_ms=1500.0),
            usage(succeeded.id, input_tokens=120, output_tokens=30, duration_ms=250.0),
            usage(failed.id, succeeded=False, duration_ms=10.0),
            usage(None, images=9),  # no job: not the project's
        ]
    )
    await session.commit()

    response = await viewer.get(f"{BASE}/{book['id']}/stats")
    assert response.status_code == 200, response.text
    stats = response.json()
    assert (stats["chapters"], stats["scenes"], stats["panels"]) == (3, 3, 4)
    assert stats["dialogue_words"] == 3 + 2 + 3
    assert (stats["panels_with_image"], stats["panels_without_image"]) == (1, 3)
    assert stats["generations"] == {
        "total": 3,
        "by_status": {"succeeded": 1, "failed": 1, "queued": 1},
    }
    assert stats["usage"] == {
        "calls": 3,
        "succeeded": 2,
        "input_tokens": 120,
        "output_tokens": 30,
        "images": 2,
        "duration_ms": 1760.0,
    }
    rows = [
        (
            c["title"],
            c["position"],
            c["scenes"],
            c["panels"],
            c["dialogue_words"],
            c["panels_with_image"],
        )
        for c in stats["by_chapter"]
    ]
    assert rows == [("One", 1, 2, 3, 5, 1), ("Two", 2, 1, 1, 3, 0), ("Empty", 3, 0, 0, 0, 0)]
    assert (await stranger.get(f"{BASE}/{book['id']}/stats")).status_code == 404


async def test_stats_count_characters_and_locations(users: UserFactory) -> None:
    """The project's are all it defines; a chapter's, the distinct ones its panels use."""
    owner, viewer = await users.create(), await users.create()
    book = await project(owner)
    await share(owner, book["id"], viewer, "viewer")
    cast = f"{BASE}/{book['id']}"
    mara, jonah, _unused = [
        await post(owner, f"{cast}/characters", {"name": name})
        for name in ("Mara", "Jonah", "Nobody")
    ]
    tower, shore, _nowhere = [
        await post(owner, f"{cast}/locations", {"name": name})
        for name in ("Tower", "Shore", "Nowhere")
    ]
    one = await chapter(owner, book["id"], "One")
    two = await chapter(owner, book["id"], "Two")
    stairs = await scene(owner, one["id"], "Stairs")
    lamp = await scene(owner, one["id"], "Lamp")
    beach = await scene(owner, two["id"], "Beach")
    both = [mara["id"], jonah["id"]]
    await panel(owner, stairs["id"], "Both climb", character_ids=both, location_id=tower["id"])
    await panel(owner, stairs["id"], "Mara alone", character_ids=[mara["id"]])
    await panel(owner, lamp["id"], "The lamp", location_id=tower["id"])
    await panel(owner, lamp["id"], "Nobody here")
    await panel(owner, beach["id"], "Mara again", character_ids=[mara["id"]])
    await panel(owner, beach["id"], "The shore", location_id=shore["id"])
    await panel(owner, beach["id"], "Still the shore", location_id=shore["id"])

    response = await viewer.get(f"{BASE}/{book['id']}/stats")
    assert response.status_code == 200, response.text
    stats = response.json()
    assert (stats["characters"], stats["locations"]) == (3, 3)
    rows = [(c["title"], c["panels"], c["characters"], c["locations"]) for c in stats["by_chapter"]]
    # Mara: in two panels of One (counted once there) and in Two (counted there too); the
    # unused character and location count in the project's totals only.
    assert rows == [("One", 4, 2, 1), ("Two", 3, 1, 1)]


async def test_stats_take_the_same_number_of_statements_whatever_the_size(
    users: UserFactory, engine: AsyncEngine
) -> None:
    user = await users.create()
    small = await build(user, 1, 1, 1, cast=True)
    large = await build(user, 5, 3, 4, cast=True)
    counts = []
    for book in (small, large):
        with statements(engine) as seen:
            response = await user.get(f"{BASE}/{book['id']}/stats")
        assert response.status_code == 200
        counts.append(len(seen))
    assert response.json()["panels"] == 60 and response.json()["dialogue_words"] == 120
    chapters = response.json()["by_chapter"]
    assert [(c["characters"], c["locations"]) for c in chapters] == [(1, 1)] * 5
    assert counts[0] == counts[1] and counts[0] <= 12, counts


# -- duplicate ------------------------------------------------------------------------------


async def tree(user: SignedInUser, project_id: str) -> list[Any]:
    """The project's content, ids aside: chapters, their scenes, their panels, in order."""
    shape = []
    for ch in (await user.get(f"{BASE}/{project_id}/chapters")).json()["items"]:
        scenes = []
        for sc in (await user.get(f"/api/v1/chapters/{ch['id']}/scenes")).json()["items"]:
            panels = (await user.get(f"/api/v1/scenes/{sc['id']}/panels")).json()["items"]
            scenes.append(
                (
                    sc["position"],
                    sc["title"],
                    [
                        (p["position"], p["description"], p["dialogue"], p["selected_image_id"])
                        for p in panels
                    ],
                )
            )
        shape.append((ch["position"], ch["title"], ch["cover_image_id"], scenes))
    return shape


async def ids_of(user: SignedInUser, project_id: str) -> set[str]:
    found = set()
    for ch in (await user.get(f"{BASE}/{project_id}/chapters")).json()["items"]:
        found.add(ch["id"])
        for sc in (await user.get(f"/api/v1/chapters/{ch['id']}/scenes")).json()["items"]:
            found.add(sc["id"])
            panels = (await user.get(f"/api/v1/scenes/{sc['id']}/panels")).json()["items"]
            found.update(p["id"] for p in panels)
    return found


async def test_duplicate_copies_the_whole_project(
    users: UserFactory, session: AsyncSession, engine: AsyncEngine
) -> None:
    owner, viewer, stranger = [await users.create() for _ in range(3)]
    book = await build(owner, 2, 2, 2)
    await share(owner, book["id"], viewer, "viewer")
    picture = await image(owner, book["id"])
    first = (await owner.get(f"{BASE}/{book['id']}/chapters")).json()["items"][0]
    covered = await owner.patch(f"/api/v1/chapters/{first['id']}", json={"cover_image_id": picture})
    assert covered.status_code == 200, covered.text
    panel_id = (await session.execute(select(Panel.id).limit(1))).scalar_one()
    await select_image(session, str(panel_id), picture)
    guide = await owner.put(f"{BASE}/{book['id']}/style-guide", json=GUIDE)
    assert guide.status_code == 200
    before = await tree(owner, book["id"])

    with statements(engine) as seen:
        copied = await owner.post(f"{BASE}/{book['id']}/duplicate")
    assert copied.status_code == 201, copied.text
    copy = copied.json()
    assert copy["id"] != book["id"] and copy["title"] == "Lighthouse (copy)"
    assert copy["owner_id"] == str(owner.id) and copy["role"] == "owner" and copy["version"] == 1
    assert await tree(owner, copy["id"]) == before
    assert await tree(owner, book["id"]) == before  # the original is untouched
    assert not (await ids_of(owner, copy["id"])) & (await ids_of(owner, book["id"]))
    copied_guide = (await owner.get(f"{BASE}/{copy['id']}/style-guide")).json()
    assert copied_guide["palette"] == ["#1a2b3c", "#ffffff"] and copied_guide["version"] == 1
    members = (await owner.get(f"{BASE}/{copy['id']}/members")).json()
    assert [m["role"] for m in members] == ["owner"]
    # One read and one insert a table: the same for a larger project.
    small = await build(owner, 1, 1, 1)
    assert (await owner.put(f"{BASE}/{small['id']}/style-guide", json=GUIDE)).status_code == 200
    with statements(engine) as small_seen:
        assert (await owner.post(f"{BASE}/{small['id']}/duplicate")).status_code == 201
    assert len(small_seen) == len(seen), [*small_seen, "--", *seen]

    # A viewer duplicates into a project of their own, titled as they ask.
    mine = await viewer.post(f"{BASE}/{book['id']}/duplicate", json={"title": "My version"})
    assert mine.status_code == 201, mine.text
    assert mine.json()["owner_id"] == str(viewer.id) and mine.json()["title"] == "My version"
    assert await tree(viewer, mine.json()["id"]) == before
    assert (await owner.get(f"{BASE}/{mine.json()['id']}")).status_code == 404
    assert (await viewer.get(f"{BASE}/{book['id']}")).json()["role"] == "viewer"

    assert (await stranger.post(f"{BASE}/{book['id']}/duplicate")).status_code == 404
    bad = await owner.post(f"{BASE}/{book['id']}/duplicate", json={"title": ""})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].endswith("title")
    total = (await session.execute(select(func.count()).select_from(Panel))).scalar_one()
    assert total == 8 * 3 + 1 * 2


async def test_duplicate_copies_instructions_with_their_new_targets(users: UserFactory) -> None:
    owner = await users.create()
    book = await project(owner)
    ch = await chapter(owner, book["id"], "One")
    sc = await scene(owner, ch["id"], "Stairs")
    pn = await panel(owner, sc["id"], "Mara")
    for url, text in [
        (f"{BASE}/{book['id']}/instructions", "Muted palette"),
        (f"/api/v1/scenes/{sc['id']}/instructions", "Rain throughout"),
        (f"/api/v1/panels/{pn['id']}/instructions", "Close on her hands"),
    ]:
        created = await owner.post(url, json={"text": text})
        assert created.status_code == 201, created.text
    copy = (await owner.post(f"{BASE}/{book['id']}/duplicate")).json()
    copied = (await owner.get(f"{BASE}/{copy['id']}/instructions")).json()["items"]
    assert sorted(item["text"] for item in copied) == [
        "Close on her hands",
        "Muted palette",
        "Rain throughout",
    ]
    new_scene = (await owner.get(f"{BASE}/{copy['id']}/chapters")).json()["items"][0]
    scenes = (await owner.get(f"/api/v1/chapters/{new_scene['id']}/scenes")).json()["items"]
    targets = {item["text"]: item["target_id"] for item in copied}
    assert targets["Rain throughout"] == scenes[0]["id"] != sc["id"]
    assert targets["Close on her hands"] not in (None, pn["id"])


async def test_duplicate_copies_the_cast_and_recasts_the_panels(users: UserFactory) -> None:
    owner = await users.create()
    book = await project(owner)
    ch = await chapter(owner, book["id"], "One")
    sc = await scene(owner, ch["id"], "Stairs")
    mara = (await owner.post(f"{BASE}/{book['id']}/characters", json={"name": "Mara"})).json()
    tower = (await owner.post(f"{BASE}/{book['id']}/locations", json={"name": "Lighthouse"})).json()
    picture = await image(owner, book["id"])
    linked = await owner.post(
        f"/api/v1/characters/{mara['id']}/designs", json={"image_id": picture, "primary": True}
    )
    assert linked.status_code in (200, 201), linked.text
    await panel(owner, sc["id"], "Mara climbs", character_ids=[mara["id"]], location_id=tower["id"])

    copy = (await owner.post(f"{BASE}/{book['id']}/duplicate")).json()
    cast = (await owner.get(f"{BASE}/{copy['id']}/characters")).json()["items"]
    places = (await owner.get(f"{BASE}/{copy['id']}/locations")).json()["items"]
    assert [c["name"] for c in cast] == ["Mara"] and cast[0]["id"] != mara["id"]
    assert [p["name"] for p in places] == ["Lighthouse"] and places[0]["id"] != tower["id"]
    new_chapter = (await owner.get(f"{BASE}/{copy['id']}/chapters")).json()["items"][0]
    new_scene = (await owner.get(f"/api/v1/chapters/{new_chapter['id']}/scenes")).json()["items"][0]
    copied_panel = (await owner.get(f"/api/v1/scenes/{new_scene['id']}/panels")).json()["items"][0]
    assert copied_panel["character_ids"] == [cast[0]["id"]]
    assert copied_panel["location_id"] == places[0]["id"]
    shown = (await owner.get(f"/api/v1/characters/{cast[0]['id']}")).json()
    assert [d["image_id"] for d in shown["designs"]] == [picture]  # the image is shared
