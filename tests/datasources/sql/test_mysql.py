from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from creativeflow.datasources.base import (
    ConnectContext,
    SourceError,
    SourceErrorCode,
    secret_field_paths,
)
from creativeflow.datasources.sql.mysql import SOURCE_TYPE, MysqlConfig
from tests.datasources.servers import ServerAddress, closed_port

CONNECTOR = SOURCE_TYPE.connector


def config(**values: Any) -> MysqlConfig:
    return MysqlConfig.model_validate(
        {"type": "mysql", "host": "127.0.0.1", "database": "app", "username": "reader"} | values
    )


def server_config(server: ServerAddress, **values: Any) -> MysqlConfig:
    return config(
        **{
            "host": server.host,
            "port": server.port,
            "database": server.path or "test",
            "username": server.user or "root",
            "password": server.password,
        }
        | values
    )


async def fails(call: Any, code: SourceErrorCode) -> SourceError:
    with pytest.raises(SourceError) as caught:
        await call
    assert caught.value.code == code, caught.value.message
    return caught.value


@dataclass(frozen=True, slots=True)
class Objects:
    table: str
    view: str
    odd: str  # a table with a backtick and a percent sign in its name
    user: str
    password: str


async def _root(server: ServerAddress) -> Any:
    aiomysql = pytest.importorskip("aiomysql")
    return await aiomysql.connect(
        host=server.host,
        port=server.port,
        user=server.user or "root",
        password=server.password or "",
        db=server.path or "test",
        autocommit=True,
    )


@pytest.fixture
async def objects(mysql_server: ServerAddress) -> AsyncIterator[Objects]:
    """Uniquely named tables, a view and a user with a password who may read the table."""
    suffix = uuid.uuid4().hex[:10]
    made = Objects(
        table=f"cf_sql_{suffix}",
        view=f"cf_sql_{suffix}_v",
        odd=f"cf_sql_{suffix} `odd` 100%",
        user=f"cf_sql_{suffix}",
        password=f"pw-{uuid.uuid4().hex}",
    )
    odd = made.odd.replace("`", "``")
    database = mysql_server.path or "test"
    connection = await _root(mysql_server)
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(
                f"CREATE TABLE `{made.table}` (id INT PRIMARY KEY AUTO_INCREMENT,"
                " title VARCHAR(80) NOT NULL, price DECIMAL(10,2), active TINYINT(1),"
                " quantity BIGINT UNSIGNED, created DATETIME, day DATE, data BLOB)"
            )
            for n in range(1, 13):
                await cursor.execute(
                    f"INSERT INTO `{made.table}` (title, price, active, quantity, created, day,"  # noqa: S608
                    " data) VALUES (%s, %s, %s, %s, %s, %s, UNHEX(%s))",
                    (
                        f"item {n}",
                        n * 1.5,
                        n % 2,
                        n * 10,
                        f"2024-05-{n:02} 12:00:00",
                        f"2024-05-{n:02}",
                        f"{n:02x}",
                    ),
                )
            await cursor.execute(
                f"CREATE VIEW `{made.view}` AS SELECT id, title FROM `{made.table}`"  # noqa: S608
                " WHERE price < 5"
            )
            await cursor.execute(f"CREATE TABLE `{odd}` (value INT)")
            await cursor.execute(f"INSERT INTO `{odd}` VALUES (7)")  # noqa: S608
            await cursor.execute(
                "CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (made.user, made.password)
            )
            await cursor.execute(
                f"GRANT SELECT ON `{database}`.`{made.table}` TO %s@'%%'", (made.user,)
            )
        yield made
    finally:
        async with connection.cursor() as cursor:
            await cursor.execute("DROP USER IF EXISTS %s@'%%'", (made.user,))
            await cursor.execute(f"DROP VIEW IF EXISTS `{made.view}`")
            await cursor.execute(f"DROP TABLE IF EXISTS `{made.table}`, `{odd}`")
        await connection.ensure_closed()


# -- config ----------------------------------------------------------------------------------


def test_config_defaults_and_hosts() -> None:
    parsed = config(host="db.example.com")
    assert (parsed.port, parsed.charset, parsed.tls.enabled) == (3306, "utf8mb4", False)
    assert parsed.password is None
    assert parsed.hosts() == [("db.example.com", 3306)]
    assert secret_field_paths(MysqlConfig) == ["password"]
    assert (SOURCE_TYPE.drivers, SOURCE_TYPE.extra) == (("aiomysql",), "mysql")


@pytest.mark.parametrize(
    ("values", "loc"),
    [
        ({"host": "mysql://db.example.com"}, ("host",)),
        ({"host": "db.example.com:3306"}, ("host",)),
        ({"port": 0}, ("port",)),
        ({"port": 65536}, ("port",)),
        ({"database": ".app"}, ("database",)),
        ({"database": "a b"}, ("database",)),
        ({"username": ""}, ("username",)),
        ({"charset": "klingon"}, ("charset",)),
        ({"tls": {"enabled": False, "verify": False}}, ("tls",)),
        ({"tls": {"enabled": True, "ca_certificate": "nope"}}, ("tls", "ca_certificate")),
        ({"ssl": True}, ("ssl",)),
    ],
)
def test_config_mistakes_name_the_field(values: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        config(**values)
    assert [error["loc"] for error in caught.value.errors()] == [loc]


# -- against the server ----------------------------------------------------------------------


async def test_check_answers_version_and_flavour(
    mysql_server: ServerAddress, context: ConnectContext
) -> None:
    result = await CONNECTOR.check(server_config(mysql_server), context)
    assert result.server_version and result.server_version[0].isdigit()
    flavour = "mariadb" if "mariadb" in result.server_version.lower() else "mysql"
    assert result.details["flavour"] == flavour
    assert result.details["database"] == (mysql_server.path or "test")
    assert result.details["user"].startswith(mysql_server.user or "root")


async def test_discover_lists_tables_and_views_with_columns(
    mysql_server: ServerAddress, context: ConnectContext, objects: Objects
) -> None:
    found = await CONNECTOR.discover(server_config(mysql_server), context)
    by_name = {item.name: item for item in found.objects}
    table = by_name[objects.table]
    assert table.kind == "table"
    assert table.details["engine"] and isinstance(table.details["row_estimate"], int)
    assert table.columns is not None
    assert [(c.name, c.type, c.nullable) for c in table.columns] == [
        ("id", "integer", False),
        ("title", "string", False),
        ("price", "number", True),
        ("active", "boolean", True),
        ("quantity", "integer", True),
        ("created", "datetime", True),
        ("day", "date", True),
        ("data", "binary", True),
    ]
    assert table.columns[1].source_type == "varchar(80)"
    assert by_name[objects.view].kind == "view"
    assert objects.odd in by_name


async def test_preview_answers_rows_and_types(
    mysql_server: ServerAddress, context: ConnectContext, objects: Objects
) -> None:
    source = server_config(mysql_server)
    preview = await CONNECTOR.preview(source, context, objects.table, 5)
    assert preview.truncated is True
    assert len(preview.rows) == 5
    assert preview.rows[0] == {
        "id": 1,
        "title": "item 1",
        "price": "1.50",
        "active": True,
        "quantity": 10,
        "created": "2024-05-01T12:00:00",
        "day": "2024-05-01",
        "data": "AQ==",
    }
    assert [(c.name, c.type) for c in preview.columns][:4] == [
        ("id", "integer"),
        ("title", "string"),
        ("price", "number"),
        ("active", "boolean"),
    ]

    view = await CONNECTOR.preview(source, context, f"{source.database}.{objects.view}", 50)
    assert (view.truncated, [row["title"] for row in view.rows]) == (
        False,
        ["item 1", "item 2", "item 3"],
    )
    odd = await CONNECTOR.preview(source, context, objects.odd, 10)
    assert odd.rows == [{"value": 7}]


@pytest.mark.parametrize(
    "name", ["cf_sql_missing", "{table}; DROP TABLE {table}", "{table}` --", "user"]
)
async def test_preview_of_an_unknown_object(
    mysql_server: ServerAddress, context: ConnectContext, objects: Objects, name: str
) -> None:
    source = server_config(mysql_server)
    await fails(
        CONNECTOR.preview(source, context, name.format(table=objects.table), 5),
        SourceErrorCode.NOT_FOUND,
    )
    assert (await CONNECTOR.preview(source, context, objects.table, 1)).rows


async def test_a_reader_with_a_password(
    mysql_server: ServerAddress, context: ConnectContext, objects: Objects
) -> None:
    source = server_config(mysql_server, username=objects.user, password=objects.password)
    result = await CONNECTOR.check(source, context)
    assert result.details["user"].startswith(objects.user)
    found = await CONNECTOR.discover(source, context)
    assert [item.name for item in found.objects] == [objects.table]  # what it may read
    assert len((await CONNECTOR.preview(source, context, objects.table, 3)).rows) == 3


async def test_wrong_password_fails_authentication(
    mysql_server: ServerAddress, context: ConnectContext, objects: Objects
) -> None:
    wrong = objects.password + "-wrong"
    source = server_config(mysql_server, username=objects.user, password=wrong)
    error = await fails(CONNECTOR.check(source, context), SourceErrorCode.AUTH_FAILED)
    assert "1045" in error.message and objects.user in error.message
    assert wrong not in error.message and objects.password not in error.message


async def test_unknown_database_is_not_found(
    mysql_server: ServerAddress, context: ConnectContext
) -> None:
    source = server_config(mysql_server, database=f"missing_{uuid.uuid4().hex[:8]}")
    error = await fails(CONNECTOR.check(source, context), SourceErrorCode.NOT_FOUND)
    assert "1049" in error.message


async def test_tls_required_but_not_offered(
    mysql_server: ServerAddress, context: ConnectContext
) -> None:
    connection = await _root(mysql_server)
    try:
        async with connection.cursor() as cursor:
            await cursor.execute("SHOW VARIABLES LIKE 'have_ssl'")
            row = await cursor.fetchone()
    finally:
        await connection.ensure_closed()
    if row and row[1] == "YES":
        pytest.skip("this server offers TLS")
    source = server_config(mysql_server, tls={"enabled": True, "verify": False})
    error = await fails(CONNECTOR.check(source, context), SourceErrorCode.TLS_ERROR)
    assert "does not offer TLS" in error.message


# -- network ---------------------------------------------------------------------------------


async def test_closed_port_is_refused(context: ConnectContext) -> None:
    await fails(
        CONNECTOR.check(config(port=closed_port()), context), SourceErrorCode.CONNECTION_REFUSED
    )


async def test_silent_server_times_out(silent_port: int, file_root: Path) -> None:
    quick = ConnectContext(timeout_seconds=1.0, allow_private_hosts=True, file_root=file_root)
    started = time.monotonic()
    await fails(CONNECTOR.check(config(port=silent_port), quick), SourceErrorCode.TIMEOUT)
    assert time.monotonic() - started < 3


async def test_private_host_is_refused(guarded_context: ConnectContext) -> None:
    await fails(CONNECTOR.check(config(), guarded_context), SourceErrorCode.HOST_REFUSED)
