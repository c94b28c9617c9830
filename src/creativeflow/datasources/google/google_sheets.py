"""Google Sheets over the Sheets API v4: a spreadsheet's title, its sheets with the columns of
their header row, and a sheet's first rows with their types read from the cells' text."""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field, field_validator

from creativeflow.datasources.base import (
    MAX_DISCOVERED,
    CheckResult,
    Column,
    ConnectContext,
    DiscoveredObject,
    Discovery,
    Preview,
    SourceCategory,
    SourceConfig,
    SourceError,
    SourceErrorCode,
    SourceType,
)
from creativeflow.datasources.fields import HttpUrl, url_host_port
from creativeflow.datasources.google.auth import SheetsAuth, auth_hosts
from creativeflow.datasources.google.client import GoogleApi, GoogleClient
from creativeflow.datasources.rows import infer_columns, jsonable, typed_text

SHEETS_BASE_URL = "https://sheets.googleapis.com"
API = GoogleApi(
    name="the Sheets API",
    version="Sheets API v4",
    scope="https://www.googleapis.com/auth/spreadsheets.readonly",
)
LAST_COLUMN = "ZZ"  # 702 columns, wider than any sheet worth previewing
SAMPLE_ROWS = 20  # rows under the header that discovery reads for the columns' types
RANGES_PER_REQUEST = 50

_ID = re.compile(r"^[A-Za-z0-9_-]{10,128}$")
_URL = re.compile(r"^https?://docs\.google\.com/spreadsheets/(?:u/\d+/)?d/([A-Za-z0-9_-]+)")


def _spreadsheet_id(value: str) -> str:
    if "://" in value:
        found = _URL.match(value)
        if found is None:
            raise ValueError(
                "is not a Google Sheets URL (https://docs.google.com/spreadsheets/d/<id>/...)"
            )
        value = found.group(1)
    if not _ID.match(value):
        raise ValueError(
            "must be the spreadsheet's id (10-128 letters, digits, '-' and '_', as in its URL "
            "after /d/) or its docs.google.com URL"
        )
    return value


class GoogleSheetsConfig(SourceConfig):
    type: Literal["google_sheets"] = Field(description="Google Sheets")
    spreadsheet_id: str = Field(
        max_length=2048,
        description="The spreadsheet's id, or its URL "
        "(https://docs.google.com/spreadsheets/d/<id>/edit)",
    )
    auth: SheetsAuth
    header_row: int = Field(
        default=1,
        ge=1,
        le=10000,
        description="The row that holds the column names (rows above it are skipped)",
    )
    api_base_url: HttpUrl = Field(
        default=SHEETS_BASE_URL,
        description="The Sheets API endpoint (an emulator's or a proxy's URL in its place)",
    )

    @field_validator("spreadsheet_id")
    @classmethod
    def _id_or_url(cls, value: str) -> str:
        return _spreadsheet_id(value)

    def hosts(self) -> list[tuple[str, int]]:
        return [url_host_port(self.api_base_url), *auth_hosts(self.auth)]


def quoted_range(sheet: str, cells: str) -> str:
    """An A1 range on `sheet`, its title quoted (`'My ''Q1'' sheet'!A1:ZZ11`)."""
    return "'" + sheet.replace("'", "''") + "'!" + cells


def column_letter(index: int) -> str:
    """A1 notation's name of the 0-based column `index` (0 -> A, 26 -> AA)."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def header_names(cells: list[Any], width: int) -> list[str]:
    """Column names from the header row: a blank cell is named by its column letter, and a
    repeated name gets a `_2`, `_3`, ..."""
    names: list[str] = []
    for index in range(width):
        cell = cells[index] if index < len(cells) else None
        name = str(cell).strip() if cell is not None else ""
        name = name or column_letter(index)
        candidate, number = name, 2
        while candidate in names:
            candidate, number = f"{name}_{number}", number + 1
        names.append(candidate)
    return names


def table(values: list[Any]) -> tuple[list[Column], list[dict[str, Any]]]:
    """Rows (the first one the header) as typed rows and their columns."""
    grid = [row if isinstance(row, list) else [] for row in values]
    if not grid:
        return [], []
    names = header_names(grid[0], max(len(row) for row in grid))
    rows = [
        {name: (row[index] if index < len(row) else None) for index, name in enumerate(names)}
        for row in grid[1:]
    ]
    columns = infer_columns(rows, from_text=True, order=names)
    kinds = {column.name: column.type for column in columns}
    typed = [
        {
            name: jsonable(typed_text(cell, kinds[name]) if isinstance(cell, str) else cell)
            for name, cell in row.items()
        }
        for row in rows
    ]
    return columns, typed


def _grid_sheets(spreadsheet: Any) -> list[dict[str, Any]]:
    """The sheets' properties, grid sheets only (chart sheets hold no cells)."""
    if not isinstance(spreadsheet, dict) or not isinstance(spreadsheet.get("sheets"), list):
        raise SourceError(SourceErrorCode.PROTOCOL_ERROR, "the spreadsheet answer has no sheets")
    sheets = []
    for sheet in spreadsheet["sheets"]:
        properties = sheet.get("properties") if isinstance(sheet, dict) else None
        if not isinstance(properties, dict) or not isinstance(properties.get("title"), str):
            continue
        if properties.get("sheetType", "GRID") == "GRID":
            sheets.append(properties)
    return sheets


class GoogleSheetsConnector:
    def _client(self, config: GoogleSheetsConfig, context: ConnectContext) -> GoogleClient:
        return GoogleClient(context, config.api_base_url, config.auth, API)

    async def _spreadsheet(self, client: GoogleClient, config: GoogleSheetsConfig) -> Any:
        return await client.json(
            f"/v4/spreadsheets/{config.spreadsheet_id}",
            {"fields": "properties.title,sheets.properties"},
            missing=f"there is no spreadsheet {config.spreadsheet_id}",
        )

    async def check(self, config: GoogleSheetsConfig, context: ConnectContext) -> CheckResult:
        async with self._client(config, context) as client:
            spreadsheet = await self._spreadsheet(client, config)
        sheets = _grid_sheets(spreadsheet)
        properties = spreadsheet.get("properties") or {}
        return CheckResult(
            server_version=API.version,
            details={
                "title": properties.get("title") if isinstance(properties, dict) else None,
                "sheets": len(sheets),
            },
        )

    async def discover(self, config: GoogleSheetsConfig, context: ConnectContext) -> Discovery:
        first, last = config.header_row, config.header_row + SAMPLE_ROWS
        async with self._client(config, context) as client:
            sheets = _grid_sheets(await self._spreadsheet(client, config))
            truncated = len(sheets) > MAX_DISCOVERED
            sheets = sheets[:MAX_DISCOVERED]
            samples: list[Any] = []
            for start in range(0, len(sheets), RANGES_PER_REQUEST):
                chunk = sheets[start : start + RANGES_PER_REQUEST]
                answer = await client.json(
                    f"/v4/spreadsheets/{config.spreadsheet_id}/values:batchGet",
                    {
                        "ranges": [quoted_range(s["title"], f"{first}:{last}") for s in chunk],
                        "majorDimension": "ROWS",
                    },
                    missing=f"there is no spreadsheet {config.spreadsheet_id}",
                )
                ranges = answer.get("valueRanges") if isinstance(answer, dict) else None
                if not isinstance(ranges, list) or len(ranges) != len(chunk):
                    raise SourceError(
                        SourceErrorCode.PROTOCOL_ERROR, "the values answer does not fit the ranges"
                    )
                samples.extend(ranges)
        objects = []
        for properties, sample in zip(sheets, samples, strict=True):
            values = sample.get("values") if isinstance(sample, dict) else None
            columns, _ = table(values if isinstance(values, list) else [])
            grid = properties.get("gridProperties") or {}
            objects.append(
                DiscoveredObject(
                    name=properties["title"],
                    kind="sheet",
                    columns=columns,
                    details={
                        "sheet_id": properties.get("sheetId"),
                        "index": properties.get("index"),
                        "rows": grid.get("rowCount"),
                        "columns": grid.get("columnCount"),
                    },
                )
            )
        return Discovery(objects=objects, truncated=truncated)

    async def preview(
        self, config: GoogleSheetsConfig, context: ConnectContext, object_name: str, limit: int
    ) -> Preview:
        first = config.header_row
        # The header, `limit` rows, and one more to tell whether there are more.
        cells = f"A{first}:{LAST_COLUMN}{first + limit + 1}"
        async with self._client(config, context) as client:
            sheets = _grid_sheets(await self._spreadsheet(client, config))
            if not any(sheet["title"] == object_name for sheet in sheets):
                raise SourceError(
                    SourceErrorCode.NOT_FOUND,
                    f"there is no sheet {object_name!r} in the spreadsheet",
                )
            answer = await client.json(
                f"/v4/spreadsheets/{config.spreadsheet_id}/values/"
                + quote(quoted_range(object_name, cells), safe=""),
                {"majorDimension": "ROWS", "valueRenderOption": "FORMATTED_VALUE"},
                missing=f"there is no sheet {object_name!r} in the spreadsheet",
            )
        values = answer.get("values") if isinstance(answer, dict) else None
        grid = values if isinstance(values, list) else []
        # The types come from the rows answered, not the extra one.
        columns, rows = table(grid[: limit + 1])
        return Preview(columns=columns, rows=rows, truncated=len(grid) > limit + 1)


SOURCE_TYPE = SourceType(
    name="google_sheets",
    display_name="Google Sheets",
    category=SourceCategory.SAAS,
    config_model=GoogleSheetsConfig,
    connector=GoogleSheetsConnector(),
    description="A Google spreadsheet: its sheets, their columns from the header row, and the "
    "first rows of a sheet with their types.",
)
