"""The list and the single idea resolve their own parameters (`creativeflow.http.direct`):
they must read, refuse and document them exactly as a declared FastAPI route would."""

from __future__ import annotations

import httpx

from tests.factories import UserFactory
from tests.ideas.support import assert_problem, create_idea, ideas_url, list_ideas

LIST_PARAMETERS = {
    "search",
    "stage",
    "priority",
    "tags",
    "sort",
    "order",
    "limit",
    "offset",
    "cursor",
}


async def test_query_parameters_read_as_fastapi_reads_them(users: UserFactory) -> None:
    user = await users.create()
    for title, tags in (("one", ["blog"]), ("two", ["video"]), ("three", ["podcast"])):
        await create_idea(user, title, tags=tags)

    # A repeated scalar takes its last value; a list takes every value; unknown ones are ignored.
    response = await user.get(
        ideas_url(user), params=[("limit", "1"), ("limit", "2"), ("utm_source", "mail")]
    )
    assert response.status_code == 200, response.text
    assert response.json()["limit"] == 2
    page = await list_ideas(user, tags=["blog", "video"], sort="title", order="asc")
    assert [item["title"] for item in page["items"]] == ["one", "two"]
    # Whitespace is stripped before validation, as the model says.
    assert (await list_ideas(user, search="  thr  "))["total"] == 1


async def test_bad_parameters_are_one_422_naming_each(users: UserFactory) -> None:
    user = await users.create()
    response = await user.get(
        ideas_url(user), params={"limit": "0", "order": "sideways", "stage": "done"}
    )
    assert_problem(response, 422, "VALIDATION_ERROR")
    assert {error["field"] for error in response.json()["errors"]} == {"limit", "order", "stage"}

    response = await user.get(ideas_url(user, "not-a-uuid"))
    assert_problem(response, 422, "VALIDATION_ERROR", "idea_id")
    response = await user.get(f"/api/v1/{'x' * 256}/ideas")
    assert_problem(response, 422, "VALIDATION_ERROR", "user_id")


async def test_credentials_are_checked_before_parameters(
    users: UserFactory, client: httpx.AsyncClient
) -> None:
    user = await users.create()
    response = await client.get(ideas_url(user), params={"limit": "0"})
    assert_problem(response, 401, "NOT_AUTHENTICATED")
    other = await users.create()
    response = await user.get(ideas_url(other), params={"limit": "0"})
    assert_problem(response, 403, "PERMISSION_DENIED")


async def test_the_direct_routes_are_documented(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    collection = document["paths"]["/api/v1/{user_id}/ideas"]["get"]
    item = document["paths"]["/api/v1/{user_id}/ideas/{idea_id}"]["get"]

    parameters = {parameter["name"]: parameter for parameter in collection["parameters"]}
    assert set(parameters) == LIST_PARAMETERS | {"user_id"}
    assert parameters["user_id"]["in"] == "path" and parameters["user_id"]["required"]
    assert parameters["limit"]["schema"]["maximum"] == 100
    assert parameters["limit"]["description"]
    # Enums are spelt out in place: a parameter cannot point into a model's own definitions.
    stage_schema = str(parameters["stage"]["schema"])
    assert "$defs" not in stage_schema and "published" in stage_schema
    assert {p["name"] for p in item["parameters"]} == {"user_id", "idea_id"}
    assert {p["name"]: p for p in item["parameters"]}["idea_id"]["schema"]["format"] == "uuid"

    for operation in (collection, item):
        assert {"OAuth2PasswordBearer": []} in operation["security"]
        assert {"APIKeyHeader": []} in operation["security"]
        assert {"200", "401", "403", "422"} <= set(operation["responses"])
    assert collection["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"OAuth2PasswordBearer", "APIKeyHeader"} <= set(
        document["components"]["securitySchemes"]
    )


async def test_direct_routes_are_served_before_the_router_and_only_for_their_methods(
    users: UserFactory, client: httpx.AsyncClient
) -> None:
    """`DirectDispatch` answers GET on the two routes; every other method or path on them is
    the router's, exactly as before."""
    user = await users.create()
    idea = await create_idea(user, "Dispatched")

    assert (await user.get(ideas_url(user, idea["id"]))).json() == idea
    head = await client.head(ideas_url(user), headers=user.headers)
    assert head.status_code == 405  # GET routes take no HEAD, dispatched or not
    patched = await user.patch(ideas_url(user, idea["id"]), json={"title": "Routed"})
    assert patched.status_code == 200 and patched.json()["title"] == "Routed"
    assert (await user.get(ideas_url(user, idea["id"]))).json()["title"] == "Routed"
    assert (await user.get(ideas_url(user) + "/" + idea["id"] + "/extra")).status_code == 404


async def test_direct_routes_are_measured_under_their_full_template(
    users: UserFactory, client: httpx.AsyncClient
) -> None:
    user = await users.create()
    await list_ideas(user)
    await user.get(ideas_url(user, "01234567-89ab-7def-8123-456789abcdef"))
    samples = (await client.get("/metrics")).text.splitlines()
    requests = [line for line in samples if line.startswith("creativeflow_http_requests_total")]
    assert any('route="/api/v1/{user_id}/ideas"' in line and 'status="200"' in line
               for line in requests)  # fmt: skip
    assert any('route="/api/v1/{user_id}/ideas/{idea_id}"' in line and 'status="404"' in line
               for line in requests)  # fmt: skip
