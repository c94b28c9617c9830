"""Project instructions: the scoped routes, toggle, access by project membership, stale
versions, `applicable` with inheritance over four levels, and `resolve` on its own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.identity.principal import Principal
from creativeflow.stories.content.service import PanelNotFound
from creativeflow.stories.instructions.models import Instruction
from creativeflow.stories.instructions.resolution import effective, resolve
from creativeflow.stories.instructions.service import InstructionService
from tests.factories import TestUser as SignedInUser
from tests.factories import UserFactory
from tests.stories.helpers import chapter, panel, post, project, scene

API = "/api/v1"


async def _tree(user: SignedInUser) -> dict[str, Any]:
    book = await project(user)
    ch = await chapter(user, book["id"], "One")
    sc = await scene(user, ch["id"], "Stairs")
    pn = await panel(user, sc["id"], "Mara climbs")
    return {"project": book, "chapter": ch, "scene": sc, "panel": pn}


def _url(kind: str, entity_id: str) -> str:
    plural = {"project": "projects", "chapter": "chapters", "scene": "scenes", "panel": "panels"}
    return f"{API}/{plural[kind]}/{entity_id}/instructions"


async def _add(user: SignedInUser, kind: str, entity_id: str, text: str, **fields: Any) -> Any:
    return await post(user, _url(kind, entity_id), {"text": text, **fields})


# -- resolve, on its own --------------------------------------------------------------------

_T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _instruction(
    scope: str,
    text: str,
    *,
    category: str | None = None,
    priority: int = 50,
    enabled: bool = True,
    age: int = 0,
) -> Instruction:
    project_id = uuid.UUID(int=1)
    target = {"chapter": "chapter_id", "scene": "scene_id", "panel": "panel_id"}.get(scope)
    targets = {target: uuid.UUID(int=2 + len(scope))} if target else {}
    return Instruction(
        id=uuid.uuid4(),
        project_id=project_id,
        scope=scope,
        text=text,
        category=category,
        priority=priority,
        enabled=enabled,
        created_at=_T0 + timedelta(minutes=age),
        **targets,
    )


def test_resolve_orders_broad_to_narrow_then_priority_then_age() -> None:
    items = [
        _instruction("panel", "panel"),
        _instruction("project", "project low", priority=10),
        _instruction("project", "project high, newer", priority=90, age=2),
        _instruction("project", "project high, older", priority=90, age=1),
        _instruction("scene", "scene"),
        _instruction("chapter", "chapter"),
        _instruction("chapter", "off", enabled=False),
    ]
    resolved = resolve(items)
    assert effective(resolved) == [
        "project high, older",
        "project high, newer",
        "project low",
        "chapter",
        "scene",
        "panel",
    ]
    assert all(entry.applied and entry.overridden_by is None for entry in resolved)
    assert resolved[3].source_id == items[5].chapter_id
    assert resolved[0].source_id == items[0].project_id


def test_resolve_narrower_scope_wins_a_category() -> None:
    broad = _instruction("project", "ink wash", category="style")
    middle = _instruction("scene", "neon noir", category="style", priority=10)
    narrow = _instruction("panel", "pencil sketch", category="style", priority=5)
    narrow_too = _instruction("panel", "loose lines", category="style", priority=1)
    tone = _instruction("project", "hopeful", category="tone")
    free = _instruction("chapter", "no category")
    resolved = {
        entry.instruction.text: entry
        for entry in resolve([broad, middle, narrow, narrow_too, tone, free])
    }
    assert not resolved["ink wash"].applied and resolved["ink wash"].overridden_by == narrow.id
    assert not resolved["neon noir"].applied and resolved["neon noir"].overridden_by == narrow.id
    assert resolved["pencil sketch"].applied and resolved["loose lines"].applied
    assert resolved["hopeful"].applied and resolved["no category"].applied
    # A disabled narrower one overrides nothing.
    narrow.enabled = narrow_too.enabled = False
    again = {
        entry.instruction.text: entry for entry in resolve([broad, middle, narrow, narrow_too])
    }
    assert set(again) == {"ink wash", "neon noir"}
    assert again["neon noir"].applied and again["ink wash"].overridden_by == middle.id


# -- through the API ------------------------------------------------------------------------


async def test_scoped_creation_list_and_changes(users: UserFactory) -> None:
    user = await users.create()
    tree = await _tree(user)
    pid = tree["project"]["id"]
    made = {}
    for kind in ("panel", "scene", "chapter", "project"):
        made[kind] = await _add(user, kind, tree[kind]["id"], f"{kind} rule", category="style")
        assert made[kind]["scope"] == kind and made[kind]["version"] == 1
        expected_target = None if kind == "project" else tree[kind]["id"]
        assert made[kind]["target_id"] == expected_target
        assert made[kind]["project_id"] == pid and made[kind]["priority"] == 50
        assert made[kind]["enabled"] is True
    high = await _add(user, "project", pid, "project first", priority=99)

    listing = await user.get(f"{API}/projects/{pid}/instructions")
    assert listing.status_code == 200, listing.text
    assert [i["text"] for i in listing.json()["items"]] == [
        "project first",
        "project rule",
        "chapter rule",
        "scene rule",
        "panel rule",
    ]
    only = await user.get(f"{API}/projects/{pid}/instructions", params={"scope": "scene"})
    assert [i["id"] for i in only.json()["items"]] == [made["scene"]["id"]]
    page = (await user.get(f"{API}/projects/{pid}/instructions?limit=2&skip=1")).json()
    assert page["total"] == 5 and page["offset"] == 1 and page["has_more"] is True
    assert [i["text"] for i in page["items"]] == ["project rule", "chapter rule"]

    for bad, field in [
        ({"text": ""}, "text"),
        ({"text": "x" * 4001}, "text"),
        ({"text": "ok", "priority": 101}, "priority"),
        ({"text": "ok", "category": "mood"}, "category"),
        ({"text": "ok", "scope": "panel"}, "scope"),
    ]:
        response = await user.post(_url("project", pid), json=bad)
        assert response.status_code == 422, bad
        assert response.json()["errors"][0]["field"].endswith(field), response.text
    bad_filter = await user.get(f"{API}/projects/{pid}/instructions", params={"scope": "page"})
    assert bad_filter.status_code == 422

    url = f"{API}/instructions/{high['id']}"
    got = await user.get(url)
    assert got.status_code == 200 and got.headers["ETag"] == '"1"'
    patched = await user.patch(url, json={"priority": 1}, headers={"If-Match": '"1"'})
    assert patched.status_code == 200 and patched.json()["priority"] == 1
    assert patched.json()["version"] == 2 and patched.json()["text"] == "project first"
    replaced = await user.put(url, json={"text": "replaced", "version": 2})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["priority"] == 50 and replaced.json()["category"] is None
    null_text = await user.patch(url, json={"text": None})
    assert null_text.status_code == 422 and null_text.json()["errors"][0]["field"] == "text"

    toggled = await user.post(f"{url}/toggle")
    assert toggled.status_code == 200 and toggled.json()["enabled"] is False
    assert toggled.json()["version"] == 4
    stale_toggle = await user.post(f"{url}/toggle", headers={"If-Match": '"3"'})
    assert stale_toggle.status_code == 409
    back = await user.post(f"{url}/toggle", json={"version": 4})
    assert back.status_code == 200 and back.json()["enabled"] is True
    await user.post(f"{url}/toggle")
    disabled = await user.get(f"{API}/projects/{pid}/instructions", params={"enabled": "false"})
    assert [i["id"] for i in disabled.json()["items"]] == [high["id"]]

    stale = await user.patch(url, json={"priority": 3}, headers={"If-Match": '"1"'})
    assert stale.status_code == 409 and stale.json()["code"] == "VERSION_CONFLICT"
    stale_put = await user.put(url, json={"text": "x", "version": 1})
    assert stale_put.status_code == 409
    assert (await user.delete(url, headers={"If-Match": '"1"'})).status_code == 409
    assert (await user.delete(url)).status_code == 204
    gone = await user.get(url)
    assert gone.status_code == 404 and gone.json()["code"] == "INSTRUCTION_NOT_FOUND"


async def test_access_follows_the_project(users: UserFactory) -> None:
    owner, editor, viewer, stranger = [await users.create() for _ in range(4)]
    tree = await _tree(owner)
    pid = tree["project"]["id"]
    for member, role in ((viewer, "viewer"), (editor, "editor")):
        added = await owner.post(
            f"{API}/projects/{pid}/members", json={"user": member.username, "role": role}
        )
        assert added.status_code == 201, added.text
    rule = await _add(editor, "panel", tree["panel"]["id"], "rule")
    url = f"{API}/instructions/{rule['id']}"

    assert (await viewer.get(url)).status_code == 200
    assert (await viewer.get(f"{API}/projects/{pid}/instructions")).status_code == 200
    for method, path, kwargs in [
        ("patch", url, {"json": {"priority": 1}}),
        ("put", url, {"json": {"text": "x"}}),
        ("post", f"{url}/toggle", {}),
        ("delete", url, {}),
    ]:
        assert (await getattr(viewer, method)(path, **kwargs)).status_code == 403, method
        stranger_answer = await getattr(stranger, method)(path, **kwargs)
        assert stranger_answer.status_code == 404, method
        assert stranger_answer.json()["code"] == "INSTRUCTION_NOT_FOUND"
    assert (await stranger.get(url)).json()["code"] == "INSTRUCTION_NOT_FOUND"
    for kind, code in [
        ("project", "PROJECT_NOT_FOUND"),
        ("chapter", "CHAPTER_NOT_FOUND"),
        ("scene", "SCENE_NOT_FOUND"),
        ("panel", "PANEL_NOT_FOUND"),
    ]:
        target = tree[kind]["id"]
        refused = await viewer.post(_url(kind, target), json={"text": "x"})
        assert refused.status_code == 403, kind
        hidden = await stranger.post(_url(kind, target), json={"text": "x"})
        assert hidden.status_code == 404 and hidden.json()["code"] == code
        applicable = await stranger.get(
            f"{API}/instructions/applicable", params={"scope": kind, "id": target}
        )
        assert applicable.status_code == 404 and applicable.json()["code"] == code
        seen = await viewer.get(
            f"{API}/instructions/applicable", params={"scope": kind, "id": target}
        )
        assert seen.status_code == 200
    listing = await stranger.get(f"{API}/projects/{pid}/instructions")
    assert listing.status_code == 404 and listing.json()["code"] == "PROJECT_NOT_FOUND"
    missing = await owner.post(_url("scene", str(uuid.uuid4())), json={"text": "x"})
    assert missing.status_code == 404 and missing.json()["code"] == "SCENE_NOT_FOUND"


async def test_applicable_inherits_over_four_levels(users: UserFactory) -> None:
    user = await users.create()
    tree = await _tree(user)
    pid, cid, sid, pnid = (tree[k]["id"] for k in ("project", "chapter", "scene", "panel"))
    style = await _add(user, "project", pid, "Ink wash, muted palette", category="style")
    tone = await _add(user, "project", pid, "Quiet, melancholic", category="tone", priority=80)
    await _add(user, "project", pid, "Disabled rule", enabled=False)
    continuity = await _add(user, "chapter", cid, "Mara wears the red scarf", category="continuity")
    scene_style = await _add(user, "scene", sid, "Storm light", category="style")
    panel_style = await _add(user, "panel", pnid, "Silhouette only", category="style", priority=90)
    panel_note = await _add(user, "panel", pnid, "Keep the lamp in frame")
    off = await _add(user, "panel", pnid, "Toggled off")
    assert (await user.post(f"{API}/instructions/{off['id']}/toggle")).status_code == 200
    # Another panel's and another scene's instructions do not leak in.
    other_scene = await scene(user, cid, "Roof")
    await _add(user, "scene", other_scene["id"], "Not here")
    other_panel = await panel(user, sid, "Jonah asleep")
    await _add(user, "panel", other_panel["id"], "Not here either")

    answer = await user.get(f"{API}/instructions/applicable", params={"scope": "panel", "id": pnid})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["scope"] == "panel" and body["id"] == pnid
    rows = [
        (e["instruction"]["id"], e["scope"], e["source_id"], e["applied"], e["overridden_by"])
        for e in body["entries"]
    ]
    assert rows == [
        (tone["id"], "project", pid, True, None),
        (style["id"], "project", pid, False, panel_style["id"]),
        (continuity["id"], "chapter", cid, True, None),
        (scene_style["id"], "scene", sid, False, panel_style["id"]),
        (panel_style["id"], "panel", pnid, True, None),
        (panel_note["id"], "panel", pnid, True, None),
    ]
    assert body["effective"] == [
        "Quiet, melancholic",
        "Mara wears the red scarf",
        "Silhouette only",
        "Keep the lamp in frame",
    ]

    at_scene = (
        await user.get(f"{API}/instructions/applicable", params={"scope": "scene", "id": sid})
    ).json()
    by_id = {e["instruction"]["id"]: e for e in at_scene["entries"]}
    assert set(by_id) == {tone["id"], style["id"], continuity["id"], scene_style["id"]}
    assert by_id[style["id"]]["overridden_by"] == scene_style["id"]
    assert by_id[scene_style["id"]]["applied"] is True
    at_chapter = (
        await user.get(f"{API}/instructions/applicable", params={"scope": "chapter", "id": cid})
    ).json()
    assert at_chapter["effective"] == [
        "Quiet, melancholic",
        "Ink wash, muted palette",
        "Mara wears the red scarf",
    ]
    at_project = (
        await user.get(f"{API}/instructions/applicable", params={"scope": "project", "id": pid})
    ).json()
    assert [e["source_id"] for e in at_project["entries"]] == [pid, pid]
    for params in (
        {"scope": "page", "id": pid},
        {"scope": "panel", "id": "nope"},
        {"scope": "panel"},
    ):
        bad = await user.get(f"{API}/instructions/applicable", params=params)
        assert bad.status_code == 422, params


async def test_applicable_for_panel_is_the_service_call(
    users: UserFactory, session: AsyncSession
) -> None:
    """What the prompt builder calls: the panel's resolved entries, access checked."""
    owner, stranger = await users.create(), await users.create()
    tree = await _tree(owner)
    broad = await _add(owner, "project", tree["project"]["id"], "Ink", category="style")
    narrow = await _add(owner, "panel", tree["panel"]["id"], "Pencil", category="style")

    def principal(user: SignedInUser) -> Principal:
        return Principal(uuid.UUID(str(user.id)), user.username, frozenset(), frozenset())

    panel_id = uuid.UUID(tree["panel"]["id"])
    entries = await InstructionService(session, principal(owner)).applicable_for_panel(panel_id)
    assert [(str(e.instruction.id), e.applied) for e in entries] == [
        (broad["id"], False),
        (narrow["id"], True),
    ]
    assert str(entries[0].overridden_by) == narrow["id"]
    with pytest.raises(PanelNotFound):
        await InstructionService(session, principal(stranger)).applicable_for_panel(panel_id)


async def test_deleting_a_target_deletes_its_instructions(users: UserFactory) -> None:
    user = await users.create()
    tree = await _tree(user)
    on_scene = await _add(user, "scene", tree["scene"]["id"], "scene rule")
    on_panel = await _add(user, "panel", tree["panel"]["id"], "panel rule")
    on_chapter = await _add(user, "chapter", tree["chapter"]["id"], "chapter rule")
    assert (await user.delete(f"{API}/scenes/{tree['scene']['id']}")).status_code == 204
    for gone in (on_scene, on_panel):
        response = await user.get(f"{API}/instructions/{gone['id']}")
        assert response.status_code == 404 and response.json()["code"] == "INSTRUCTION_NOT_FOUND"
    assert (await user.get(f"{API}/instructions/{on_chapter['id']}")).status_code == 200
    listing = (await user.get(f"{API}/projects/{tree['project']['id']}/instructions")).json()
    assert [i["id"] for i in listing["items"]] == [on_chapter["id"]]
    assert (await user.delete(f"{API}/projects/{tree['project']['id']}")).status_code == 204
    assert (await user.get(f"{API}/instructions/{on_chapter['id']}")).status_code == 404
