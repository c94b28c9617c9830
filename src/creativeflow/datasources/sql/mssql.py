"""Microsoft SQL Server (and Azure SQL) through pymssql (FreeTDS) in a worker thread: the tables
and views of one database from INFORMATION_SCHEMA, and previews of them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationInfo, field_validator

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
    reveal,
)
from creativeflow.datasources.fields import DatabaseName, HostName, Port
from creativeflow.datasources.sql.common import (
    CatalogColumn,
    UserName,
    build_preview,
    clamp_limit,
    discovery,
    driver_or_error,
    object_name_or_error,
    quote_bracket,
    redact,
    timeout_seconds,
)

T = TypeVar("T")


class MssqlConfig(SourceConfig):
    type: Literal["mssql"]
    host: HostName = Field(description="Host name or IP address of the server")
    port: Port = Field(default=1433, description="TCP port (1433 by default)")
    database: DatabaseName = Field(description="The database to read")
    username: UserName
    password: Secret = Field(description="The SQL Server login's password")
    encrypt: bool = Field(default=True, description="Require an encrypted (TLS) connection")
    trust_server_certificate: bool = Field(
        default=False,
        description="Accept the server's certificate without checking it (self-signed "
        "servers). When false, FreeTDS checks it against its configured CAs (`ca file` in "
        "freetds.conf) and the host name",
    )

    @field_validator("trust_server_certificate")
    @classmethod
    def _encrypted(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("encrypt") is False:
            raise ValueError("applies only when `encrypt` is true")
        return value

    def hosts(self) -> list[tuple[str, int]]:
        return [(self.host, self.port)]


# SQL Server and DB-Library message numbers → codes.
_ERRORS: dict[int, SourceErrorCode] = {
    18456: SourceErrorCode.AUTH_FAILED,  # login failed
    18452: SourceErrorCode.AUTH_FAILED,  # untrusted domain login
    4060: SourceErrorCode.NOT_FOUND,  # cannot open the database requested by the login
    911: SourceErrorCode.NOT_FOUND,  # database does not exist
    208: SourceErrorCode.NOT_FOUND,  # invalid object name
    229: SourceErrorCode.PERMISSION_DENIED,  # permission denied on an object
    230: SourceErrorCode.PERMISSION_DENIED,  # permission denied on a column
    262: SourceErrorCode.PERMISSION_DENIED,
    300: SourceErrorCode.PERMISSION_DENIED,
    20003: SourceErrorCode.TIMEOUT,  # DB-Lib: server connection timed out
    20004: SourceErrorCode.PROTOCOL_ERROR,  # DB-Lib: read from the server failed
    20017: SourceErrorCode.PROTOCOL_ERROR,  # DB-Lib: unexpected EOF from the server
}
_NUMBER = re.compile(r"\b(?:error message|Msg) (\d+)")


def _number_and_text(exc: BaseException) -> tuple[int | None, str]:
    """pymssql raises `Error((number, b"message"))` from the server, `Error("message")` from
    DB-Library."""
    first: Any = exc.args[0] if exc.args else None
    number: Any = None
    text: Any = first
    if isinstance(first, tuple) and len(first) >= 2:
        number, text = first[0], first[1]
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = str(text or type(exc).__name__)
    if not isinstance(number, int):
        found = _NUMBER.search(text)
        number = int(found.group(1)) if found else None
    return number, text


def _error(exc: BaseException, target: str, config: MssqlConfig) -> SourceError:
    import pymssql

    if isinstance(exc, SourceError):
        return exc
    if not isinstance(exc, pymssql.Error):
        if isinstance(exc, OSError | TimeoutError):
            return network_error(exc, target)
        return SourceError(SourceErrorCode.ERROR, f"{target}: {type(exc).__name__}")
    number, text = _number_and_text(exc)
    first_line = redact(
        text.strip().splitlines()[0] if text.strip() else text, reveal(config.password)
    )
    lowered = text.lower()
    if "connection refused" in lowered:
        return SourceError(SourceErrorCode.CONNECTION_REFUSED, f"{target} refused the connection")
    if "timed out" in lowered or "timeout" in lowered:
        return SourceError(SourceErrorCode.TIMEOUT, f"{target} did not answer in time")
    if any(word in lowered for word in ("ssl", "tls", "certificate")):
        return SourceError(SourceErrorCode.TLS_ERROR, f"{target}: TLS failed ({first_line})")
    if number not in _ERRORS and "login failed" in lowered:
        number = 18456  # DB-Library may wrap the server's message in its own number
    if number not in _ERRORS and "cannot open database" in lowered:
        number = 4060
    if number in _ERRORS:
        return SourceError(_ERRORS[number], f"{target}: {first_line} (error {number})")
    if number in (20002, 20009):  # DB-Lib: connection failed, server unavailable
        return SourceError(SourceErrorCode.UNREACHABLE, f"{target} is unreachable ({first_line})")
    suffix = f" (error {number})" if number is not None else ""
    return SourceError(SourceErrorCode.ERROR, f"{target}: {first_line}{suffix}")


async def _in_thread(config: MssqlConfig, context: ConnectContext, work: Callable[[Any], T]) -> T:
    driver_or_error(SOURCE_TYPE)
    ip = await context.address(config.host, config.port)
    target = f"SQL Server at {config.host}:{config.port}"
    # FreeTDS checks the certificate against the name it connects to and cannot be told
    # another: with verification on it connects by name (just resolved and checked by the
    # address guard), otherwise to the checked address.
    server = config.host if config.encrypt and not config.trust_server_certificate else ip
    seconds = timeout_seconds(context.timeout_seconds)

    def run() -> T:
        import pymssql

        connection = pymssql.connect(
            server=server,
            port=str(config.port),
            user=config.username,
            password=reveal(config.password),
            database=config.database,
            login_timeout=seconds,
            timeout=seconds,
            appname="creativeflow",
            encryption="require" if config.encrypt else "off",
            autocommit=True,
        )
        try:
            return work(connection.cursor())
        finally:
            connection.close()

    try:
        return await asyncio.to_thread(run)
    except Exception as exc:
        raise _error(exc, target, config) from None


_MSSQL_TYPES: dict[str, ColumnType] = {
    "bit": "boolean",
    "timestamp": "binary",  # SQL Server's timestamp is a rowversion, not a time
    "geography": "binary",
    "geometry": "binary",
    "hierarchyid": "binary",
}


def _declared(data_type: str, length: int | None, precision: int | None, scale: int | None) -> str:
    if length is not None and data_type not in ("text", "ntext", "image", "xml"):
        return f"{data_type}({'max' if length == -1 else length})"
    if data_type in ("decimal", "numeric") and precision is not None:
        return f"{data_type}({precision},{scale or 0})"
    return data_type


_TABLES = (
    "SELECT TOP ({limit}) TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM INFORMATION_SCHEMA.TABLES"
    " WHERE TABLE_TYPE IN ('BASE TABLE', 'VIEW') {where} ORDER BY TABLE_SCHEMA, TABLE_NAME"
)
# The tables query (TOP with ORDER BY is allowed in a derived table) picks the columns' tables.
_COLUMNS = (
    "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE,"
    " c.CHARACTER_MAXIMUM_LENGTH, c.NUMERIC_PRECISION, c.NUMERIC_SCALE, c.IS_NULLABLE"
    " FROM INFORMATION_SCHEMA.COLUMNS c JOIN ({tables}) t"
    " ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME"
    " ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION"
)


def _columns(
    cursor: Any, tables_query: str, params: tuple[Any, ...]
) -> dict[tuple[str, str], list[CatalogColumn]]:
    cursor.execute(_COLUMNS.format(tables=tables_query), params or None)
    columns: dict[tuple[str, str], list[CatalogColumn]] = {}
    for schema, table, name, data_type, length, precision, scale, nullable in cursor.fetchall():
        declared = _declared(data_type, length, precision, scale)
        columns.setdefault((schema, table), []).append(
            CatalogColumn.declared(name, declared, nullable == "YES", _MSSQL_TYPES)
        )
    return columns


class MssqlConnector:
    async def check(self, config: MssqlConfig, context: ConnectContext) -> CheckResult:
        def work(cursor: Any) -> CheckResult:
            cursor.execute(
                "SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)),"
                " CAST(SERVERPROPERTY('Edition') AS nvarchar(128)), @@VERSION, DB_NAME(),"
                " SUSER_SNAME()"
            )
            version, edition, banner, database, user = cursor.fetchone()
            return CheckResult(
                server_version=version or banner.splitlines()[0],
                details={
                    "product": banner.splitlines()[0].strip(),
                    "edition": edition,
                    "database": database,
                    "user": user,
                },
            )

        return await _in_thread(config, context, work)

    async def discover(self, config: MssqlConfig, context: ConnectContext) -> Discovery:
        def work(cursor: Any) -> list[DiscoveredObject]:
            tables_query = _TABLES.format(limit=MAX_DISCOVERED + 1, where="")
            cursor.execute(tables_query)
            tables = cursor.fetchall()
            columns = _columns(cursor, tables_query, ())
            return [
                DiscoveredObject(
                    name=f"{schema}.{table}",
                    kind="view" if table_type == "VIEW" else "table",
                    columns=[column.column() for column in columns.get((schema, table), [])],
                    details={"schema": schema},
                )
                for schema, table, table_type in tables
            ]

        return discovery(await _in_thread(config, context, work))

    async def preview(
        self, config: MssqlConfig, context: ConnectContext, object_name: str, limit: int
    ) -> Preview:
        name = object_name_or_error(object_name)
        limit = clamp_limit(limit)

        def work(cursor: Any) -> Preview:
            # `schema.table` as discovery names it, or a table of the login's default schema;
            # matched against the catalog, so no part of the name reaches the SQL text.
            where = (
                "AND (TABLE_SCHEMA + '.' + TABLE_NAME = %s OR (CHARINDEX('.', %s) = 0"
                " AND TABLE_SCHEMA = SCHEMA_NAME() AND TABLE_NAME = %s))"
            )
            params = (name, name, name)
            found_query = _TABLES.format(limit=2, where=where)
            cursor.execute(found_query, params)
            found = cursor.fetchall()
            if not found:
                raise SourceError(
                    SourceErrorCode.NOT_FOUND, f"no table or view {name} in {config.database}"
                )
            if len(found) > 1:
                raise SourceError(
                    SourceErrorCode.INVALID_OBJECT, f"{name} names more than one table"
                )
            schema, table, _kind = found[0]
            catalog = _columns(cursor, found_query, params)
            # pymssql formats parameters with `%`: a `%` in a name is doubled.
            quoted = f"{quote_bracket(schema)}.{quote_bracket(table)}".replace("%", "%%")
            cursor.execute(f"SELECT TOP (%d) * FROM {quoted}", (limit + 1,))  # noqa: S608
            records = cursor.fetchall()
            names = [column[0] for column in cursor.description]
            declared = {column.name: column for column in catalog.get((schema, table), [])}
            return build_preview(names, records, limit, declared)

        return await _in_thread(config, context, work)


SOURCE_TYPE = SourceType(
    name="mssql",
    display_name="Microsoft SQL Server",
    category=SourceCategory.DATABASE,
    config_model=MssqlConfig,
    connector=MssqlConnector(),
    description="Tables and views of a SQL Server or Azure SQL database.",
    drivers=("pymssql",),
    extra="mssql",
)
