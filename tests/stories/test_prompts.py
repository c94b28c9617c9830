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
