"""SQLite files under DATASOURCE_FILE_ROOT, opened read-only (`mode=ro`) with the standard
library in a worker thread; queries that outlive the time limit are interrupted."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, Field

from creativeflow.datasources.base import (
    MAX_DISCOVERED,
    CheckResult,
    ColumnType,
    ConfigProblem,
    ConnectContext,
    DiscoveredObject,
    Discovery,
    Preview,
    SourceCategory,
    SourceConfig,
    SourceEnvironment,
    SourceError,
    SourceErrorCode,
    SourceType,
)
from creativeflow.datasources.sql.common import (
    CatalogColumn,
    build_preview,
    clamp_limit,
    column_type,
    discovery,
    object_name_or_error,
    quote_double,
)

T = TypeVar("T")


def _file_path(value: str) -> str:
    if not value:
        raise ValueError("must name a database file")
    if "\x00" in value:
        raise ValueError("must not hold a NUL character")
    if value.endswith(("/", "\\")):
        raise ValueError("must name a file, not a directory")
    return value


FilePath = Annotated[str, Field(max_length=1024), AfterValidator(_file_path)]


class SqliteConfig(SourceConfig):
    type: Literal["sqlite"]
    path: FilePath = Field(
        description="The database file, relative to DATASOURCE_FILE_ROOT (`shop/app.db`)"
    )

    def environment_problems(self, environment: SourceEnvironment) -> list[ConfigProblem]:
        root = environment.file_root.resolve()
        try:
            resolved = (root / self.path).resolve()
        except RuntimeError:  # a symlink loop (Python < 3.13)
            return [ConfigProblem("path", f"{self.path} is a symlink loop")]
        if not resolved.is_relative_to(root):
            return [
                ConfigProblem(
                    "path",
                    f"{self.path} lies outside DATASOURCE_FILE_ROOT; give a path relative to it",
                )
            ]
        return []


# SQLite's type affinity (https://sqlite.org/datatype3.html#determination_of_column_affinity)
# after the names other databases share (DATE, DATETIME, BOOLEAN, JSON, ...).
def _sqlite_type(declared: str) -> ColumnType | None:
    if not declared.strip():
        return None  # no declared type: the values decide
    known = column_type(declared, {"timestamp": "datetime"})
    if known is not None:
        return known
    upper = declared.upper()
    if "INT" in upper:
        return "integer"
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return "string"
    if "BLOB" in upper:
        return "binary"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return "number"
    return "number"  # NUMERIC affinity


class _Deadline:
    """A progress handler that interrupts a statement once the time limit has passed."""

    def __init__(self, seconds: float) -> None:
        self.ends = time.monotonic() + seconds
        self.passed = False

    def __call__(self) -> int:
        self.passed = time.monotonic() > self.ends
        return 1 if self.passed else 0


def _database_file(config: SqliteConfig, context: ConnectContext) -> Path:
    path = context.local_path(config.path)
    if not path.exists():
        raise SourceError(SourceErrorCode.NOT_FOUND, f"{config.path} does not exist")
    if not path.is_file():
        raise SourceError(SourceErrorCode.NOT_FOUND, f"{config.path} is not a file")
    return path


def _error(exc: sqlite3.Error, config: SqliteConfig, deadline: _Deadline) -> SourceError:
    message = str(exc)
    if deadline.passed or "interrupted" in message:
        return SourceError(SourceErrorCode.TIMEOUT, f"{config.path}: the query took too long")
    if "locked" in message or "busy" in message:
        return SourceError(SourceErrorCode.TIMEOUT, f"{config.path} is locked by a writer")
    if isinstance(exc, sqlite3.DatabaseError) and (
        "not a database" in message or "malformed" in message or "encrypted" in message
    ):
        return SourceError(
            SourceErrorCode.PROTOCOL_ERROR, f"{config.path} is not a SQLite database ({message})"
        )
    if "unable to open" in message:
        return SourceError(SourceErrorCode.PERMISSION_DENIED, f"{config.path} cannot be opened")
    if "no such table" in message:
        return SourceError(SourceErrorCode.NOT_FOUND, f"{config.path}: {message}")
    return SourceError(SourceErrorCode.ERROR, f"{config.path}: {message}")


@contextmanager
def _database(config: SqliteConfig, context: ConnectContext) -> Iterator[sqlite3.Connection]:
    path = _database_file(config, context)
    deadline = _Deadline(context.timeout_seconds)
    try:
        # `as_uri()` percent-encodes `?`, `#` and `%` in the path; `mode=ro` never writes.
        with closing(
            sqlite3.connect(
                f"{path.as_uri()}?mode=ro",
                uri=True,
                timeout=context.timeout_seconds,
                check_same_thread=False,
            )
        ) as connection:
            connection.set_progress_handler(deadline, 1000)
            yield connection
    except sqlite3.Error as exc:
        raise _error(exc, config, deadline) from None


async def _in_thread(
    config: SqliteConfig, context: ConnectContext, work: Callable[[sqlite3.Connection], T]
) -> T:
    def run() -> T:
        with _database(config, context) as connection:
            return work(connection)

    return await asyncio.to_thread(run)


_OBJECTS = (
    "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')"
    " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
)


def _columns(connection: sqlite3.Connection, table: str) -> list[CatalogColumn]:
    rows = connection.execute(
        'SELECT name, type, "notnull" FROM pragma_table_info(?) ORDER BY cid', (table,)
    ).fetchall()
    return [
        CatalogColumn(name, declared or None, not notnull, _sqlite_type(declared or ""))
        for name, declared, notnull in rows
    ]


class SqliteConnector:
    async def check(self, config: SqliteConfig, context: ConnectContext) -> CheckResult:
        def work(connection: sqlite3.Connection) -> CheckResult:
            # Reading the schema reads the header: a file that is not a database fails here.
            tables = connection.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            ).fetchone()[0]
            version = connection.execute("SELECT sqlite_version()").fetchone()[0]
            return CheckResult(
                server_version=version,
                details={
                    "path": config.path,
                    "size_bytes": _database_file(config, context).stat().st_size,
                    "tables": tables,
                },
            )

        return await _in_thread(config, context, work)

    async def discover(self, config: SqliteConfig, context: ConnectContext) -> Discovery:
        def work(connection: sqlite3.Connection) -> list[DiscoveredObject]:
            rows = connection.execute(
                f"{_OBJECTS} ORDER BY name LIMIT ?", (MAX_DISCOVERED + 1,)
            ).fetchall()
            return [
                DiscoveredObject(
                    name=name,
                    kind=kind,
                    columns=[column.column() for column in _columns(connection, name)],
                )
                for name, kind in rows
            ]

        return discovery(await _in_thread(config, context, work))

    async def preview(
        self, config: SqliteConfig, context: ConnectContext, object_name: str, limit: int
    ) -> Preview:
        name = object_name_or_error(object_name)
        limit = clamp_limit(limit)

        def work(connection: sqlite3.Connection) -> Preview:
            found = connection.execute(
                f"{_OBJECTS} AND name = ? COLLATE NOCASE", (name,)
            ).fetchone()
            if found is None:
                raise SourceError(
                    SourceErrorCode.NOT_FOUND, f"no table or view {name} in {config.path}"
                )
            table = found[0]
            declared = {column.name: column for column in _columns(connection, table)}
            cursor = connection.execute(
                f"SELECT * FROM {quote_double(table)} LIMIT ?",  # noqa: S608 (quoted)
                (limit + 1,),
            )
            records: list[Any] = cursor.fetchall()
            names = [column[0] for column in cursor.description]
            return build_preview(names, records, limit, declared)

        return await _in_thread(config, context, work)


SOURCE_TYPE = SourceType(
    name="sqlite",
    display_name="SQLite",
    category=SourceCategory.DATABASE,
    config_model=SqliteConfig,
    connector=SqliteConnector(),
    description="Tables and views of a SQLite file under the data-source file root.",
)
