"""/api/v1/projects: projects, their members and roles, versions (If-Match), and the changes
their sockets hear."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.access import subject_type
from creativeflow.identity.principal import Principal
from creativeflow.platform import Platform
from creativeflow.realtime.models import subject_channel
from creativeflow.stories.projects.models import ProjectMember
from tests.factories import TestUser as SignedInUser
from tests.factories import UserFactory

BASE = "/api/v1/projects"


async def create(user: SignedInUser, title: str = "Lighthouse", **fields: Any) -> dict[str, Any]:
    response = await user.post(BASE, json={"title": title, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def share(
    owner: SignedInUser, project: dict[str, Any], member: SignedInUser, role: str
) -> None:
    response = await owner.post(
        f"{BASE}/{project['id']}/members", json={"user": member.username, "role": role}
    )
    assert response.status_code == 201, response.text


async def test_create_and_read_a_project(users: UserFactory) -> None:
    user = await users.create()
    created = await user.post(
        BASE,
        json={
            "title": "  The Lighthouse  ",
            "logline": "A keeper's daughter finds the lamp dark.",
            "genres": ["Mystery", "mystery", "Drama"],
            "audience": "young adult",
            "reading_direction": "rtl",
            "page_format": "manga",
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["title"] == "The Lighthouse" and body["genres"] == ["Mystery", "Drama"]
    assert body["status"] == "planning" and body["role"] == "owner" and body["version"] == 1
    assert created.headers["ETag"] == '"1"'
    assert created.headers["Location"] == f"{BASE}/{body['id']}"
    fetched = await user.get(f"{BASE}/{body['id']}")
    assert fetched.json() == body and fetched.headers["ETag"] == '"1"'


async def test_bad_fields_are_422_naming_them(users: UserFactory) -> None:
    user = await users.create()
    for payload, field in [
        ({"title": ""}, "title"),
        ({"title": "x", "status": "abandoned"}, "status"),
        ({"title": "x", "page_format": "scroll"}, "page_format"),
        ({"title": "x", "genres": [""]}, "genres"),
        ({"title": "x", "colour": "red"}, "colour"),
    ]:
        response = await user.post(BASE, json=payload)
        assert response.status_code == 422, payload
        assert field in {e["field"].split(".")[-1] for e in response.json()["errors"]}, payload


async def test_versions_refuse_stale_changes(users: UserFactory) -> None:
    user = await users.create()
    project = await create(user)
    url = f"{BASE}/{project['id']}"
    first = await user.patch(url, json={"status": "in_progress"}, headers={"If-Match": '"1"'})
    assert first.status_code == 200 and first.json()["version"] == 2
    stale = await user.patch(url, json={"logline": "late"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 409 and stale.json()["code"] == "VERSION_CONFLICT"
    stale_body = await user.put(url, json={"title": "Renamed", "version": 1})
    assert stale_body.status_code == 409
    replaced = await user.put(url, json={"title": "Renamed", "version": 2})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["status"] == "planning"  # PUT: left out, back to the default
    assert replaced.headers["ETag"] == '"3"'
    disagree = await user.patch(url, json={"version": 3}, headers={"If-Match": '"2"'})
    assert disagree.status_code == 422
    bad = await user.patch(url, json={}, headers={"If-Match": "yesterday"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "If-Match"
    null_title = await user.patch(url, json={"title": None})
    assert null_title.status_code == 422
    # Without a version, the last write wins.
    assert (await user.patch(url, json={"logline": "ok"})).status_code == 200


async def test_members_and_what_each_role_may_do(users: UserFactory, session: AsyncSession) -> None:
    owner, editor, viewer, stranger = [await users.create() for _ in range(4)]
    project = await create(owner)
    url = f"{BASE}/{project['id']}"
    await share(owner, project, editor, "editor")
    by_email = await owner.post(
        f"{url}/members", json={"user": f"{viewer.username}@example.com", "role": "viewer"}
    )
    assert by_email.status_code == 201 and by_email.json()["role"] == "viewer"

    members = (await viewer.get(f"{url}/members")).json()
    assert [(m["username"], m["role"]) for m in members] == [
        (owner.username, "owner"),
        (editor.username, "editor"),
        (viewer.username, "viewer"),
    ]
    again = await owner.post(f"{url}/members", json={"user": editor.username, "role": "viewer"})
    assert again.status_code == 409 and again.json()["code"] == "ALREADY_MEMBER"
    nobody = await owner.post(f"{url}/members", json={"user": "no-such-user", "role": "viewer"})
    assert nobody.status_code == 422 and nobody.json()["errors"][0]["field"] == "user"

    assert (await viewer.get(url)).json()["role"] == "viewer"
    assert (await editor.patch(url, json={"logline": "edited"})).status_code == 200
    refused = await viewer.patch(url, json={"logline": "no"})
    assert refused.status_code == 403 and refused.json()["code"] == "PROJECT_ROLE_INSUFFICIENT"
    assert (await editor.delete(url)).status_code == 403
    assert (
        await editor.post(f"{url}/members", json={"user": stranger.username, "role": "viewer"})
    ).status_code == 403
    for method, path in [("get", url), ("patch", url), ("delete", url), ("get", f"{url}/members")]:
        kwargs = {"json": {}} if method == "patch" else {}
        response = await getattr(stranger, method)(path, **kwargs)
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "PROJECT_NOT_FOUND"

    promoted = await owner.patch(f"{url}/members/{viewer.id}", json={"role": "editor"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "editor"
    assert (await viewer.patch(url, json={"logline": "now I may"})).status_code == 200
    # A member may leave; then the project is gone for them.
    assert (await viewer.delete(f"{url}/members/{viewer.id}")).status_code == 204
    assert (await viewer.get(url)).status_code == 404
    assert (await owner.delete(f"{url}/members/{viewer.id}")).status_code == 404

    assert (await owner.delete(url)).status_code == 204
    assert (await editor.get(url)).status_code == 404
    left = await session.scalar(select(func.count()).select_from(ProjectMember))
    assert left == 0  # deleting a project deleted its memberships


async def test_list_owned_and_shared_with_filters(users: UserFactory) -> None:
    alice, bob = await users.create(), await users.create()
    await create(alice, "Alpha harbor", status="complete")
    await create(alice, "Beta")
    theirs = await create(bob, "Gamma harbor")
    await share(bob, theirs, alice, "viewer")
    await create(bob, "Delta (private)")

    listed = (await alice.get(BASE, params={"sort": "title"})).json()
    assert [p["title"] for p in listed["items"]] == ["Alpha harbor", "Beta", "Gamma harbor"]
    assert [p["role"] for p in listed["items"]] == ["owner", "owner", "viewer"]
    shared = (await alice.get(BASE, params={"ownership": "shared"})).json()
    assert [p["title"] for p in shared["items"]] == ["Gamma harbor"]
    found = (await alice.get(BASE, params={"search": "HARBOR", "sort": "-title"})).json()
    assert [p["title"] for p in found["items"]] == ["Gamma harbor", "Alpha harbor"]
    complete = (await alice.get(BASE, params={"status": "complete"})).json()
    assert complete["total"] == 1
    skipped = (await alice.get(BASE, params={"sort": "title", "skip": 2, "limit": 1})).json()
    assert [p["title"] for p in skipped["items"]] == ["Gamma harbor"]
    assert skipped["offset"] == 2 and skipped["has_more"] is False


async def test_project_membership_is_the_subject_rule(
    users: UserFactory, platform: Platform, session: AsyncSession
) -> None:
    """Jobs, images and sockets of a project follow its membership (`creativeflow.access`)."""
    owner, viewer, stranger = await users.create(), await users.create(), await users.create()
    project = await create(owner)
    await share(owner, project, viewer, "viewer")
    kind = subject_type("project")

    def principal(user: SignedInUser) -> Principal:
        return Principal(uuid.UUID(str(user.id)), user.username, frozenset(), frozenset())

    async def ids(select_ids: Any) -> set[str]:
        return {str(value) for value in (await session.execute(select_ids)).scalars()}

    assert project["id"] in await ids(kind.readable(principal(viewer)))
    assert project["id"] not in await ids(kind.writable(principal(viewer)))
    assert project["id"] in await ids(kind.writable(principal(owner)))
    assert project["id"] not in await ids(kind.readable(principal(stranger)))


async def test_changes_reach_the_projects_sockets(users: UserFactory, platform: Platform) -> None:
    user = await users.create()
    project = await create(user)
    socket = await platform.realtime.subscribe(subject_channel(project["id"]))
    try:
        changed = await user.patch(f"{BASE}/{project['id']}", json={"status": "in_progress"})
        assert changed.status_code == 200
        message = await asyncio.wait_for(socket.get(), timeout=5)
        assert message.type == "content_update"
        assert message.data == {
            "entity": "project",
            "id": project["id"],
            "action": "updated",
            "version": 2,
        }
        refused = await user.patch(f"{BASE}/{project['id']}", json={"title": ""})
        assert refused.status_code == 422
        assert socket.pending == 0  # a rolled-back change is not announced
    finally:
        await platform.realtime.unsubscribe(socket)


async def test_a_project_grows_from_a_content_idea(users: UserFactory) -> None:
    user, other = await users.create(), await users.create()
    idea = await user.post(
        f"/api/v1/{user.id}/ideas",
        json={
            "title": "A lighthouse mystery",
            "notes": "The lamp goes dark at midnight.",
            "tags": ["mystery", "Mystery", "coastal"],
        },
    )
    assert idea.status_code == 201, idea.text
    idea_id = idea.json()["id"]
    created = await user.post(f"{BASE}/from-idea/{idea_id}")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["title"] == "A lighthouse mystery"
    assert body["synopsis"] == "The lamp goes dark at midnight."
    assert body["genres"] == ["mystery", "coastal"] and body["idea_id"] == idea_id
    found = (await user.get(BASE, params={"idea_id": idea_id})).json()
    assert [p["id"] for p in found["items"]] == [body["id"]]
    assert (await other.post(f"{BASE}/from-idea/{idea_id}")).status_code == 404
