"""MySQL and MariaDB through aiomysql: the tables and views of one database with their columns
from information_schema, and previews of them in a read-only session."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from pydantic import Field

from creativeflow.datasources.base import (
    MAX_DISCOVERED,
    CheckResult,
    ColumnType,
    ConnectContext,
    DiscoveredObject,
    Discovery,
    Preview,
    Secret,
    SourceCategory,
    SourceConfig,
    SourceError,
    SourceErrorCode,
    SourceType,
    network_error,
    reveal_optional,
)
from creativeflow.datasources.fields import DatabaseName, HostName, Port, TlsOptions
from creativeflow.datasources.sql.common import (
    CatalogColumn,
    UserName,
    build_preview,
    clamp_limit,
    column_type,
    discovery,
    driver_or_error,
    object_name_or_error,
    quote_backtick,
    redact,
    tls_context,
)


class MysqlConfig(SourceConfig):
    type: Literal["mysql"]
    host: HostName = Field(description="Host name or IP address of the server")
    port: Port = Field(default=3306, description="TCP port (3306 by default)")
    database: DatabaseName = Field(description="The database (schema) to read")
    username: UserName
    password: Secret | None = Field(default=None, description="The user's password")
    tls: TlsOptions = Field(
        default_factory=TlsOptions,
        description="TLS: required when enabled (a server without it is refused)",
    )
    charset: Literal["utf8mb4", "utf8mb3", "utf8", "latin1", "ascii"] = Field(
        default="utf8mb4", description="The connection's character set"
    )

    def hosts(self) -> list[tuple[str, int]]:
        return [(self.host, self.port)]


# Server error numbers → codes (https://dev.mysql.com/doc/mysql-errors/en/server-error-reference.html).
_ERRORS: dict[int, SourceErrorCode] = {
    1045: SourceErrorCode.AUTH_FAILED,  # access denied for user (wrong password, no user)
    1044: SourceErrorCode.PERMISSION_DENIED,  # access denied to the database
    1142: SourceErrorCode.PERMISSION_DENIED,  # command denied on a table
    1143: SourceErrorCode.PERMISSION_DENIED,  # command denied on a column
    1227: SourceErrorCode.PERMISSION_DENIED,
    1130: SourceErrorCode.PERMISSION_DENIED,  # host not allowed to connect
    1049: SourceErrorCode.NOT_FOUND,  # unknown database
    1146: SourceErrorCode.NOT_FOUND,  # table does not exist
    3159: SourceErrorCode.TLS_ERROR,  # the server requires secure transport
    2026: SourceErrorCode.TLS_ERROR,
    3024: SourceErrorCode.TIMEOUT,  # max_execution_time exceeded
    1969: SourceErrorCode.TIMEOUT,  # MariaDB: max_statement_time exceeded
}


def _error(
    exc: BaseException, target: str, config: MysqlConfig, *, connecting: bool
) -> SourceError:
    import pymysql

    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, _NoTls):
        return SourceError(
            SourceErrorCode.TLS_ERROR,
            f"{target} does not offer TLS; turn tls.enabled off if that is expected",
        )
    if isinstance(exc, pymysql.err.MySQLError) and len(exc.args) >= 2:
        number, text = exc.args[0], str(exc.args[1])
        cause = exc.__cause__
        if number in (2003, 2013) and cause is not None:
            # aiomysql wraps the socket's error (refused, timed out, TLS) in error 2003.
            return network_error(cause, target)
        if number == 2013:
            return SourceError(SourceErrorCode.PROTOCOL_ERROR, f"{target} closed the connection")
        message = redact(text, reveal_optional(config.password))
        return SourceError(
            _ERRORS.get(number, SourceErrorCode.ERROR), f"{target}: {message} (error {number})"
        )
    if isinstance(exc, pymysql.err.MySQLError):
        return SourceError(
            SourceErrorCode.PROTOCOL_ERROR, f"{target}: {type(exc).__name__} from the driver"
        )
    if isinstance(exc, OSError | TimeoutError):
        return network_error(exc, target)
    if connecting:
        # A handshake the driver cannot parse: the peer is not a MySQL server.
        return SourceError(SourceErrorCode.PROTOCOL_ERROR, f"{target} does not answer like MySQL")
    return SourceError(SourceErrorCode.ERROR, f"{target}: {type(exc).__name__}")


class _NoTls(Exception):
    """The server offers no TLS although the config requires it."""


async def _require_tls(connection: Any) -> None:
    """aiomysql carries on without TLS when the server does not offer it: with TLS enabled,
    a session that is not encrypted is refused before any query. (The password itself never
    crossed in the clear: MySQL's authentication plugins send a scramble, or RSA-encrypt it,
    on a plain connection.)"""
    async with connection.cursor() as cursor:
        await cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        row = await cursor.fetchone()
    if not row or not row[1]:
        raise _NoTls


@asynccontextmanager
async def _cursor(config: MysqlConfig, context: ConnectContext) -> AsyncIterator[Any]:
    driver_or_error(SOURCE_TYPE)
    ip = await context.address(config.host, config.port)
    target = f"MySQL at {config.host}:{config.port}"
    tls = config.tls
    import aiomysql

    connect = aiomysql.connect(
        host=ip,
        port=config.port,
        user=config.username,
        password=reveal_optional(config.password) or "",
        db=config.database,
        charset=config.charset,
        ssl=tls_context(
            config.host,
            ca_certificate=tls.ca_certificate,
            verify_chain=tls.verify,
            verify_name=tls.verify,
        )
        if tls.enabled
        else None,
        connect_timeout=context.timeout_seconds,
        autocommit=True,
        init_command="SET SESSION TRANSACTION READ ONLY",
    )
    # aiomysql has no read timeout: the whole session runs under one.
    connecting = True
    connection: Any = None
    try:
        async with asyncio.timeout(context.timeout_seconds):
            connection = await connect
            connecting = False
            if tls.enabled:
                await _require_tls(connection)
            try:
                async with connection.cursor() as cursor:
                    yield cursor
            finally:
                try:
                    await connection.ensure_closed()
                except Exception:
                    connection.close()
    except SourceError:
        if connection is not None:
            connection.close()
        raise
    except Exception as exc:
        if connection is not None:
            connection.close()
        raise _error(exc, target, config, connecting=connecting) from None


_TABLE_TYPES = {"BASE TABLE": "table", "SYSTEM VERSIONED": "table", "VIEW": "view"}

_OVERRIDES: dict[str, ColumnType] = {
    # pymysql answers BIT as bytes, TIME as a timedelta (seconds here: it is a duration).
    "bit": "binary",
    "time": "number",
    **dict.fromkeys(
        (
            "geometry",
            "point",
            "linestring",
            "polygon",
            "multipoint",
            "multilinestring",
            "multipolygon",
            "geometrycollection",
        ),
        "binary",
    ),
}
_BOOLEAN = re.compile(r"^tinyint\(1\)$", re.IGNORECASE)


def _catalog_column(name: str, declared: str, nullable: str) -> CatalogColumn:
    kind = "boolean" if _BOOLEAN.match(declared) else column_type(declared, _OVERRIDES)
    return CatalogColumn(name, declared, nullable == "YES", kind)


def _placeholders(values: list[str]) -> str:
    return ", ".join(["%s"] * len(values))


async def _columns(cursor: Any, tables: list[str]) -> dict[str, list[CatalogColumn]]:
    columns: dict[str, list[CatalogColumn]] = {table: [] for table in tables}
    if not tables:
        return columns
    await cursor.execute(
        "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE"  # noqa: S608 (placeholders)
        " FROM information_schema.COLUMNS"
        f" WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ({_placeholders(tables)})"
        " ORDER BY TABLE_NAME, ORDINAL_POSITION",
        tables,
    )
    for table, name, declared, nullable in await cursor.fetchall():
        if table in columns:
            columns[table].append(_catalog_column(name, declared, nullable))
    return columns


_OBJECTS = (
    "SELECT TABLE_NAME, TABLE_TYPE, TABLE_ROWS, ENGINE FROM information_schema.TABLES"
    " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED', 'VIEW')"
)


class MysqlConnector:
    async def check(self, config: MysqlConfig, context: ConnectContext) -> CheckResult:
        async with _cursor(config, context) as cursor:
            await cursor.execute("SELECT VERSION(), DATABASE(), CURRENT_USER()")
            version, database, user = await cursor.fetchone()
        return CheckResult(
            server_version=version,
            details={
                "flavour": "mariadb" if "mariadb" in version.lower() else "mysql",
                "database": database,
                "user": user,
            },
        )

    async def discover(self, config: MysqlConfig, context: ConnectContext) -> Discovery:
        async with _cursor(config, context) as cursor:
            await cursor.execute(f"{_OBJECTS} ORDER BY TABLE_NAME LIMIT %s", (MAX_DISCOVERED + 1,))
            tables = await cursor.fetchall()
            columns = await _columns(cursor, [row[0] for row in tables[:MAX_DISCOVERED]])
        objects = []
        for name, table_type, rows, engine in tables:
            details: dict[str, Any] = {}
            if table_type != "VIEW":
                details = {"row_estimate": rows, "engine": engine}
            objects.append(
                DiscoveredObject(
                    name=name,
                    kind=_TABLE_TYPES[table_type],
                    columns=[column.column() for column in columns.get(name, [])],
                    details=details,
                )
            )
        return discovery(objects)

    async def preview(
        self, config: MysqlConfig, context: ConnectContext, object_name: str, limit: int
    ) -> Preview:
        name = object_name_or_error(object_name)
        candidates = [name]
        if name.startswith(f"{config.database}."):
            candidates.append(name[len(config.database) + 1 :])
        limit = clamp_limit(limit)
        async with _cursor(config, context) as cursor:
            await cursor.execute(
                f"{_OBJECTS} AND TABLE_NAME IN ({_placeholders(candidates)})", candidates
            )
            found = [row[0] for row in await cursor.fetchall()]
            if not found:
                raise SourceError(
                    SourceErrorCode.NOT_FOUND, f"no table or view {name} in {config.database}"
                )
            # The catalog's spelling (names compare case-insensitively on some servers).
            table = next((each for each in found if each in candidates), found[0])
            catalog = await _columns(cursor, [table])
            # pymysql formats parameters with `%`: a `%` in a name is doubled.
            quoted = f"{quote_backtick(config.database)}.{quote_backtick(table)}"
            await cursor.execute(
                f"SELECT * FROM {quoted.replace('%', '%%')} LIMIT %s",  # noqa: S608 (quoted)
                (limit + 1,),
            )
            records = await cursor.fetchall()
            names = [column[0] for column in cursor.description]
        declared = {column.name: column for column in catalog[table]}
        return build_preview(names, records, limit, declared)


SOURCE_TYPE = SourceType(
    name="mysql",
    display_name="MySQL / MariaDB",
    category=SourceCategory.DATABASE,
    config_model=MysqlConfig,
    connector=MysqlConnector(),
    description="Tables and views of a MySQL or MariaDB database.",
    drivers=("aiomysql",),
    extra="mysql",
)
