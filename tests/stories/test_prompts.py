"""A panel's prompt: built from the style guide, the panel, its cast and location, and the
instructions that apply, each part naming its source; the reference images generation uses."""

from __future__ import annotations

from tests.factories import UserFactory
from tests.stories.helpers import chapter, panel, post, project, scene
from tests.stories.test_content import upload


async def test_a_panels_prompt_and_where_each_part_comes_from(users: UserFactory) -> None:
    owner, stranger = await users.create(), await users.create()
    book = await project(owner)
    base = f"/api/v1/projects/{book['id']}"
    guide = await owner.put(
        f"{base}/style-guide",
        json={
            "art_style": "ink and watercolour",
            "palette": ["#1b4965", "#f4d35e"],
            "aspect_ratio": "2:3",
            "negative_prompt": "blurry, extra fingers",
        },
    )
    assert guide.status_code == 200, guide.text
    mara = await post(
        owner, f"{base}/characters", {"name": "Mara", "appearance": ["red scarf", "freckles"]}
    )
    design = await upload(owner, subject_type="project", subject_id=book["id"])
    linked = await owner.post(
        f"/api/v1/characters/{mara['id']}/designs", json={"image_id": design, "primary": True}
    )
    assert linked.status_code in (200, 201), linked.text
    tower = await post(
        owner,
        f"{base}/locations",
        {"name": "Lighthouse", "setting": "interior", "description": "spiral stairs"},
    )
    ch = await chapter(owner, book["id"], "One")
    sc = await scene(owner, ch["id"], "Stairs")
    pn = await panel(
        owner,
        sc["id"],
        "Mara climbs toward the dark lamp",
        shot="wide",
        camera_angle="low",
        mood="tense",
        character_ids=[mara["id"]],
        location_id=tower["id"],
    )
    for url, payload in [
        (f"{base}/instructions", {"text": "soft daylight", "category": "style"}),
        (f"/api/v1/scenes/{sc['id']}/instructions", {"text": "storm light", "category": "style"}),
        (f"{base}/instructions", {"text": "keep faces expressive"}),
    ]:
        assert (await owner.post(url, json=payload)).status_code == 201

    response = await owner.get(f"/api/v1/panels/{pn['id']}/prompt")
    assert response.status_code == 200, response.text
    body = response.json()
    kinds = [(part["kind"], part["text"]) for part in body["parts"]]
    assert kinds == [
        ("style", "ink and watercolour"),
        ("description", "Mara climbs toward the dark lamp"),
        ("camera", "wide shot low angle"),
        ("character", "Mara (red scarf, freckles)"),
        ("location", "Lighthouse: interior, spiral stairs"),
        ("mood", "tense mood"),
        ("instruction", "keep faces expressive"),
        ("instruction", "storm light"),  # the scene's style instruction overrides the project's
        ("palette", "palette #1b4965 #f4d35e"),
        ("aspect_ratio", "aspect ratio 2:3"),
    ]
    sources = {part["kind"]: (part["source"], part["source_id"]) for part in body["parts"]}
    assert sources["character"] == ("character", mara["id"])
    assert sources["description"] == ("panel", pn["id"])
    assert body["prompt"].startswith("ink and watercolour, Mara climbs toward the dark lamp, ")
    assert body["negative_prompt"] == "blurry, extra fingers"
    assert body["reference_image_ids"] == [design]
    assert (await stranger.get(f"/api/v1/panels/{pn['id']}/prompt")).status_code == 404


async def test_applying_the_style_guide_keeps_every_panels_prompt(users: UserFactory) -> None:
    owner, viewer = await users.create(), await users.create()
    book = await project(owner)
    base = f"/api/v1/projects/{book['id']}"
    await owner.post(f"{base}/members", json={"user": viewer.username, "role": "viewer"})
    one = await chapter(owner, book["id"], "One")
    two = await chapter(owner, book["id"], "Two")
    first_scene = await scene(owner, one["id"], "A")
    second_scene = await scene(owner, two["id"], "B")
    p1 = await panel(owner, first_scene["id"], "Mara climbs")
    p2 = await panel(owner, second_scene["id"], "The lamp")

    applied = await owner.post(f"{base}/style-guide/apply")
    assert applied.status_code == 200, applied.text
    assert [c["panel_id"] for c in applied.json()["changed"]] == [p1["id"], p2["id"]]
    assert applied.json()["changed"][0] == {
        "panel_id": p1["id"],
        "before": None,
        "after": "Mara climbs",
    }
    again = (await owner.post(f"{base}/style-guide/apply")).json()
    assert again == {"changed": [], "unchanged": 2}

    await owner.put(f"{base}/style-guide", json={"art_style": "noir"})
    only_two = await owner.post(f"{base}/style-guide/apply", json={"chapter_id": two["id"]})
    assert only_two.json()["changed"] == [
        {"panel_id": p2["id"], "before": "The lamp", "after": "noir, The lamp"}
    ]
    shown = (await owner.get(f"/api/v1/panels/{p1['id']}/prompt")).json()
    assert shown["prompt"] == "noir, Mara climbs" and shown["stored_prompt"] == "Mara climbs"

    other = await project(owner, "Other")
    foreign = await chapter(owner, other["id"], "Elsewhere")
    outside = await owner.post(f"{base}/style-guide/apply", json={"chapter_id": foreign["id"]})
    assert outside.status_code == 422 and outside.json()["errors"][0]["field"] == "chapter_id"
    assert (await viewer.post(f"{base}/style-guide/apply")).status_code == 403
