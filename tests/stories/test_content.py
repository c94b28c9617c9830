"""Chapters, scenes and panels through the API: positions stay 1..n through inserts, deletes,
reorders and moves; dialogue; access by project membership; stale versions."""

from __future__ import annotations

import io
import uuid

from PIL import Image

from creativeflow.platform import Platform
from tests.factories import TestUser as SignedInUser
from tests.factories import UserFactory
from tests.stories.helpers import chapter, panel, project, scene, titles


async def test_chapters_keep_contiguous_positions(users: UserFactory) -> None:
    user = await users.create()
    book = await project(user)
    url = f"/api/v1/projects/{book['id']}/chapters"
    one = await chapter(user, book["id"], "One")
    three = await chapter(user, book["id"], "Three")
    two = await chapter(user, book["id"], "Two", position=2)
    assert (one["position"], two["position"]) == (1, 2)
    assert await titles(user, url) == [(1, "One"), (2, "Two"), (3, "Three")]
    prologue = await chapter(user, book["id"], "Prologue", position=1)
    assert await titles(user, url) == [(1, "Prologue"), (2, "One"), (3, "Two"), (4, "Three")]
    too_far = await user.post(url, json={"title": "x", "position": 9})
    assert too_far.status_code == 422 and too_far.json()["errors"][0]["field"] == "position"

    moved = await user.post(f"/api/v1/chapters/{prologue['id']}/reorder", json={"position": 4})
    assert moved.status_code == 200 and moved.json()["position"] == 4
    assert await titles(user, url) == [(1, "One"), (2, "Two"), (3, "Three"), (4, "Prologue")]
    back = await user.post(f"/api/v1/chapters/{three['id']}/reorder", json={"position": 1})
    assert back.json()["position"] == 1
    assert await titles(user, url) == [(1, "Three"), (2, "One"), (3, "Two"), (4, "Prologue")]
    beyond = await user.post(f"/api/v1/chapters/{three['id']}/reorder", json={"position": 5})
    assert beyond.status_code == 422

    assert (await user.delete(f"/api/v1/chapters/{one['id']}")).status_code == 204
    assert await titles(user, url) == [(1, "Three"), (2, "Two"), (3, "Prologue")]


async def test_scenes_move_between_chapters(users: UserFactory) -> None:
    user = await users.create()
    book = await project(user)
    first = await chapter(user, book["id"], "First")
    second = await chapter(user, book["id"], "Second")
    a, b, c = [await scene(user, first["id"], name) for name in "abc"]
    x = await scene(user, second["id"], "x")
    moved = await user.post(
        f"/api/v1/scenes/{b['id']}/move", json={"parent_id": second["id"], "position": 1}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["chapter_id"] == second["id"] and moved.json()["position"] == 1
    assert await titles(user, f"/api/v1/chapters/{first['id']}/scenes") == [(1, "a"), (2, "c")]
    assert await titles(user, f"/api/v1/chapters/{second['id']}/scenes") == [(1, "b"), (2, "x")]
    within = await user.post(f"/api/v1/scenes/{a['id']}/move", json={"position": 2})
    assert within.json()["position"] == 2
    assert await titles(user, f"/api/v1/chapters/{first['id']}/scenes") == [(1, "c"), (2, "a")]

    other = await project(user, "Other book")
    elsewhere = await chapter(user, other["id"], "Elsewhere")
    refused = await user.post(f"/api/v1/scenes/{x['id']}/move", json={"parent_id": elsewhere["id"]})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "parent_id"
    shown = (await user.get(f"/api/v1/chapters/{second['id']}")).json()
    assert shown["scene_count"] == 2
    del c


async def test_panels_dialogue_and_reorder(users: UserFactory) -> None:
    user = await users.create()
    book = await project(user)
    ch = await chapter(user, book["id"], "One")
    sc = await scene(user, ch["id"], "Stairs")
    p1 = await panel(user, sc["id"], "Mara climbs", shot="wide", camera_angle="low")
    p2 = await panel(
        user,
        sc["id"],
        "The lamp is dark",
        dialogue=[{"kind": "caption", "text": "Midnight."}],
    )
    p3 = await panel(user, sc["id"], "Jonah asleep", shot="close_up")
    assert p2["dialogue"] == [
        {"kind": "caption", "text": "Midnight.", "speaker_id": None, "position_hint": None}
    ]
    bad = await user.post(f"/api/v1/scenes/{sc['id']}/panels", json={"shot": "sideways"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].endswith("shot")

    bubbles = [
        {"kind": "speech", "text": "Jonah?", "position_hint": "top-left"},
        {"kind": "thought", "text": "He never sleeps on watch."},
    ]
    replaced = await user.put(
        f"/api/v1/panels/{p3['id']}/dialogue", json={"bubbles": bubbles, "version": 1}
    )
    assert replaced.status_code == 200, replaced.text
    assert [b["text"] for b in replaced.json()["dialogue"]] == [
        "Jonah?",
        "He never sleeps on watch.",
    ]
    assert replaced.json()["version"] == 2
    stale = await user.put(
        f"/api/v1/panels/{p3['id']}/dialogue", json={"bubbles": [], "version": 1}
    )
    assert stale.status_code == 409

    order_url = f"/api/v1/scenes/{sc['id']}/reorder-panels"
    reordered = await user.post(order_url, json={"panel_ids": [p3["id"], p1["id"], p2["id"]]})
    assert reordered.status_code == 200, reordered.text
    assert [(p["position"], p["id"]) for p in reordered.json()["items"]] == [
        (1, p3["id"]),
        (2, p1["id"]),
        (3, p2["id"]),
    ]
    for wrong in (
        [p1["id"], p2["id"]],
        [p1["id"], p1["id"], p2["id"]],
        [p1["id"], p2["id"], ch["id"]],
    ):
        response = await user.post(order_url, json={"panel_ids": wrong})
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "panel_ids"

    other_scene = await scene(user, ch["id"], "Roof")
    moved = await user.post(
        f"/api/v1/panels/{p1['id']}/move", json={"parent_id": other_scene["id"]}
    )
    assert moved.status_code == 200 and moved.json()["scene_id"] == other_scene["id"]
    assert await titles(user, f"/api/v1/scenes/{sc['id']}/panels", "description") == [
        (1, "Jonah asleep"),
        (2, "The lamp is dark"),
    ]
    assert (await user.delete(f"/api/v1/panels/{p3['id']}")).status_code == 204
    assert await titles(user, f"/api/v1/scenes/{sc['id']}/panels", "description") == [
        (1, "The lamp is dark")
    ]


async def test_access_follows_the_project(users: UserFactory) -> None:
    owner, viewer, stranger = await users.create(), await users.create(), await users.create()
    book = await project(owner)
    await owner.post(
        f"/api/v1/projects/{book['id']}/members", json={"user": viewer.username, "role": "viewer"}
    )
    ch = await chapter(owner, book["id"], "One")
    sc = await scene(owner, ch["id"], "Stairs")
    pn = await panel(owner, sc["id"], "Mara climbs")

    for path, code in [
        (f"/api/v1/chapters/{ch['id']}", "CHAPTER_NOT_FOUND"),
        (f"/api/v1/scenes/{sc['id']}", "SCENE_NOT_FOUND"),
        (f"/api/v1/panels/{pn['id']}", "PANEL_NOT_FOUND"),
    ]:
        assert (await viewer.get(path)).status_code == 200
        for method in ("get", "patch", "delete"):
            kwargs = {"json": {}} if method == "patch" else {}
            response = await getattr(stranger, method)(path, **kwargs)
            assert response.status_code == 404 and response.json()["code"] == code
        refused = await viewer.patch(path, json={})
        assert refused.status_code == 403, path
    assert (await stranger.get(f"/api/v1/projects/{book['id']}/chapters")).status_code == 404
    assert (
        await viewer.post(f"/api/v1/chapters/{ch['id']}/scenes", json={"title": "x"})
    ).status_code == 403
    assert (
        await viewer.post(
            f"/api/v1/scenes/{sc['id']}/reorder-panels", json={"panel_ids": [pn["id"]]}
        )
    ).status_code == 403
    await _stale(owner, f"/api/v1/chapters/{ch['id']}")
    await _stale(owner, f"/api/v1/scenes/{sc['id']}")
    await _stale(owner, f"/api/v1/panels/{pn['id']}", field="notes")


async def _stale(user: SignedInUser, url: str, field: str = "summary") -> None:
    fresh = await user.patch(url, json={field: "first"}, headers={"If-Match": '"1"'})
    assert fresh.status_code == 200 and fresh.headers["ETag"] == '"2"'
    stale = await user.patch(url, json={field: "second"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 409 and stale.json()["code"] == "VERSION_CONFLICT"
    assert (await user.delete(url, headers={"If-Match": '"1"'})).status_code == 409


async def test_deleting_a_chapter_deletes_its_scenes_and_panels(users: UserFactory) -> None:
    user = await users.create()
    book = await project(user)
    ch = await chapter(user, book["id"], "One")
    sc = await scene(user, ch["id"], "Stairs")
    pn = await panel(user, sc["id"], "Mara climbs")
    assert (await user.delete(f"/api/v1/chapters/{ch['id']}")).status_code == 204
    assert (await user.get(f"/api/v1/scenes/{sc['id']}")).status_code == 404
    assert (await user.get(f"/api/v1/panels/{pn['id']}")).status_code == 404
    assert (await user.delete(f"/api/v1/projects/{book['id']}")).status_code == 204


async def test_split_and_merge_panels(users: UserFactory) -> None:
    user = await users.create()
    book = await project(user)
    ch = await chapter(user, book["id"], "One")
    sc = await scene(user, ch["id"], "Stairs")
    bubbles = [{"text": t} for t in ("One.", "Two.", "Three.")]
    first = await panel(user, sc["id"], "Mara at the door", dialogue=bubbles)
    last = await panel(user, sc["id"], "The lamp")

    split = await user.post(
        f"/api/v1/panels/{first['id']}/split",
        json={"at_bubble": 1, "new_description": "Mara on the stairs", "version": 1},
    )
    assert split.status_code == 200, split.text
    body = split.json()
    assert [b["text"] for b in body["first"]["dialogue"]] == ["One."]
    assert [b["text"] for b in body["second"]["dialogue"]] == ["Two.", "Three."]
    assert body["second"]["position"] == 2 and body["second"]["description"] == "Mara on the stairs"
    panels_url = f"/api/v1/scenes/{sc['id']}/panels"
    assert await titles(user, panels_url, "description") == [
        (1, "Mara at the door"),
        (2, "Mara on the stairs"),
        (3, "The lamp"),
    ]
    too_far = await user.post(f"/api/v1/panels/{first['id']}/split", json={"at_bubble": 5})
    assert too_far.status_code == 422 and too_far.json()["errors"][0]["field"] == "at_bubble"

    merged = await user.post(f"/api/v1/panels/{first['id']}/merge", json={})
    assert merged.status_code == 200, merged.text
    assert [b["text"] for b in merged.json()["dialogue"]] == ["One.", "Two.", "Three."]
    assert merged.json()["description"] == "Mara at the door\n\nMara on the stairs"
    assert await titles(user, panels_url, "description") == [
        (1, "Mara at the door\n\nMara on the stairs"),
        (2, "The lamp"),
    ]
    # Naming a later panel from the earlier one, or the earlier one from the later: the same.
    joined = await user.post(
        f"/api/v1/panels/{last['id']}/merge", json={"with_panel_id": first["id"]}
    )
    assert joined.status_code == 200 and joined.json()["id"] == first["id"]
    alone = await user.post(f"/api/v1/panels/{first['id']}/merge", json={})
    assert alone.status_code == 422 and alone.json()["errors"][0]["field"] == "with_panel_id"


async def test_covers_and_selected_images_must_be_the_projects(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    book = await project(user)
    ch = await chapter(user, book["id"], "One")
    sc = await scene(user, ch["id"], "Stairs")
    pn = await panel(user, sc["id"], "Mara")
    assert (await user.get(f"/api/v1/panels/{pn['id']}/image")).json()["code"] == "NO_IMAGE"
    assert (await user.get(f"/api/v1/chapters/{ch['id']}/cover")).status_code == 404

    mine = await upload(user)
    refused = await user.patch(f"/api/v1/chapters/{ch['id']}", json={"cover_image_id": mine})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "cover_image_id"
    of_project = await upload(user, subject_type="project", subject_id=book["id"])
    cover = await user.patch(f"/api/v1/chapters/{ch['id']}", json={"cover_image_id": of_project})
    assert cover.status_code == 200 and cover.json()["cover_image_id"] == of_project
    shown_cover = await user.get(f"/api/v1/chapters/{ch['id']}/cover")
    assert shown_cover.status_code == 200
    assert shown_cover.json()["url"] == f"/api/v1/images/{of_project}"

    for_panel = await upload(user, panel_id=pn["id"])
    selected = await user.patch(f"/api/v1/panels/{pn['id']}", json={"selected_image_id": for_panel})
    assert selected.status_code == 200, selected.text
    shown = await user.get(f"/api/v1/panels/{pn['id']}/image")
    assert shown.status_code == 200 and shown.json()["image_id"] == for_panel
    assert (await user.get(shown.json()["url"])).status_code == 200
    missing = await user.patch(
        f"/api/v1/panels/{pn['id']}", json={"selected_image_id": str(uuid.uuid4())}
    )
    assert missing.status_code == 422


async def upload(user: SignedInUser, **form: str) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(buffer, "PNG")
    response = await user.post(
        "/api/v1/images/upload",
        files={"file": ("p.png", buffer.getvalue(), "image/png")},
        data=form,
    )
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


async def test_a_bubbles_speaker_is_one_of_the_projects_characters(users: UserFactory) -> None:
    user = await users.create()
    book, other = await project(user), await project(user, "Other")
    mara = (
        await user.post(f"/api/v1/projects/{book['id']}/characters", json={"name": "Mara"})
    ).json()
    stranger = (
        await user.post(f"/api/v1/projects/{other['id']}/characters", json={"name": "Ghost"})
    ).json()
    ch = await chapter(user, book["id"], "One")
    sc = await scene(user, ch["id"], "Stairs")
    ok = await panel(
        user, sc["id"], "Mara speaks", dialogue=[{"text": "Hi", "speaker_id": mara["id"]}]
    )
    refused = await user.put(
        f"/api/v1/panels/{ok['id']}/dialogue",
        json={"bubbles": [{"text": "Hi"}, {"text": "Boo", "speaker_id": stranger["id"]}]},
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "bubbles[1].speaker_id"
    created = await user.post(
        f"/api/v1/scenes/{sc['id']}/panels",
        json={"dialogue": [{"text": "Boo", "speaker_id": stranger["id"]}]},
    )
    assert created.status_code == 422
    assert created.json()["errors"][0]["field"] == "dialogue[0].speaker_id"
