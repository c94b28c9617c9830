"""local_file against real files the tests write into the file root."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from creativeflow.datasources.base import (
    ConnectContext,
    SourceEnvironment,
    SourceError,
    SourceErrorCode,
)
from creativeflow.datasources.files import SOURCE_TYPES, local_file
from creativeflow.datasources.files.local_file import SOURCE_TYPE, LocalFileConfig
from tests.datasources.files.conftest import PEOPLE_CSV, parquet_bytes, xlsx_bytes

connector = SOURCE_TYPE.connector


def config(**fields: Any) -> LocalFileConfig:
    return LocalFileConfig.model_validate({"type": "local_file", **fields})


def error_locations(**fields: Any) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as caught:
        config(**fields)
    return [error["loc"] for error in caught.value.errors()]


async def fails(code: SourceErrorCode, operation) -> str:
    with pytest.raises(SourceError) as caught:
        await operation
    assert caught.value.code == code, caught.value.message
    return caught.value.message


@pytest.fixture
def tree(write) -> Path:
    """A directory of files of every format, some nested, one of no known format."""
    write("data/people.csv", PEOPLE_CSV)
    write("data/events.jsonl", '{"id": 1}\n{"id": 2}\n')
    write("data/nested/items.parquet", parquet_bytes())
    write("data/nested/deeper/export.json", json.dumps({"rows": [{"a": 1}, {"a": 2}]}))
    write("data/book.xlsx", xlsx_bytes())
    write("data/README.txt", "not a table")
    return write("data/semi.csv", "a;b\n1;2\n").parent


# -- config ------------------------------------------------------------------------------------


def test_types_in_order() -> None:
    assert [source_type.name for source_type in SOURCE_TYPES] == ["local_file", "s3"]
    assert SOURCE_TYPE.driver_error() is None
    assert "path" in LocalFileConfig.model_json_schema()["properties"]


def test_good_configs() -> None:
    assert config(path="data/people.csv").format is None
    tabbed = config(path="data", format="csv", csv_delimiter="\t", encoding="LATIN-1")
    assert tabbed.csv_delimiter == "\t" and tabbed.encoding == "iso8859-1"
    assert config(path="book.xlsx", sheet="Totals").sheet == "Totals"
    assert config(path="data", glob="**/*.csv").glob == "**/*.csv"


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        ({"path": ""}, ("path",)),
        ({"path": "   "}, ("path",)),
        ({"path": "a\x00b"}, ("path",)),
        ({"path": "x.csv", "format": "xml"}, ("format",)),
        ({"path": "x.csv", "csv_delimiter": ";;"}, ("csv_delimiter",)),
        ({"path": "x.csv", "csv_delimiter": '"'}, ("csv_delimiter",)),
        ({"path": "x.csv", "encoding": "klingon-8"}, ("encoding",)),
        ({"path": "x.csv", "sheet": "Sheet1"}, ("sheet",)),
        ({"path": "x", "format": "json", "sheet": "Sheet1"}, ("sheet",)),
        ({"path": "x.xlsx", "sheet": "a/b"}, ("sheet",)),
        ({"path": "dir", "glob": "../*"}, ("glob",)),
        ({"path": "dir", "glob": "/etc/*"}, ("glob",)),
        ({"path": "x.csv", "host": "db"}, ("host",)),
    ],
)
def test_config_mistakes_name_the_field(fields: dict[str, Any], location: tuple[Any, ...]) -> None:
    assert location in error_locations(**fields)


def test_paths_must_lie_inside_the_file_root(file_root: Path, tmp_path: Path) -> None:
    environment = SourceEnvironment(file_root=file_root)
    assert config(path="data/people.csv").environment_problems(environment) == []
    assert config(path=str(file_root / "x.csv")).environment_problems(environment) == []
    for outside in ("../secret.csv", "data/../../x.csv", "/etc/passwd", str(tmp_path)):
        problems = config(path=outside).environment_problems(environment)
        assert [problem.field for problem in problems] == ["path"]
        assert "lies outside DATASOURCE_FILE_ROOT" in problems[0].message
    (file_root / "escape").symlink_to(tmp_path)
    assert config(path="escape/x.csv").environment_problems(environment)[0].field == "path"


# -- check -------------------------------------------------------------------------------------


async def test_check_a_file(context: ConnectContext, write) -> None:
    write("people.csv", PEOPLE_CSV)
    result = await connector.check(config(path="people.csv"), context)
    assert result.server_version is None
    assert result.details["kind"] == "file" and result.details["format"] == "csv"
    assert result.details["size"] == len(PEOPLE_CSV) and result.details["columns"] == 5
    assert result.details["modified"].endswith("+00:00")


async def test_check_a_directory_by_absolute_path(context: ConnectContext, tree: Path) -> None:
    result = await connector.check(config(path=str(tree)), context)
    assert result.details["kind"] == "directory"


async def test_check_failures(
    context: ConnectContext, write, file_root: Path, tmp_path: Path
) -> None:
    message = await fails(
        SourceErrorCode.NOT_FOUND, connector.check(config(path="gone.csv"), context)
    )
    assert message == "there is no file or directory gone.csv"
    write("notes.txt", "hello")
    message = await fails(
        SourceErrorCode.INVALID_OBJECT, connector.check(config(path="notes.txt"), context)
    )
    assert "set `format`" in message
    write("broken.parquet", b"PAR1 not really")
    message = await fails(
        SourceErrorCode.INVALID_OBJECT, connector.check(config(path="broken.parquet"), context)
    )
    assert message.startswith("broken.parquet: the file is not valid Parquet")
    await fails(
        SourceErrorCode.PERMISSION_DENIED, connector.check(config(path="../x.csv"), context)
    )
    outside = tmp_path / "outside.csv"
    outside.write_text(PEOPLE_CSV)
    (file_root / "link.csv").symlink_to(outside)
    await fails(
        SourceErrorCode.PERMISSION_DENIED, connector.check(config(path="link.csv"), context)
    )
    (file_root / "loop-a").symlink_to("loop-b")
    (file_root / "loop-b").symlink_to("loop-a")
    message = await fails(
        SourceErrorCode.INVALID_OBJECT, connector.check(config(path="loop-a/x.csv"), context)
    )
    assert "symlink loop" in message
    assert config(path="loop-a").environment_problems(SourceEnvironment(file_root))
    os.mkfifo(file_root / "pipe.csv")  # reading it would wait for a writer forever
    await fails(SourceErrorCode.INVALID_OBJECT, connector.check(config(path="pipe.csv"), context))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
async def test_check_an_unreadable_file(context: ConnectContext, write) -> None:
    path = write("locked.csv", PEOPLE_CSV)
    path.chmod(0)
    try:
        await fails(
            SourceErrorCode.PERMISSION_DENIED, connector.check(config(path="locked.csv"), context)
        )
    finally:
        path.chmod(0o600)


# -- discover ----------------------------------------------------------------------------------


async def test_discover_a_file_with_its_columns(context: ConnectContext, write) -> None:
    write("people.csv", PEOPLE_CSV)
    discovery = await connector.discover(config(path="people.csv"), context)
    (found,) = discovery.objects
    assert found.name == "people.csv" and found.kind == "file"
    assert [(c.name, c.type) for c in found.columns or []][:3] == [
        ("id", "integer"),
        ("name", "string"),
        ("score", "number"),
    ]
    assert found.details["format"] == "csv" and found.details["size"] == len(PEOPLE_CSV)


async def test_discover_a_workbook_lists_its_sheets(context: ConnectContext, write) -> None:
    write("book.xlsx", xlsx_bytes())
    discovery = await connector.discover(config(path="book.xlsx"), context)
    assert [(o.name, o.kind) for o in discovery.objects] == [
        ("book.xlsx#People", "sheet"),
        ("book.xlsx#Totals", "sheet"),
    ]
    assert [c.name for c in discovery.objects[1].columns or []] == ["region", "total"]


async def test_discover_a_directory(
    context: ConnectContext, tree: Path, tmp_path: Path, write
) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n")
    (tree / "leak.csv").symlink_to(outside)
    (tree / "loop").symlink_to(tree)  # not entered
    write("data/broken.xlsx", b"not a workbook")
    discovery = await connector.discover(config(path="data"), context)
    names = [o.name for o in discovery.objects]
    assert names == [
        "book.xlsx#People",
        "book.xlsx#Totals",
        "broken.xlsx",
        "events.jsonl",
        "people.csv",
        "semi.csv",
        "nested/items.parquet",
        "nested/deeper/export.json",
    ]
    by_name = {o.name: o for o in discovery.objects}
    assert by_name["nested/items.parquet"].details["format"] == "parquet"
    assert by_name["people.csv"].details["size"] == len(PEOPLE_CSV)
    assert "not an xlsx workbook" in by_name["broken.xlsx"].details["problem"]
    assert discovery.truncated is False


async def test_discover_with_a_glob_and_a_cap(
    context: ConnectContext, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csvs = await connector.discover(config(path="data", glob="*.csv"), context)
    assert [o.name for o in csvs.objects] == ["people.csv", "semi.csv"]
    anywhere = await connector.discover(config(path="data", glob="**/*.csv"), context)
    assert [o.name for o in anywhere.objects] == ["people.csv", "semi.csv"]
    nested = await connector.discover(config(path="data", glob="nested/*"), context)
    assert [o.name for o in nested.objects] == ["nested/items.parquet"]
    as_text = await connector.discover(config(path="data", glob="*.txt", format="csv"), context)
    assert [o.name for o in as_text.objects] == ["README.txt"]
    monkeypatch.setattr(local_file, "MAX_DISCOVERED", 3)
    capped = await connector.discover(config(path="data"), context)
    assert len(capped.objects) == 3 and capped.truncated is True


async def test_discover_a_missing_directory(context: ConnectContext) -> None:
    await fails(SourceErrorCode.NOT_FOUND, connector.discover(config(path="nowhere"), context))


# -- preview -----------------------------------------------------------------------------------


async def test_preview_each_format_in_a_directory(context: ConnectContext, tree: Path) -> None:
    source = config(path="data")
    people = await connector.preview(source, context, "people.csv", 2)
    assert people.rows[0]["name"] == "Ada" and people.truncated is True
    events = await connector.preview(source, context, "events.jsonl", 10)
    assert events.rows == [{"id": 1}, {"id": 2}]
    items = await connector.preview(source, context, "nested/items.parquet", 3)
    assert [row["id"] for row in items.rows] == [0, 1, 2] and items.truncated
    export = await connector.preview(source, context, "nested/deeper/export.json", 10)
    assert export.rows == [{"a": 1}, {"a": 2}]
    totals = await connector.preview(source, context, "book.xlsx#Totals", 10)
    assert [row["region"] for row in totals.rows] == ["north", "south", "east"]
    first_sheet = await connector.preview(source, context, "book.xlsx", 10)
    assert first_sheet.rows[0]["name"] == "Ada"


async def test_preview_csv_options(context: ConnectContext, tree: Path) -> None:
    preview = await connector.preview(
        config(path="data/semi.csv", csv_delimiter=";"), context, "", 5
    )
    assert preview.rows == [{"a": 1, "b": 2}]


async def test_preview_a_single_file_source(context: ConnectContext, write) -> None:
    write("book.xlsx", xlsx_bytes())
    source = config(path="book.xlsx")
    by_hash = await connector.preview(source, context, "#Totals", 1)
    by_name = await connector.preview(source, context, "book.xlsx#Totals", 1)
    assert by_hash == by_name and by_hash.rows == [{"region": "north", "total": 10}]
    assert (
        await connector.preview(config(path="book.xlsx", sheet="Totals"), context, "", 1)
    ) == by_hash
    message = await fails(SourceErrorCode.NOT_FOUND, connector.preview(source, context, "x.csv", 1))
    assert "the one file book.xlsx" in message
    message = await fails(
        SourceErrorCode.NOT_FOUND, connector.preview(source, context, "#Missing", 1)
    )
    assert message.startswith("book.xlsx: the workbook has no sheet 'Missing'")


async def test_preview_failures(context: ConnectContext, tree: Path, tmp_path: Path) -> None:
    source = config(path="data")
    message = await fails(
        SourceErrorCode.NOT_FOUND, connector.preview(source, context, "gone.csv", 5)
    )
    assert message == "there is no file gone.csv"
    for bad in ("../people.csv", "/etc/passwd", "", "a/../../x.csv"):
        await fails(SourceErrorCode.INVALID_OBJECT, connector.preview(source, context, bad, 5))
    await fails(SourceErrorCode.INVALID_OBJECT, connector.preview(source, context, "nested", 5))
    await fails(SourceErrorCode.INVALID_OBJECT, connector.preview(source, context, "README.txt", 5))
    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n")
    (tree / "leak.csv").symlink_to(outside)
    await fails(
        SourceErrorCode.PERMISSION_DENIED, connector.preview(source, context, "leak.csv", 5)
    )
