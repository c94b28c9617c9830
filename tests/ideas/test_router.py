"""The ideas API end to end: CRUD, validation, isolation between users, list features."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from creativeflow.ideas import queries
from tests.factories import UserFactory
from tests.ideas.support import (
    assert_problem,
    create_idea,
    ideas_url,
    list_ideas,
    titles,
)

if TYPE_CHECKING:  # not imported at run time: pytest would try to collect a `Test...` class
    from tests.factories import TestUser

# -- create ----------------------------------------------------------------------------------


async def test_create_returns_the_idea_with_defaults(users: UserFactory) -> None:
    user = await users.create()
    response = await user.post(ideas_url(user), json={"title": "Top 5 AI Writing Tools"})

    assert response.status_code == 201
    idea = response.json()
    assert idea["title"] == "Top 5 AI Writing Tools"
    assert idea["notes"] is None
    assert idea["stage"] == "idea"
    assert idea["priority"] == "medium"
    assert idea["tags"] == []
    assert idea["due_date"] is None
    assert idea["user_id"] == user.id
    assert idea["created_by"] == user.id
    assert idea["updated_by"] == user.id
    assert uuid.UUID(idea["id"]).version == 7
    created_at = datetime.fromisoformat(idea["created_at"])
    assert created_at.utcoffset() == timedelta(0)
    # Fixed width (UTC, microseconds), so the strings sort like the times.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", idea["created_at"])
    assert response.headers["location"] == ideas_url(user, idea["id"])

    fetched = await user.get(ideas_url(user, idea["id"]))
    assert fetched.status_code == 200
    assert fetched.json() == idea


async def test_create_stores_every_field(users: UserFactory) -> None:
    user = await users.create()
    idea = await create_idea(
        user,
        title="Podcast pilot",
        notes="Interview three creators",
        stage="draft",
        priority="high",
        tags=["podcast", "interview"],
        due_date="2026-02-01T09:00:00Z",
    )
    stored = (await user.get(ideas_url(user, idea["id"]))).json()
    assert stored["notes"] == "Interview three creators"
    assert stored["stage"] == "draft"
    assert stored["priority"] == "high"
    assert stored["tags"] == ["podcast", "interview"]
    assert datetime.fromisoformat(stored["due_date"]) == datetime.fromisoformat(
        "2026-02-01T09:00:00+00:00"
    )


async def test_create_normalises_text_tags_and_due_date(users: UserFactory) -> None:
    user = await users.create()
    idea = await create_idea(
        user,
        title="  Padded title \t",
        notes="   ",
        tags=[" AI ", "blog", "ai", "Blog", "video", "BLOG"],
        due_date="2026-01-05T10:00:00+09:00",
    )
    assert idea["title"] == "Padded title"
    assert idea["notes"] is None  # blank notes mean no notes
    assert idea["tags"] == ["AI", "blog", "video"]  # case-insensitive, first spelling kept
    # Stored and returned in UTC, the same instant, always with microseconds.
    assert idea["due_date"] == "2026-01-05T01:00:00.000000Z"
    stored = (await user.get(ideas_url(user, idea["id"]))).json()
    assert stored["tags"] == ["AI", "blog", "video"]
    assert datetime.fromisoformat(stored["due_date"]) == datetime.fromisoformat(
        "2026-01-05T01:00:00+00:00"
    )


async def test_create_accepts_the_limits_exactly(users: UserFactory) -> None:
    user = await users.create()
    tags = [f"t{i:02d}-" + "x" * 46 for i in range(20)]  # 20 tags of 50 characters
    idea = await create_idea(user, title="T" * 200, notes="n" * 5000, tags=tags)
    assert len(idea["title"]) == 200
    assert len(idea["notes"]) == 5000
    assert idea["tags"] == tags


async def test_duplicates_do_not_count_towards_the_tag_limit(users: UserFactory) -> None:
    user = await users.create()
    tags = [f"tag{i}" for i in range(20)] + [f"TAG{i}" for i in range(5)]
    idea = await create_idea(user, tags=tags)
    assert idea["tags"] == [f"tag{i}" for i in range(20)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": None}, "title"),
        ({"title": "bad\x00title"}, "title"),
        ({"title": "two\nlines"}, "title"),
        ({"title": "ok", "notes": "n" * 5001}, "notes"),
        ({"title": "ok", "notes": "nul\x00byte"}, "notes"),
        ({"title": "ok", "stage": "done"}, "stage"),
        ({"title": "ok", "priority": "urgent"}, "priority"),
        ({"title": "ok", "tags": [f"tag{i}" for i in range(21)]}, "tags"),
        ({"title": "ok", "tags": ["x" * 51]}, "tags.0"),
        ({"title": "ok", "tags": ["fine", "  "]}, "tags.1"),
        ({"title": "ok", "tags": "blog,video"}, "tags"),
        ({"title": "ok", "tags": [1, 2]}, "tags.0"),
        ({"title": "ok", "due_date": "2026-01-05T10:00:00"}, "due_date"),
        ({"title": "ok", "due_date": "next tuesday"}, "due_date"),
        ({"title": "ok", "color": "red"}, "color"),
        ({"title": "ok", "user_id": str(uuid.uuid4())}, "user_id"),
    ],
)
async def test_create_refuses_invalid_input(
    users: UserFactory, body: dict[str, Any], field: str
) -> None:
    user = await users.create()
    response = await user.post(ideas_url(user), json=body)
    assert_problem(response, 422, "VALIDATION_ERROR", field)
    assert (await list_ideas(user))["total"] == 0


async def test_create_refuses_unpaired_surrogates(users: UserFactory) -> None:
    user = await users.create()
    response = await user.client.post(
        ideas_url(user),
        content='{"title": "broken \\ud800 text"}',
        headers={**user.headers, "content-type": "application/json"},
    )
    assert_problem(response, 422, "VALIDATION_ERROR", "title")


# -- authentication and isolation ----------------------------------------------------------

ROUTES = [
    ("POST", ""),
    ("GET", ""),
    ("GET", "/{idea}"),
    ("PATCH", "/{idea}"),
    ("PUT", "/{idea}"),
    ("DELETE", "/{idea}"),
]


def _request_kwargs(method: str) -> dict[str, Any]:
    return {"json": {"title": "Changed"}} if method in {"POST", "PATCH", "PUT"} else {}


@pytest.mark.parametrize(("method", "suffix"), ROUTES)
async def test_every_route_needs_a_token(
    users: UserFactory, client: httpx.AsyncClient, method: str, suffix: str
) -> None:
    owner = await users.create()
    idea = await create_idea(owner, title="Private")
    url = ideas_url(owner) + suffix.format(idea=idea["id"])

    response = await client.request(method, url, **_request_kwargs(method))
    assert_problem(response, 401, "NOT_AUTHENTICATED")
    assert response.headers["www-authenticate"] == "Bearer"

    bad_token = {"Authorization": "Bearer not-a-token"}
    response = await client.request(method, url, headers=bad_token, **_request_kwargs(method))
    assert_problem(response, 401, "INVALID_TOKEN")

    assert (await owner.get(ideas_url(owner, idea["id"]))).json() == idea


@pytest.mark.parametrize(("method", "suffix"), ROUTES)
async def test_another_users_path_is_forbidden(
    users: UserFactory, method: str, suffix: str
) -> None:
    owner = await users.create()
    intruder = await users.create()
    idea = await create_idea(owner, title="Private")
    url = ideas_url(owner) + suffix.format(idea=idea["id"])

    response = await intruder.client.request(
        method, url, headers=intruder.headers, **_request_kwargs(method)
    )
    assert_problem(response, 403, "PERMISSION_DENIED")
    assert "Private" not in response.text

    assert (await owner.get(ideas_url(owner, idea["id"]))).json() == idea
    owner_list = await list_ideas(owner)
    assert owner_list["total"] == 1
    assert [item["id"] for item in owner_list["items"]] == [idea["id"]]
    assert (await list_ideas(intruder))["total"] == 0


@pytest.mark.parametrize(("method", "suffix"), [r for r in ROUTES if r[1]])
async def test_another_users_idea_is_not_found_through_your_own_path(
    users: UserFactory, method: str, suffix: str
) -> None:
    owner = await users.create()
    intruder = await users.create()
    idea = await create_idea(owner, title="Private", tags=["secret"])
    url = ideas_url(intruder) + suffix.format(idea=idea["id"])

    response = await intruder.client.request(
        method, url, headers=intruder.headers, **_request_kwargs(method)
    )
    assert_problem(response, 404, "NOT_FOUND")
    # Exactly what an id that exists nowhere gets: nothing reveals the idea.
    missing = uuid.uuid4()
    other = await intruder.client.request(
        method,
        ideas_url(intruder) + suffix.format(idea=missing),
        headers=intruder.headers,
        **_request_kwargs(method),
    )
    assert response.json()["detail"] == f"Idea {idea['id']} not found"
    assert other.json()["detail"] == f"Idea {missing} not found"

    assert (await owner.get(ideas_url(owner, idea["id"]))).json() == idea
    assert (await list_ideas(owner))["total"] == 1


async def test_lists_show_only_your_own_ideas(users: UserFactory) -> None:
    alice = await users.create()
    bob = await users.create()
    await create_idea(alice, title="Alice one", tags=["shared"])
    await create_idea(alice, title="Alice two", tags=["shared"])
    await create_idea(bob, title="Bob one", tags=["shared"])

    assert await titles(alice) == ["Alice two", "Alice one"]
    assert await titles(bob) == ["Bob one"]
    assert (await list_ideas(alice, tags="shared"))["total"] == 2
    assert (await list_ideas(bob, search="one"))["total"] == 1
    assert (await list_ideas(alice))["total"] == 2
    assert (await list_ideas(bob))["total"] == 1


async def test_malformed_idea_id_is_422(users: UserFactory) -> None:
    user = await users.create()
    response = await user.get(ideas_url(user, "not-a-uuid"))
    assert_problem(response, 422, "VALIDATION_ERROR", "idea_id")


# -- get, patch, put, delete ---------------------------------------------------------------


async def test_get_unknown_idea_is_404(users: UserFactory) -> None:
    user = await users.create()
    response = await user.get(ideas_url(user, str(uuid.uuid4())))
    assert_problem(response, 404, "NOT_FOUND")


async def test_patch_changes_only_the_fields_sent(users: UserFactory) -> None:
    user = await users.create()
    idea = await create_idea(
        user,
        title="Draft me",
        notes="Keep",
        tags=["a"],
        priority="low",
        due_date="2026-03-01T00:00:00Z",
    )
    response = await user.patch(
        ideas_url(user, idea["id"]), json={"stage": "draft", "tags": ["b", "B", "c"]}
    )
    assert response.status_code == 200
    patched = response.json()
    assert patched["stage"] == "draft"
    assert patched["tags"] == ["b", "c"]
    for unchanged in ("title", "notes", "priority", "due_date", "created_at", "created_by"):
        assert patched[unchanged] == idea[unchanged]
    assert patched["updated_at"] > idea["updated_at"]
    assert (await user.get(ideas_url(user, idea["id"]))).json() == patched


async def test_patch_clears_nullable_fields(users: UserFactory) -> None:
    user = await users.create()
    idea = await create_idea(user, notes="Some notes", due_date="2026-03-01T00:00:00Z")
    patched = (
        await user.patch(ideas_url(user, idea["id"]), json={"notes": None, "due_date": None})
    ).json()
    assert patched["notes"] is None
    assert patched["due_date"] is None


async def test_patch_without_changes_keeps_updated_at(users: UserFactory) -> None:
    user = await users.create()
    idea = await create_idea(user, title="Same", stage="outline")
    for body in ({}, {"title": "Same", "stage": "outline"}):
        response = await user.patch(ideas_url(user, idea["id"]), json=body)
        assert response.status_code == 200
        assert response.json() == idea


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": None}, "title"),
        ({"title": " "}, "title"),
        ({"stage": None}, "stage"),
        ({"stage": "finished"}, "stage"),
        ({"priority": None}, "priority"),
        ({"tags": None}, "tags"),
        ({"tags": ["x" * 51]}, "tags.0"),
        ({"notes": "n" * 5001}, "notes"),
        ({"due_date": "2026-01-05"}, "due_date"),
        ({"owner": "someone"}, "owner"),
    ],
)
async def test_patch_refuses_invalid_input_and_keeps_the_idea(
    users: UserFactory, body: dict[str, Any], field: str
) -> None:
    user = await users.create()
    idea = await create_idea(user, title="Keep me", tags=["t"])
    response = await user.patch(ideas_url(user, idea["id"]), json=body)
    assert_problem(response, 422, "VALIDATION_ERROR", field)
    assert (await user.get(ideas_url(user, idea["id"]))).json() == idea


async def test_patch_unknown_idea_is_404(users: UserFactory) -> None:
    user = await users.create()
    response = await user.patch(ideas_url(user, str(uuid.uuid4())), json={"title": "x"})
    assert_problem(response, 404, "NOT_FOUND")


async def test_put_replaces_the_whole_idea(users: UserFactory) -> None:
    user = await users.create()
    idea = await create_idea(
        user,
        title="Old",
        notes="Old notes",
        stage="draft",
        priority="high",
        tags=["old"],
        due_date="2026-03-01T00:00:00Z",
    )
    response = await user.put(ideas_url(user, idea["id"]), json={"title": "New", "tags": ["n"]})
    assert response.status_code == 200
    replaced = response.json()
    assert replaced["title"] == "New"
    assert replaced["tags"] == ["n"]
    # Omitted fields take their defaults.
    assert replaced["notes"] is None
    assert replaced["stage"] == "idea"
    assert replaced["priority"] == "medium"
    assert replaced["due_date"] is None
    assert replaced["id"] == idea["id"]
    assert replaced["created_at"] == idea["created_at"]
    assert replaced["updated_at"] > idea["updated_at"]
    assert (await user.get(ideas_url(user, idea["id"]))).json() == replaced


async def test_put_needs_a_title_and_keeps_the_idea_when_invalid(users: UserFactory) -> None:
    user = await users.create()
    idea = await create_idea(user, title="Keep")
    response = await user.put(ideas_url(user, idea["id"]), json={"notes": "no title"})
    assert_problem(response, 422, "VALIDATION_ERROR", "title")
    response = await user.put(ideas_url(user, idea["id"]), json={"title": "ok", "x": 1})
    assert_problem(response, 422, "VALIDATION_ERROR", "x")
    assert (await user.get(ideas_url(user, idea["id"]))).json() == idea


async def test_put_unknown_idea_is_404(users: UserFactory) -> None:
    user = await users.create()
    response = await user.put(ideas_url(user, str(uuid.uuid4())), json={"title": "x"})
    assert_problem(response, 404, "NOT_FOUND")


async def test_delete_removes_the_idea(users: UserFactory) -> None:
    user = await users.create()
    keep = await create_idea(user, title="Keep")
    gone = await create_idea(user, title="Gone")

    response = await user.delete(ideas_url(user, gone["id"]))
    assert response.status_code == 204
    assert response.content == b""

    assert_problem(await user.get(ideas_url(user, gone["id"])), 404, "NOT_FOUND")
    assert_problem(await user.delete(ideas_url(user, gone["id"])), 404, "NOT_FOUND")
    listing = await list_ideas(user)
    assert listing["total"] == 1
    assert [item["id"] for item in listing["items"]] == [keep["id"]]


# -- search and filters --------------------------------------------------------------------


async def test_search_matches_title_or_notes_case_insensitively(users: UserFactory) -> None:
    user = await users.create()
    await create_idea(user, title="Camera Review", notes="mirrorless bodies")
    await create_idea(user, title="Travel vlog", notes="Best CAMERA bags for hiking")
    await create_idea(user, title="Recipe video", notes="pasta")

    assert sorted(await titles(user, search="camera")) == ["Camera Review", "Travel vlog"]
    assert await titles(user, search="MIRRORLESS") == ["Camera Review"]
    assert await titles(user, search="ag") == ["Travel vlog"]  # under three characters
    assert await titles(user, search="  pasta ") == ["Recipe video"]  # trimmed
    assert await titles(user, search="nothing like it") == []
    assert (await list_ideas(user, search=""))["total"] == 3  # empty search is no filter


async def test_search_finds_non_ascii_text(users: UserFactory) -> None:
    """Case is ignored for ASCII on every backend (beyond ASCII, PostgreSQL follows the
    database's character classification; SQLite compares other characters exactly)."""
    user = await users.create()
    await create_idea(user, title="ÉCOLE d'été", notes="Straße und Fluss")
    await create_idea(user, title="평범한 아이디어")

    assert await titles(user, search="d'été") == ["ÉCOLE d'été"]
    assert await titles(user, search="Straße UND") == ["ÉCOLE d'été"]
    assert await titles(user, search="아이디") == ["평범한 아이디어"]
    assert await titles(user, search="이디") == ["평범한 아이디어"]  # two characters


@pytest.mark.parametrize("narrowed", [{}, {"stage": "idea"}], ids=["search", "search+stage"])
async def test_search_treats_wildcards_literally(
    users: UserFactory, narrowed: dict[str, str]
) -> None:
    """With a stage, PostgreSQL tests the pattern row by row (`texticlike`) instead of through
    the trigram indexes: the same escapes hold either way."""
    user = await users.create()
    await create_idea(user, title="50% off", notes="plain")
    await create_idea(user, title="snake_case names")
    await create_idea(user, title="back\\slash")
    await create_idea(user, title="Nothing special", notes="SNAKE CASE, 50 OFF, BACKSLASH")

    assert await titles(user, search="%", **narrowed) == ["50% off"]
    assert await titles(user, search="0% o", **narrowed) == ["50% off"]
    assert await titles(user, search="_", **narrowed) == ["snake_case names"]
    assert await titles(user, search="e_c", **narrowed) == ["snake_case names"]
    assert await titles(user, search="\\", **narrowed) == ["back\\slash"]
    assert await titles(user, search="k\\s", **narrowed) == ["back\\slash"]
    assert await titles(user, search="SNAKE_case", **narrowed) == ["snake_case names"]


async def test_a_staged_search_finds_matches_beyond_its_walk(
    users: UserFactory, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL walks the stage for at most `WALK_BUDGET` ideas a page, then reads the page
    again through the trigram indexes: every match is found, in order, page by page. A first
    page that came up short marks the search as rare."""
    monkeypatch.setattr(queries, "WALK_BUDGET", 4)
    user = await users.create()

    async def draft(title: str) -> str:
        return (await create_idea(user, title=title, stage="draft", tags=["keep"]))["id"]

    # Oldest first: two needles, hay, two matches, five others, three matches.
    needles = [await draft("needle 0"), await draft("needle 1")]
    for i in range(4):
        await draft(f"hay {i}")
    found = [await draft("match 0"), await draft("match 1")]
    for i in range(5):
        await draft(f"other {i}")
    found += [await draft(f"match {i}") for i in range(2, 5)]
    await create_idea(user, title="match elsewhere", stage="idea", tags=["keep"])
    rare_before = len(queries.rare_searches)

    # The first page fills within the walk; the second does not (one match among the four
    # ideas after the cursor) and is read again; the third walks one idea, and is read again.
    ids, pages = await _walk(user, search="match", stage="draft", tags="keep", limit=2)
    assert ids == list(reversed(found))
    assert [page["total"] for page in pages] == [5, 5, 5]
    assert len(queries.rare_searches) == rare_before  # its first page filled

    # The four newest drafts hold no needle: the search goes to the trigram indexes.
    ids, pages = await _walk(user, search="needle", stage="draft", limit=1)
    assert ids == list(reversed(needles))
    assert [page["total"] for page in pages] == [2, 2]
    assert len(queries.rare_searches) == rare_before + (backend == "postgresql")
    assert await titles(user, search="needle", stage="draft") == ["needle 1", "needle 0"]
    assert await titles(user, search="nowhere", stage="draft") == []


async def test_quotes_in_search_and_tags_are_data(users: UserFactory) -> None:
    """Search terms and tag keys reach PostgreSQL written into the SQL text (for the planner);
    quotes in them stay data."""
    user = await users.create()
    await create_idea(user, title="It's Bob's idea", tags=["it's", "x'); DROP TABLE ideas; --"])
    await create_idea(user, title="Other")
    hostile = "'; DROP TABLE ideas; --"

    assert await titles(user, search="it's") == ["It's Bob's idea"]
    assert await titles(user, search="'s i") == ["It's Bob's idea"]
    assert await titles(user, search=hostile) == []
    assert await titles(user, search=hostile, stage="idea") == []
    assert await titles(user, tags="IT'S") == ["It's Bob's idea"]
    assert await titles(user, tags="x'); drop table ideas; --", search="bob") == ["It's Bob's idea"]
    assert await titles(user, tags=hostile) == []
    assert (await list_ideas(user))["total"] == 2


async def test_stage_and_priority_filters(users: UserFactory) -> None:
    user = await users.create()
    await create_idea(user, title="a", stage="draft", priority="high")
    await create_idea(user, title="b", stage="draft", priority="low")
    await create_idea(user, title="c", stage="published", priority="high")

    assert sorted(await titles(user, stage="draft")) == ["a", "b"]
    assert sorted(await titles(user, priority="high")) == ["a", "c"]
    assert await titles(user, stage="draft", priority="high") == ["a"]
    assert await titles(user, stage="outline") == []
    assert (await list_ideas(user, stage="draft"))["total"] == 2


async def test_tags_filter_matches_any_tag_case_insensitively(users: UserFactory) -> None:
    user = await users.create()
    await create_idea(user, title="blog only", tags=["Blog"])
    await create_idea(user, title="video only", tags=["video"])
    await create_idea(user, title="both", tags=["blog", "video"])
    await create_idea(user, title="neither", tags=["podcast"])
    await create_idea(user, title="untagged")

    assert sorted(await titles(user, tags="blog")) == ["blog only", "both"]
    assert sorted(await titles(user, tags="BLOG,video")) == ["blog only", "both", "video only"]
    assert sorted(await titles(user, tags=" blog , ,video ")) == [
        "blog only",
        "both",
        "video only",
    ]
    # The parameter may also be repeated.
    response = await user.get(ideas_url(user), params=[("tags", "video"), ("tags", "podcast")])
    assert sorted(item["title"] for item in response.json()["items"]) == [
        "both",
        "neither",
        "video only",
    ]
    assert await titles(user, tags="vid") == []  # whole tags, not substrings
    assert (await list_ideas(user, tags="blog,video"))["total"] == 3
    assert (await list_ideas(user, tags=","))["total"] == 5  # no tags given: no filter


async def test_tags_filter_with_unusual_characters(users: UserFactory) -> None:
    user = await users.create()
    await create_idea(user, title="korean", tags=["유튜브"])
    await create_idea(user, title="quoted", tags=['say "hi"'])
    await create_idea(user, title="slashed", tags=["a\\b"])
    await create_idea(user, title="lookalike", tags=['x"hi', "A\\\\b"])

    assert await titles(user, tags="유튜브") == ["korean"]
    assert await titles(user, tags='SAY "HI"') == ["quoted"]
    assert await titles(user, tags="a\\b") == ["slashed"]
    assert await titles(user, tags="hi") == []
    assert await titles(user, tags='hi"') == []


async def test_filters_combine(users: UserFactory) -> None:
    user = await users.create()
    await create_idea(user, title="Video script", stage="draft", tags=["youtube"])
    await create_idea(user, title="Video ideas", stage="idea", tags=["youtube"])
    await create_idea(user, title="Video essay", stage="draft", tags=["blog"])
    await create_idea(user, title="Audio script", stage="draft", tags=["youtube"])

    result = await list_ideas(user, search="video", stage="draft", tags="youtube,podcast")
    assert [item["title"] for item in result["items"]] == ["Video script"]
    assert result["total"] == 1
    # Two-character term next to other filters.
    assert await titles(user, search="sc", stage="draft", tags="youtube") == [
        "Audio script",
        "Video script",
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "due_date"}, "sort"),
        ({"order": "up"}, "order"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"stage": "done"}, "stage"),
        ({"priority": "urgent"}, "priority"),
        ({"tags": "x" * 51}, "tags"),
        ({"tags": ",".join(f"t{i}" for i in range(21))}, "tags"),
        ({"search": "s" * 201}, "search"),
        ({"search": "nul\x00"}, "search"),
    ],
)
async def test_list_refuses_invalid_parameters(
    users: UserFactory, params: dict[str, Any], field: str
) -> None:
    user = await users.create()
    response = await user.get(ideas_url(user), params=params)
    assert_problem(response, 422, "VALIDATION_ERROR", field)


async def test_list_ignores_unknown_parameters(users: UserFactory) -> None:
    user = await users.create()
    await create_idea(user)
    assert (await list_ideas(user, _="1700000000", utm_source="mail"))["total"] == 1


# -- sorting ---------------------------------------------------------------------------------


async def _sorting_fixture(user: TestUser) -> list[dict[str, Any]]:
    specs = [
        {"title": "delta", "stage": "draft", "priority": "low"},
        {"title": "alpha", "stage": "published", "priority": "high"},
        {"title": "charlie", "stage": "idea", "priority": "medium"},
        {"title": "bravo", "stage": "outline", "priority": "high"},
        {"title": "alpha", "stage": "draft", "priority": "low"},
        {"title": "echo", "stage": "idea", "priority": "medium"},
    ]
    ideas = [await create_idea(user, **spec) for spec in specs]
    # Touch two early ideas so updated_at order differs from created_at order.
    for idea in (ideas[2], ideas[0]):
        response = await user.patch(ideas_url(user, idea["id"]), json={"notes": "touched"})
        assert response.status_code == 200
    listing = await list_ideas(user, limit=100)
    return listing["items"]  # type: ignore[no-any-return]


_STAGE_RANK = {"idea": 1, "outline": 2, "draft": 3, "published": 4}
_PRIORITY_RANK = {"low": 1, "medium": 2, "high": 3}


def _expected(items: list[dict[str, Any]], sort: str, order: str) -> list[str]:
    def key(item: dict[str, Any]) -> tuple[Any, ...]:
        created = datetime.fromisoformat(item["created_at"])
        idea_id = uuid.UUID(item["id"])
        if sort == "title":
            return (item["title"], idea_id)
        if sort == "priority":
            return (_PRIORITY_RANK[item["priority"]], created, idea_id)
        if sort == "stage":
            return (_STAGE_RANK[item["stage"]], created, idea_id)
        return (datetime.fromisoformat(item[sort]), idea_id)

    return [item["id"] for item in sorted(items, key=key, reverse=order == "desc")]


@pytest.mark.parametrize("sort", ["created_at", "updated_at", "title", "priority", "stage"])
@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_sort_orders(users: UserFactory, sort: str, order: str) -> None:
    user = await users.create()
    items = await _sorting_fixture(user)
    listing = await list_ideas(user, sort=sort, order=order, limit=100)
    assert [item["id"] for item in listing["items"]] == _expected(items, sort, order)


async def test_priority_and_stage_sort_by_meaning(users: UserFactory) -> None:
    user = await users.create()
    await _sorting_fixture(user)
    by_priority = [i["priority"] for i in (await list_ideas(user, sort="priority"))["items"]]
    assert by_priority == ["high", "high", "medium", "medium", "low", "low"]
    by_stage = [i["stage"] for i in (await list_ideas(user, sort="stage", order="asc"))["items"]]
    assert by_stage == ["idea", "idea", "outline", "draft", "draft", "published"]


async def test_default_order_is_newest_first(users: UserFactory) -> None:
    user = await users.create()
    for title in ("first", "second", "third"):
        await create_idea(user, title=title)
    assert await titles(user) == ["third", "second", "first"]
    assert await titles(user, order="asc") == ["first", "second", "third"]


# -- pagination, cursors and totals --------------------------------------------------------


async def test_offset_pagination(users: UserFactory) -> None:
    user = await users.create()
    for i in range(7):
        await create_idea(user, title=f"idea {i}")

    first = await list_ideas(user, limit=3)
    assert [i["title"] for i in first["items"]] == ["idea 6", "idea 5", "idea 4"]
    assert (first["total"], first["limit"], first["offset"], first["has_more"]) == (7, 3, 0, True)
    assert first["next_cursor"]

    last = await list_ideas(user, limit=3, offset=6)
    assert [i["title"] for i in last["items"]] == ["idea 0"]
    assert (last["total"], last["offset"], last["has_more"], last["next_cursor"]) == (
        7,
        6,
        False,
        None,
    )

    beyond = await list_ideas(user, limit=3, offset=50)
    assert beyond["items"] == []
    assert (beyond["total"], beyond["has_more"]) == (7, False)

    exact = await list_ideas(user, limit=7)
    assert (len(exact["items"]), exact["has_more"], exact["next_cursor"]) == (7, False, None)


async def _walk(
    user: TestUser, with_cursor: dict[str, Any] | None = None, **params: Any
) -> tuple[list[str], list[dict[str, Any]]]:
    """Follow `next_cursor` from the first page to the end (`with_cursor` is sent alongside
    every cursor)."""
    ids: list[str] = []
    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        extra: dict[str, Any] = {"cursor": cursor, **(with_cursor or {})} if cursor else {}
        page = await list_ideas(user, **params, **extra)
        pages.append(page)
        ids.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        assert page["has_more"] is (cursor is not None)
        if cursor is None:
            return ids, pages
        assert len(pages) < 50, "cursor paging does not end"


@pytest.mark.parametrize("sort", ["created_at", "updated_at", "title", "priority", "stage"])
@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_cursor_walks_every_idea_exactly_once(
    users: UserFactory, sort: str, order: str
) -> None:
    user = await users.create()
    await _sorting_fixture(user)
    # More rows with equal sort keys (ties are broken by created_at and id).
    for _ in range(5):
        await create_idea(user, title="alpha", stage="draft", priority="low")
    items = (await list_ideas(user, limit=100))["items"]

    # `offset` is ignored once a cursor is given.
    ids, pages = await _walk(user, with_cursor={"offset": 5}, sort=sort, order=order, limit=3)
    assert ids == _expected(items, sort, order)
    assert len(ids) == len(set(ids)) == 11
    assert all(page["total"] == 11 for page in pages)
    assert all(page["offset"] == 0 for page in pages[1:])


async def test_cursor_with_filters_keeps_filtered_totals(users: UserFactory) -> None:
    user = await users.create()
    wanted = [(await create_idea(user, title=f"match {i}", tags=["keep"]))["id"] for i in range(7)]
    for i in range(4):
        await create_idea(user, title=f"other {i}", tags=["drop"])

    ids, pages = await _walk(user, tags="keep", limit=2)
    assert ids == list(reversed(wanted))
    assert all(page["total"] == 7 for page in pages)


async def test_malformed_cursors_are_422(users: UserFactory) -> None:
    user = await users.create()
    for i in range(3):
        await create_idea(user, title=f"i{i}")
    cursor = (await list_ideas(user, limit=1))["next_cursor"]

    def b64(value: Any) -> str:
        raw = json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    bad = [
        "not a cursor!",
        "!!!!",
        b64({"not": "a list"}),
        b64(["v1", "created_at", "desc", ["yesterday", str(uuid.uuid4())]]),
        b64(["v1", "created_at", "desc", ["2026-01-01T00:00:00", str(uuid.uuid4())]]),
        b64(["v1", "created_at", "desc", ["2026-01-01T00:00:00+00:00"]]),
        b64(["v1", "created_at", "desc", ["2026-01-01T00:00:00+00:00", "not-a-uuid"]]),
        b64(["v9", "created_at", "desc", ["2026-01-01T00:00:00+00:00", str(uuid.uuid4())]]),
        b64(["v1", "priority", "desc", ["urgent", "2026-01-01T00:00:00+00:00", str(uuid.uuid4())]]),
        cursor[:-4],
    ]
    for value in bad:
        response = await user.get(ideas_url(user), params={"cursor": value})
        assert_problem(response, 422, "VALIDATION_ERROR", "cursor")

    # A real cursor, but for another sort or order.
    for params in ({"sort": "title"}, {"order": "asc"}):
        response = await user.get(ideas_url(user), params={"cursor": cursor, **params})
        assert_problem(response, 422, "VALIDATION_ERROR", "cursor")


async def test_totals_follow_creates_and_deletes(users: UserFactory) -> None:
    user = await users.create()
    other = await users.create()
    assert (await list_ideas(user))["total"] == 0

    ideas = [
        await create_idea(
            user,
            title=f"idea {i}",
            stage="draft" if i % 2 else "idea",
            tags=["even"] if i % 2 == 0 else ["odd"],
        )
        for i in range(6)
    ]
    await create_idea(other, title="not counted")
    assert (await list_ideas(user))["total"] == 6
    assert (await list_ideas(user, limit=2))["total"] == 6
    assert (await list_ideas(user, stage="draft"))["total"] == 3
    assert (await list_ideas(user, stage="draft", limit=1))["total"] == 3  # counted
    assert (await list_ideas(user, tags="even", limit=2, offset=10))["total"] == 3

    for idea in ideas[:2]:
        assert (await user.delete(ideas_url(user, idea["id"]))).status_code == 204
    # A second delete of the same idea changes nothing.
    assert (await user.delete(ideas_url(user, ideas[0]["id"]))).status_code == 404

    assert (await list_ideas(user))["total"] == 4
    assert (await list_ideas(user, stage="draft"))["total"] == 2
    assert (await list_ideas(user, stage="draft", limit=1))["total"] == 2
    assert (await list_ideas(user, tags="even"))["total"] == 2
    assert (await list_ideas(user, search="idea"))["total"] == 4
    assert (await list_ideas(other))["total"] == 1

    await create_idea(user, title="late", stage="draft")
    assert (await list_ideas(user))["total"] == 5
    assert (await list_ideas(user, stage="draft"))["total"] == 3


async def test_filtered_totals_follow_changes(users: UserFactory) -> None:
    """Totals of filtered lists stay right after PATCH and PUT (the counted totals are reused
    only until the user's ideas change)."""
    user = await users.create()
    ideas = [
        await create_idea(user, title=f"draft {i}", stage="draft", tags=["blog"]) for i in range(3)
    ]
    params = {"stage": "draft", "limit": 1}  # a full page: the total is counted
    assert (await list_ideas(user, **params))["total"] == 3
    assert (await list_ideas(user, **params))["total"] == 3

    await user.patch(ideas_url(user, ideas[0]["id"]), json={"stage": "published"})
    assert (await list_ideas(user, **params))["total"] == 2
    assert (await list_ideas(user, stage="published", limit=1))["total"] == 1

    await user.put(ideas_url(user, ideas[1]["id"]), json={"title": "retitled", "tags": ["vlog"]})
    assert (await list_ideas(user, **params))["total"] == 1
    assert (await list_ideas(user, tags="blog", limit=1))["total"] == 2
    assert (await list_ideas(user, search="draft", limit=1))["total"] == 2
    assert (await list_ideas(user, search="retitled", limit=1))["total"] == 1

    # A change that fails validation changes nothing, totals included.
    response = await user.patch(ideas_url(user, ideas[2]["id"]), json={"stage": "gone"})
    assert response.status_code == 422
    assert (await list_ideas(user, **params))["total"] == 1
