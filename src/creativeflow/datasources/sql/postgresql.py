"""PostgreSQL through asyncpg: tables, views, materialized views and foreign tables with their
columns from pg_catalog, and previews of them read in a read-only transaction."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, Literal

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
    reveal_optional,
)
from creativeflow.datasources.fields import DatabaseName, HostName, PemCertificate, Port
from creativeflow.datasources.sql.common import (
    CatalogColumn,
    Identifier,
    UserName,
    build_preview,
    clamp_limit,
    column_type,
    discovery,
    object_name_or_error,
    quote_double,
    redact,
    tls_context,
)

if TYPE_CHECKING:
    import asyncpg

SslMode = Literal["disable", "require", "verify-ca", "verify-full"]
SchemaName = Annotated[Identifier, Field(max_length=63)]


class PostgresqlConfig(SourceConfig):
    type: Literal["postgresql"]
    host: HostName = Field(description="Host name or IP address of the server")
    port: Port = Field(default=5432, description="TCP port (5432 by default)")
    database: DatabaseName = Field(description="The database to connect to")
    username: UserName
    password: Secret | None = Field(
        default=None, description="The user's password (none for trust or peer setups)"
    )
    schemas: list[SchemaName] = Field(
        default_factory=list,
        max_length=100,
        description="Schemas to discover and preview; empty for every non-system schema",
    )
    ssl_mode: SslMode = Field(
        default="require",
        description="disable: no TLS; require: TLS without certificate checks (checked "
        "against ca_certificate when one is given); verify-ca: the certificate must be "
        "signed by a trusted CA; verify-full: and name the host",
    )
    ca_certificate: PemCertificate | None = Field(
        default=None,
        description="PEM of the CA that signed the server's certificate (the system's CAs "
        "when empty)",
    )

    @field_validator("ca_certificate")
    @classmethod
    def _tls_on(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value and info.data.get("ssl_mode") == "disable":
            raise ValueError(
                "applies only with TLS; set ssl_mode to require, verify-ca or verify-full"
            )
        return value

    def hosts(self) -> list[tuple[str, int]]:
        return [(self.host, self.port)]


def _ssl(config: PostgresqlConfig) -> ssl.SSLContext | bool:
    if config.ssl_mode == "disable":
        return False
    # libpq: `require` with a root certificate checks the chain like verify-ca.
    verify_chain = config.ssl_mode != "require" or config.ca_certificate is not None
    return tls_context(
        config.host,
        ca_certificate=config.ca_certificate,
        verify_chain=verify_chain,
        verify_name=config.ssl_mode == "verify-full",
    )


# SQLSTATE → the code a failure maps to; any other state is ERROR with the server's message.
_STATES: dict[str, SourceErrorCode] = {
    "28P01": SourceErrorCode.AUTH_FAILED,
    "28000": SourceErrorCode.AUTH_FAILED,
    "3D000": SourceErrorCode.NOT_FOUND,
    "3F000": SourceErrorCode.NOT_FOUND,
    "42P01": SourceErrorCode.NOT_FOUND,
    "42501": SourceErrorCode.PERMISSION_DENIED,
    "57014": SourceErrorCode.TIMEOUT,
    "08P01": SourceErrorCode.PROTOCOL_ERROR,
}


def _error(exc: BaseException, target: str, config: PostgresqlConfig) -> SourceError:
    import asyncpg

    secret = reveal_optional(config.password)
    if isinstance(exc, asyncpg.exceptions.ConnectionDoesNotExistError):
        return SourceError(SourceErrorCode.PROTOCOL_ERROR, f"{target} closed the connection")
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        message = redact(exc.message or type(exc).__name__, secret)
        code = _STATES.get(state, SourceErrorCode.ERROR)
        return SourceError(code, f"{target}: {message} (SQLSTATE {state})")
    if isinstance(exc, asyncpg.InterfaceError | asyncpg.exceptions.InternalClientError):
        return SourceError(
            SourceErrorCode.PROTOCOL_ERROR,
            f"{target} does not answer like PostgreSQL ({type(exc).__name__})",
        )
    if isinstance(exc, ConnectionError) and "SSL" in str(exc) and config.ssl_mode != "disable":
        # asyncpg: 'PostgreSQL server at "...": rejected SSL upgrade'.
        return SourceError(
            SourceErrorCode.TLS_ERROR,
            f"{target} does not offer TLS; set ssl_mode to disable if that is expected",
        )
    if isinstance(exc, ssl.SSLError | OSError | TimeoutError):
        return network_error(exc, target)
    return SourceError(SourceErrorCode.ERROR, f"{target}: {type(exc).__name__}")


@asynccontextmanager
async def _connection(
    config: PostgresqlConfig, context: ConnectContext
) -> AsyncIterator[asyncpg.Connection]:
    import asyncpg

    ip = await context.address(config.host, config.port)
    target = f"PostgreSQL at {config.host}:{config.port}"
    try:
        connection = await asyncpg.connect(
            host=ip,
            port=config.port,
            user=config.username,
            password=reveal_optional(config.password),
            database=config.database,
            ssl=_ssl(config),
            timeout=context.timeout_seconds,
            command_timeout=context.timeout_seconds,
            server_settings={"application_name": "creativeflow"},
        )
    except Exception as exc:
        raise _error(exc, target, config) from None
    try:
        # Every session reads in a read-only transaction: nothing it runs can write.
        async with connection.transaction(readonly=True):
            yield connection
    except SourceError:
        raise
    except Exception as exc:
        raise _error(exc, target, config) from None
    finally:
        try:
            await connection.close(timeout=min(context.timeout_seconds, 2.0))
        except Exception:
            connection.terminate()


_KINDS = {
    "r": "table",
    "p": "table",
    "v": "view",
    "m": "materialized_view",
    "f": "foreign_table",
}

# Relations discovery lists and preview accepts: in the configured schemas, else in every
# schema but the system's.
_RELATIONS = """
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
  AND CASE WHEN cardinality($1::text[]) > 0 THEN n.nspname = ANY($1::text[])
      ELSE n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname !~ '^pg_(toast|temp_)' END
"""

_COLUMNS = """
SELECT a.attrelid, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS declared,
       COALESCE(bt.typname, t.typname) AS base,
       COALESCE(bt.typcategory, t.typcategory)::text AS category, a.attnotnull
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

# asyncpg answers money as text ("$1.00"), bit strings as BitString.
_OVERRIDES: dict[str, ColumnType] = {"money": "string"}


def _pg_type(name: str, category: str) -> ColumnType | None:
    if category == "A" or name.startswith("_"):
        return "array"
    if category == "E":
        return "string"
    if category == "C":
        return "object"
    return column_type(name, _OVERRIDES)


async def _catalog_columns(
    connection: asyncpg.Connection, oids: list[int]
) -> dict[int, list[CatalogColumn]]:
    columns: dict[int, list[CatalogColumn]] = {oid: [] for oid in oids}
    for row in await connection.fetch(_COLUMNS, oids):
        columns[row["attrelid"]].append(
            CatalogColumn(
                row["attname"],
                row["declared"],
                not row["attnotnull"],
                _pg_type(row["base"], row["category"]),
            )
        )
    return columns


def _result_type(attribute: Any) -> ColumnType | None:
    kind = attribute.type.kind
    if kind == "array":
        return "array"
    if kind == "composite":
        return "object"
    if kind == "range":
        return "string"
    return column_type(attribute.type.name, _OVERRIDES)


class PostgresqlConnector:
    async def check(self, config: PostgresqlConfig, context: ConnectContext) -> CheckResult:
        async with _connection(config, context) as connection:
            version = await connection.fetchval("SHOW server_version")
            row = await connection.fetchrow(
                "SELECT current_database() AS database, current_user AS user"
            )
        assert row is not None
        return CheckResult(
            server_version=str(version),
            details={"database": row["database"], "user": row["user"]},
        )

    async def discover(self, config: PostgresqlConfig, context: ConnectContext) -> Discovery:
        async with _connection(config, context) as connection:
            relations = await connection.fetch(
                "SELECT c.oid, n.nspname, c.relname, c.relkind::text AS relkind, c.reltuples"
                f"{_RELATIONS} ORDER BY n.nspname, c.relname LIMIT $2",
                config.schemas,
                MAX_DISCOVERED + 1,
            )
            columns = await _catalog_columns(connection, [row["oid"] for row in relations])
        objects = []
        for row in relations:
            details: dict[str, Any] = {"schema": row["nspname"]}
            if row["relkind"] in ("r", "p", "m", "f") and row["reltuples"] >= 0:
                details["row_estimate"] = int(row["reltuples"])
            objects.append(
                DiscoveredObject(
                    name=f"{row['nspname']}.{row['relname']}",
                    kind=_KINDS[row["relkind"]],
                    columns=[column.column() for column in columns[row["oid"]]],
                    details=details,
                )
            )
        return discovery(objects)

    async def preview(
        self, config: PostgresqlConfig, context: ConnectContext, object_name: str, limit: int
    ) -> Preview:
        name = object_name_or_error(object_name)
        limit = clamp_limit(limit)
        async with _connection(config, context) as connection:
            # The name as discovery spells it (`schema.table`), or a table on the search
            # path; matched against the catalog, so no part of it reaches the SQL text.
            found = await connection.fetch(
                f"SELECT c.oid, n.nspname, c.relname {_RELATIONS}"
                "  AND (n.nspname || '.' || c.relname = $2 OR (strpos($2, '.') = 0 "
                "       AND c.relname = $2 AND pg_catalog.pg_table_is_visible(c.oid)))"
                " LIMIT 2",
                config.schemas,
                name,
            )
            if not found:
                raise SourceError(
                    SourceErrorCode.NOT_FOUND,
                    f"no table or view {name} in {config.database} (give it as `schema.table`)",
                )
            if len(found) > 1:
                raise SourceError(
                    SourceErrorCode.INVALID_OBJECT,
                    f"{name} names more than one table; quote it as discovery does",
                )
            relation = found[0]
            catalog = await _catalog_columns(connection, [relation["oid"]])
            statement = await connection.prepare(
                f"SELECT * FROM {quote_double(relation['nspname'])}."  # noqa: S608 (quoted)
                f"{quote_double(relation['relname'])} LIMIT $1"
            )
            records = await statement.fetch(limit + 1)
            attributes = statement.get_attributes()
        by_name = {column.name: column for column in catalog[relation["oid"]]}
        declared = {}
        for attribute in attributes:
            known = by_name.get(attribute.name)
            declared[attribute.name] = CatalogColumn(
                attribute.name,
                known.source_type if known else attribute.type.name,
                known.nullable if known else None,
                _result_type(attribute) or (known.type if known else None),
            )
        return build_preview(
            [attribute.name for attribute in attributes],
            [tuple(record) for record in records],
            limit,
            declared,
        )


SOURCE_TYPE = SourceType(
    name="postgresql",
    display_name="PostgreSQL",
    category=SourceCategory.DATABASE,
    config_model=PostgresqlConfig,
    connector=PostgresqlConnector(),
    description="Tables and views of a PostgreSQL database (and compatible servers).",
    drivers=("asyncpg",),
)
