from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from creativeflow.datasources.base import ConnectContext, SourceError, SourceErrorCode
from creativeflow.datasources.google.google_sheets import (
    API,
    SOURCE_TYPE,
    GoogleSheetsConfig,
    column_letter,
    quoted_range,
)
from tests.datasources.google.fakes import (
    API_KEY,
    WRONG_API_KEY,
    FakeGoogle,
    google_error,
    key_file,
    short_context,
)
from tests.datasources.servers import closed_port

SPREADSHEET = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"
ECHOING = "1EchoEchoEchoEchoEchoEchoEchoEchoEchoEchoEc"
GRIDS: dict[str, list[list[str]]] = {
    "Videos 2024": [
        ["title", "views", "ctr", "published", "live", ""],
        ["Launch", "1200", "0.05", "2024-01-02", "FALSE", "x"],
        ["Behind the scenes", "800", "0.031", "2024-02-10", "TRUE"],
        ["Q&A", "", "0.1", "2024-03-01", "FALSE"],
        [],
        ["Recap", "15", "1", "2024-04-01", "TRUE"],
    ],
    "Bob's notes": [
        ["Exported 2024-05-01"],
        ["name", "name", "score"],
        ["a", "b", "1"],
        ["c", "d", "2.5"],
    ],
    "Empty": [],
}
SHEETS: list[dict[str, Any]] = [
    {"sheetId": 0, "title": "Videos 2024", "index": 0, "sheetType": "GRID"},
    {"sheetId": 7, "title": "Bob's notes", "index": 1, "sheetType": "GRID"},
    {"sheetId": 9, "title": "Chart1", "index": 2, "sheetType": "OBJECT"},
    {"sheetId": 11, "title": "Empty", "index": 3, "sheetType": "GRID"},
]


def letter_index(letters: str) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def parse_range(text: str) -> tuple[str, int, int, int, int] | None:
    """An A1 range as the Sheets API reads it: ('title', first row, last row, first col,
    last col), 1-based rows and 0-based columns; None when it does not parse."""
    found = re.fullmatch(r"'((?:[^']|'')+)'!([A-Z]*)(\d+):([A-Z]*)(\d+)", text)
    if found is None:
        return None
    title, first_col, first, last_col, last = found.groups()
    return (
        title.replace("''", "'"),
        int(first),
        int(last),
        letter_index(first_col) if first_col else 0,
        letter_index(last_col) if last_col else 10_000,
    )


def values(text: str) -> dict[str, Any] | None:
    parsed = parse_range(text)
    if parsed is None or parsed[0] not in GRIDS:
        return None
    title, first, last, first_col, last_col = parsed
    rows = [row[first_col : last_col + 1] for row in GRIDS[title][first - 1 : last]]
    # Trailing empty cells and rows are left out, as the API does.
    rows = [row[: max((i + 1 for i, c in enumerate(row) if c), default=0)] for row in rows]
    while rows and not rows[-1]:
        rows.pop()
    answer: dict[str, Any] = {"range": text, "majorDimension": "ROWS"}
    if rows:
        answer["values"] = rows
    return answer


def sheets_app(fake: FakeGoogle) -> Starlette:
    def missing() -> Response:
        return google_error(404, "Requested entity was not found.", "NOT_FOUND")

    def bad_range(text: str) -> Response:
        return google_error(400, f"Unable to parse range: {text}", "INVALID_ARGUMENT")

    async def spreadsheet(request: Request) -> Response:
        refused = fake.refused(request)
        if refused is not None:
            return refused
        if request.path_params["id"] == ECHOING:
            # A proxy that quotes the request it did not like.
            return google_error(400, f"bad request: {request.url}", "INVALID_ARGUMENT")
        if request.path_params["id"] != SPREADSHEET:
            return missing()
        assert request.query_params["fields"] == "properties.title,sheets.properties"
        sheets = []
        for properties in SHEETS:
            grid = GRIDS.get(properties["title"], [])
            sheets.append(
                {
                    "properties": {
                        **properties,
                        "gridProperties": {
                            "rowCount": max(len(grid), 1000),
                            "columnCount": 26,
                        },
                    }
                }
            )
        return JSONResponse({"properties": {"title": "Channel tracker"}, "sheets": sheets})

    async def batch_get(request: Request) -> Response:
        refused = fake.refused(request)
        if refused is not None:
            return refused
        if request.path_params["id"] != SPREADSHEET:
            return missing()
        answers = []
        for text in request.query_params.getlist("ranges"):
            answer = values(text)
            if answer is None:
                return bad_range(text)
            answers.append(answer)
        return JSONResponse({"spreadsheetId": SPREADSHEET, "valueRanges": answers})

    async def get_values(request: Request) -> Response:
        refused = fake.refused(request)
        if refused is not None:
            return refused
        if request.path_params["id"] != SPREADSHEET:
            return missing()
        text = request.path_params["range"]
        answer = values(text)
        return bad_range(text) if answer is None else JSONResponse(answer)

    return Starlette(
        routes=[
            Route("/token", fake.token, methods=["POST"]),
            Route("/v4/spreadsheets/{id}/values:batchGet", batch_get),
            Route("/v4/spreadsheets/{id}/values/{range:path}", get_values),
            Route("/v4/spreadsheets/{id}", spreadsheet),
        ]
    )


@pytest.fixture(scope="module")
def fake() -> FakeGoogle:
    return FakeGoogle(scope=API.scope)


@pytest.fixture(scope="module")
def server(fake: FakeGoogle) -> Iterator[str]:
    from tests.providers.fake_servers import serve_app

    with serve_app(sheets_app(fake)) as base_url:
        yield base_url


def service_account(server: str, **extra: Any) -> dict[str, Any]:
    return {
        "mode": "service_account",
        "service_account_key": key_file(f"{server}/token", **extra),
    }


def config(base_url: str, **overrides: Any) -> GoogleSheetsConfig:
    data: dict[str, Any] = {
        "type": "google_sheets",
        "spreadsheet_id": SPREADSHEET,
        "auth": service_account(base_url),
        "api_base_url": base_url,
    }
    data.update(overrides)
    return GoogleSheetsConfig.model_validate(data)


# -- validation ------------------------------------------------------------------------------


def test_a_good_config_validates() -> None:
    parsed = GoogleSheetsConfig.model_validate(
        {
            "type": "google_sheets",
            "spreadsheet_id": f"https://docs.google.com/spreadsheets/d/{SPREADSHEET}/edit#gid=0",
            "auth": {"mode": "api_key", "api_key": API_KEY},
        }
    )
    assert parsed.spreadsheet_id == SPREADSHEET
    assert parsed.header_row == 1
    assert parsed.hosts() == [("sheets.googleapis.com", 443)]
    with_key = config("http://127.0.0.1:8123")
    assert with_key.hosts() == [("127.0.0.1", 8123), ("127.0.0.1", 8123)]
    google_token = config(
        "https://sheets.googleapis.com",
        auth={"mode": "service_account", "service_account_key": key_file(None)},
    )
    assert google_token.hosts() == [("sheets.googleapis.com", 443), ("oauth2.googleapis.com", 443)]
    shared = config(
        "https://sheets.googleapis.com",
        auth={"mode": "service_account", "service_account_key": {"credential_id": str(uuid4())}},
    )
    # A shared key is checked when the service resolves it; its token host is Google's.
    assert shared.hosts()[1] == ("oauth2.googleapis.com", 443)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"spreadsheet_id": "short"}, "spreadsheet_id"),
        ({"spreadsheet_id": "1Bxi MVs0XRA5nFMdKvBdBZjgmUUqptlbs74"}, "spreadsheet_id"),
        ({"spreadsheet_id": "https://example.com/spreadsheets/d/abc"}, "spreadsheet_id"),
        ({"header_row": 0}, "header_row"),
        ({"auth": {"mode": "api_key"}}, "auth.api_key"),
        ({"auth": {"mode": "none"}}, "auth"),
        ({"auth": {"mode": "service_account"}}, "auth.service_account_key"),
        ({"api_base_url": "sheets.googleapis.com"}, "api_base_url"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_mistakes_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        config("http://127.0.0.1:1", **overrides)
    locations = [".".join(str(part) for part in error["loc"]) for error in raised.value.errors()]
    assert any(
        location.replace(".service_account.", ".").replace(".api_key.", ".").startswith(field)
        for location in locations
    ), locations


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ("not json", "JSON"),
        ('["a"]', "JSON object"),
        (key_file(None, client_email="nobody"), "client_email"),
        (key_file(None, private_key="abc"), "PEM"),
        (
            key_file(
                None,
                private_key="-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            ),
            "readable",
        ),
        (key_file("ftp://tokens.example.com/"), "token_uri"),
    ],
)
def test_a_bad_key_file_says_what_is_wrong(document: str, says: str) -> None:
    with pytest.raises(ValidationError) as raised:
        config(
            "http://127.0.0.1:1", auth={"mode": "service_account", "service_account_key": document}
        )
    error = raised.value.errors()[0]
    assert error["loc"][-1] == "service_account_key"
    assert says in error["msg"]
    assert "BEGIN PRIVATE KEY-----\nMII" not in str(raised.value)


def test_ranges_quote_the_sheet() -> None:
    assert quoted_range("Bob's notes", "A1:ZZ11") == "'Bob''s notes'!A1:ZZ11"
    assert [column_letter(i) for i in (0, 25, 26, 701)] == ["A", "Z", "AA", "ZZ"]


# -- check, discover, preview ----------------------------------------------------------------


async def test_check_with_a_service_account(
    server: str, fake: FakeGoogle, context: ConnectContext
) -> None:
    result = await SOURCE_TYPE.connector.check(config(server), context)
    assert result.server_version == "Sheets API v4"
    assert result.details == {"title": "Channel tracker", "sheets": 3}
    claims = fake.assertions[-1]
    assert claims["scope"] == "https://www.googleapis.com/auth/spreadsheets.readonly"
    assert claims["aud"] == f"{server}/token"
    assert claims["iss"] == "reader@creativeflow-test.iam.gserviceaccount.com"


async def test_check_with_an_api_key(server: str, context: ConnectContext) -> None:
    auth = {"mode": "api_key", "api_key": API_KEY}
    result = await SOURCE_TYPE.connector.check(config(server, auth=auth), context)
    assert result.details["title"] == "Channel tracker"


async def test_discover_lists_grid_sheets_with_their_columns(
    server: str, context: ConnectContext
) -> None:
    discovery = await SOURCE_TYPE.connector.discover(config(server), context)
    assert [o.name for o in discovery.objects] == ["Videos 2024", "Bob's notes", "Empty"]
    videos = discovery.objects[0]
    assert videos.kind == "sheet"
    assert [(c.name, c.type) for c in videos.columns or []] == [
        ("title", "string"),
        ("views", "integer"),
        ("ctr", "number"),
        ("published", "date"),
        ("live", "boolean"),
        ("F", "string"),
    ]
    assert videos.details == {"sheet_id": 0, "index": 0, "rows": 1000, "columns": 26}
    assert discovery.objects[2].columns == []


async def test_discover_reads_the_configured_header_row(
    server: str, context: ConnectContext
) -> None:
    discovery = await SOURCE_TYPE.connector.discover(config(server, header_row=2), context)
    notes = discovery.objects[1]
    assert [(c.name, c.type) for c in notes.columns or []] == [
        ("name", "string"),
        ("name_2", "string"),
        ("score", "number"),
    ]


async def test_preview_types_the_cells(server: str, context: ConnectContext) -> None:
    preview = await SOURCE_TYPE.connector.preview(config(server), context, "Videos 2024", 10)
    assert not preview.truncated
    assert [(c.name, c.type, c.nullable) for c in preview.columns] == [
        ("title", "string", True),
        ("views", "integer", True),
        ("ctr", "number", True),
        ("published", "date", True),
        ("live", "boolean", True),
        ("F", "string", True),
    ]
    assert preview.rows[0] == {
        "title": "Launch",
        "views": 1200,
        "ctr": 0.05,
        "published": "2024-01-02",
        "live": False,
        "F": "x",
    }
    assert preview.rows[2]["views"] is None
    assert preview.rows[3] == dict.fromkeys(["title", "views", "ctr", "published", "live", "F"])
    assert preview.rows[4]["ctr"] == 1.0
    assert len(preview.rows) == 5


async def test_preview_stops_at_the_limit(server: str, context: ConnectContext) -> None:
    preview = await SOURCE_TYPE.connector.preview(config(server), context, "Videos 2024", 2)
    assert preview.truncated
    assert [row["title"] for row in preview.rows] == ["Launch", "Behind the scenes"]


async def test_preview_of_a_quoted_title_below_a_header_row(
    server: str, context: ConnectContext
) -> None:
    preview = await SOURCE_TYPE.connector.preview(
        config(server, header_row=2, auth={"mode": "api_key", "api_key": API_KEY}),
        context,
        "Bob's notes",
        10,
    )
    assert preview.rows == [
        {"name": "a", "name_2": "b", "score": 1.0},
        {"name": "c", "name_2": "d", "score": 2.5},
    ]


async def test_preview_of_an_empty_sheet(server: str, context: ConnectContext) -> None:
    preview = await SOURCE_TYPE.connector.preview(config(server), context, "Empty", 10)
    assert (preview.columns, preview.rows, preview.truncated) == ([], [], False)


@pytest.mark.parametrize("name", ["Nope", "Chart1", "videos 2024", "'Videos 2024'!A1"])
async def test_an_unknown_sheet_is_not_found(
    server: str, context: ConnectContext, name: str
) -> None:
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.preview(config(server), context, name, 10)
    assert raised.value.code == SourceErrorCode.NOT_FOUND


# -- failures --------------------------------------------------------------------------------


async def test_a_wrong_api_key_fails_auth_without_showing_it(
    server: str, context: ConnectContext
) -> None:
    auth = {"mode": "api_key", "api_key": WRONG_API_KEY}
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.discover(config(server, auth=auth), context)
    assert raised.value.code == SourceErrorCode.AUTH_FAILED
    assert WRONG_API_KEY not in raised.value.message


async def test_a_key_quoted_back_is_masked(server: str, context: ConnectContext) -> None:
    auth = {"mode": "api_key", "api_key": API_KEY}
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.check(
            config(server, spreadsheet_id=ECHOING, auth=auth), context
        )
    assert raised.value.code == SourceErrorCode.PROTOCOL_ERROR
    assert API_KEY not in raised.value.message
    assert "key=********" in raised.value.message


async def test_a_key_the_account_does_not_hold_fails_auth(
    server: str, context: ConnectContext
) -> None:
    wrong = service_account(server, key_number=2)
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.check(config(server, auth=wrong), context)
    assert raised.value.code == SourceErrorCode.AUTH_FAILED
    assert "refused the service account" in raised.value.message
    assert "PRIVATE KEY" not in raised.value.message


async def test_an_unknown_spreadsheet_is_not_found(server: str, context: ConnectContext) -> None:
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.check(
            config(server, spreadsheet_id="1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), context
        )
    assert raised.value.code == SourceErrorCode.NOT_FOUND


async def test_a_closed_port_refuses(context: ConnectContext) -> None:
    port = closed_port()
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.check(config(f"http://127.0.0.1:{port}"), context)
    assert raised.value.code == SourceErrorCode.CONNECTION_REFUSED
    assert "token endpoint" in raised.value.message


async def test_a_silent_port_times_out(silent_port: int, context: ConnectContext) -> None:
    started = time.monotonic()
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.check(
            config(f"http://127.0.0.1:{silent_port}", auth={"mode": "api_key", "api_key": API_KEY}),
            short_context(context),
        )
    assert raised.value.code == SourceErrorCode.TIMEOUT
    assert time.monotonic() - started < 2.5


async def test_loopback_is_refused_when_guarded(
    server: str, guarded_context: ConnectContext
) -> None:
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.check(config(server), guarded_context)
    assert raised.value.code == SourceErrorCode.HOST_REFUSED
