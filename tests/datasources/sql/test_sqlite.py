from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from creativeflow.datasources.base import (
    ConnectContext,
    SourceEnvironment,
    SourceError,
    SourceErrorCode,
    secret_field_paths,
)
from creativeflow.datasources.sql.sqlite import SOURCE_TYPE, SqliteConfig

CONNECTOR = SOURCE_TYPE.connector


def config(path: str) -> SqliteConfig:
    return SqliteConfig.model_validate({"type": "sqlite", "path": path})


async def fails(call: Any, code: SourceErrorCode) -> SourceError:
    with pytest.raises(SourceError) as caught:
        await call
    assert caught.value.code == code, caught.value.message
    return caught.value


@pytest.fixture
def database(file_root: Path) -> Path:
    """`shop/app?#.db` under the file root (a name that must be escaped in a file: URI)."""
    path = file_root / "shop" / "app?#.db"
    path.parent.mkdir()
    with sqlite3.connect(path) as connection:
        connection.executescript(
            """
            CREATE TABLE items (
                id INTEGER PRIMARY KEY,
                title VARCHAR(80) NOT NULL,
                price REAL,
                active BOOLEAN,
                created DATETIME,
                day DATE,
                data BLOB,
                attributes JSON,
                anything
            );
            CREATE VIEW cheap AS SELECT id, title, price * 2 AS doubled FROM items
                WHERE price < 5;
            CREATE TABLE [odd "name"] (value INTEGER);
            INSERT INTO [odd "name"] VALUES (7);
            CREATE VIEW slow AS
                WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n)
                SELECT count(*) AS total FROM n;
            """
        )
        connection.executemany(
            "INSERT INTO items (title, price, active, created, day, data, attributes, anything)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    f"item {n}",
                    n * 1.5,
                    n % 2,
                    f"2024-05-{n:02} 12:00:00",
                    f"2024-05-{n:02}",
                    bytes([n]),
                    f'{{"n": {n}}}',
                    n if n % 2 else f"text {n}",
                )
                for n in range(1, 13)
            ],
        )
    connection.close()
    return path


def size(path: Path) -> int:
    return path.stat().st_size


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- config ----------------------------------------------------------------------------------


def test_config_and_environment(file_root: Path, tmp_path: Path) -> None:
    environment = SourceEnvironment(file_root=file_root)
    assert config("shop/app.db").environment_problems(environment) == []
    assert config(str(file_root / "inside.sqlite")).environment_problems(environment) == []
    assert config("data").hosts() == []  # the extension is optional
    assert secret_field_paths(SqliteConfig) == []
    assert SOURCE_TYPE.drivers == ()

    for outside in ("../elsewhere.db", "/etc/passwd", "shop/../../x.db"):
        (problem,) = config(outside).environment_problems(environment)
        assert problem.field == "path" and "DATASOURCE_FILE_ROOT" in problem.message

    # A symlink inside the root that points outside it is outside.
    (tmp_path / "secret.db").write_bytes(b"")
    (file_root / "link.db").symlink_to(tmp_path / "secret.db")
    (problem,) = config("link.db").environment_problems(environment)
    assert problem.field == "path"

    (file_root / "loop.db").symlink_to(file_root / "loop.db")
    (problem,) = config("loop.db").environment_problems(environment)
    assert problem.field == "path"


@pytest.mark.parametrize("path", ["", "   ", "a\x00b.db", "shop/", "x" * 1025])
def test_config_mistakes_name_the_field(path: str) -> None:
    with pytest.raises(ValidationError) as caught:
        config(path)
    assert [error["loc"] for error in caught.value.errors()] == [("path",)]


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        SqliteConfig.model_validate({"type": "sqlite", "path": "a.db", "mode": "rw"})
    assert [error["loc"] for error in caught.value.errors()] == [("mode",)]


# -- the file --------------------------------------------------------------------------------


async def test_check_answers_the_version(database: Path, context: ConnectContext) -> None:
    result = await CONNECTOR.check(config("shop/app?#.db"), context)
    assert result.server_version == sqlite3.sqlite_version
    assert result.details["path"] == "shop/app?#.db"
    assert result.details["tables"] == 2
    assert result.details["size_bytes"] == size(database)


async def test_discover_lists_tables_and_views_with_columns(
    database: Path, context: ConnectContext
) -> None:
    found = await CONNECTOR.discover(config("shop/app?#.db"), context)
    by_name = {item.name: item for item in found.objects}
    assert set(by_name) == {"items", "cheap", 'odd "name"', "slow"}
    items = by_name["items"]
    assert items.kind == "table" and by_name["cheap"].kind == "view"
    assert items.columns is not None
    assert [(c.name, c.type, c.source_type) for c in items.columns] == [
        ("id", "integer", "INTEGER"),
        ("title", "string", "VARCHAR(80)"),
        ("price", "number", "REAL"),
        ("active", "boolean", "BOOLEAN"),
        ("created", "datetime", "DATETIME"),
        ("day", "date", "DATE"),
        ("data", "binary", "BLOB"),
        ("attributes", "object", "JSON"),
        ("anything", "string", None),
    ]
    assert items.columns[1].nullable is False


async def test_preview_answers_rows_and_types(database: Path, context: ConnectContext) -> None:
    before = digest(database)
    source = config("shop/app?#.db")
    preview = await CONNECTOR.preview(source, context, "items", 3)
    assert preview.truncated is True
    assert preview.rows[0] == {
        "id": 1,
        "title": "item 1",
        "price": 1.5,
        "active": True,
        "created": "2024-05-01 12:00:00",
        "day": "2024-05-01",
        "data": "AQ==",
        "attributes": {"n": 1},
        "anything": 1,
    }
    types = {column.name: column.type for column in preview.columns}
    assert types["active"] == "boolean" and types["attributes"] == "object"
    assert types["anything"] == "string"  # no declared type: integer and text values

    view = await CONNECTOR.preview(source, context, "CHEAP", 10)  # names ignore case
    assert [row["doubled"] for row in view.rows] == [3.0, 6.0, 9.0]
    assert {column.name: column.type for column in view.columns}["doubled"] == "number"

    odd = await CONNECTOR.preview(source, context, 'odd "name"', 10)
    assert odd.rows == [{"value": 7}]
    assert digest(database) == before  # read-only


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("missing", SourceErrorCode.NOT_FOUND),
        ("items; DROP TABLE items", SourceErrorCode.NOT_FOUND),
        ('items" --', SourceErrorCode.NOT_FOUND),
        ("sqlite_master", SourceErrorCode.NOT_FOUND),
        ("", SourceErrorCode.INVALID_OBJECT),
    ],
)
async def test_preview_of_an_unknown_object(
    database: Path, context: ConnectContext, name: str, code: SourceErrorCode
) -> None:
    source = config("shop/app?#.db")
    await fails(CONNECTOR.preview(source, context, name, 5), code)
    assert (await CONNECTOR.preview(source, context, "items", 1)).rows


async def test_missing_file_is_not_found(context: ConnectContext, file_root: Path) -> None:
    await fails(CONNECTOR.check(config("nowhere.db"), context), SourceErrorCode.NOT_FOUND)
    (file_root / "folder.db").mkdir()
    await fails(CONNECTOR.check(config("folder.db"), context), SourceErrorCode.NOT_FOUND)
    assert not (file_root / "nowhere.db").exists()  # read-only mode creates nothing


async def test_a_file_that_is_not_a_database(context: ConnectContext, file_root: Path) -> None:
    (file_root / "notes.db").write_text("just some notes, not a database\n" * 50)
    error = await fails(
        CONNECTOR.check(config("notes.db"), context), SourceErrorCode.PROTOCOL_ERROR
    )
    assert "not a SQLite database" in error.message


async def test_a_path_outside_the_root_is_refused(context: ConnectContext, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "outside.db") as connection:
        connection.execute("CREATE TABLE t (x)")
    connection.close()
    await fails(
        CONNECTOR.check(config("../outside.db"), context), SourceErrorCode.PERMISSION_DENIED
    )
    await fails(
        CONNECTOR.check(config(str(tmp_path / "outside.db")), context),
        SourceErrorCode.PERMISSION_DENIED,
    )


async def test_a_query_past_the_time_limit_is_interrupted(database: Path, file_root: Path) -> None:
    quick = ConnectContext(timeout_seconds=1.0, allow_private_hosts=True, file_root=file_root)
    started = time.monotonic()
    await fails(
        CONNECTOR.preview(config("shop/app?#.db"), quick, "slow", 1), SourceErrorCode.TIMEOUT
    )
    assert time.monotonic() - started < 3
