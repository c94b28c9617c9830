"""What the SQL family shares: declared column types mapped onto `ColumnType`, identifier
quoting, config field types, TLS contexts that verify the host name while connecting to the
checked address, and previews built from fetched rows."""

from __future__ import annotations

import json
import math
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from creativeflow.datasources.base import (
    MAX_DISCOVERED,
    MAX_PREVIEW_ROWS,
    Column,
    ColumnType,
    DiscoveredObject,
    Discovery,
    Preview,
    SourceError,
    SourceErrorCode,
    SourceType,
)
from creativeflow.datasources.rows import infer_columns, jsonable

# -- config fields ---------------------------------------------------------------------------


def _user_name(value: str) -> str:
    if not value:
        raise ValueError("must name a user")
    if any(ord(char) < 32 for char in value):
        raise ValueError("must not hold control characters")
    return value


UserName = Annotated[
    str,
    Field(max_length=128, description="The user to log in as"),
    AfterValidator(_user_name),
]


def _identifier(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    if "\x00" in value:
        raise ValueError("must not hold a NUL character")
    return value


# A schema, table or column name as the server spells it (quoted when used, never pasted raw).
Identifier = Annotated[str, Field(max_length=128), AfterValidator(_identifier)]


def driver_or_error(source_type: SourceType) -> None:
    """DRIVER_MISSING (saying which extra installs it) when the type's driver is absent; the
    service checks this first, connectors check again so a direct call says the same."""
    error = source_type.driver_error()
    if error is not None:
        raise error


def timeout_seconds(seconds: float) -> int:
    """A whole-second driver timeout (pymssql takes integers), at least one second."""
    return max(1, math.ceil(seconds))


def redact(message: str, *secrets: str | None) -> str:
    """The message with every secret replaced: server messages are shown to the owner, and no
    server should echo a password, but one that does must not leak it."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "********")
    return message


# -- identifiers -----------------------------------------------------------------------------


def _checked(name: str) -> str:
    if not name or "\x00" in name:
        raise SourceError(SourceErrorCode.INVALID_OBJECT, "an object name must not be empty")
    return name


def quote_double(name: str) -> str:
    """An identifier in SQL-standard double quotes (PostgreSQL, SQLite)."""
    return '"' + _checked(name).replace('"', '""') + '"'


def quote_backtick(name: str) -> str:
    """An identifier in MySQL's backticks."""
    return "`" + _checked(name).replace("`", "``") + "`"


def quote_bracket(name: str) -> str:
    """An identifier in SQL Server's brackets."""
    return "[" + _checked(name).replace("]", "]]") + "]"


def object_name_or_error(object_name: str) -> str:
    name = object_name.strip()
    if not name or "\x00" in name or len(name) > 600:
        raise SourceError(
            SourceErrorCode.INVALID_OBJECT,
            "give the object as discovery names it (`schema.table` or `table`)",
        )
    return name


# -- column types ----------------------------------------------------------------------------

_TYPES: dict[str, ColumnType] = {}
for _kind, _names in (
    (
        "integer",
        "int integer int1 int2 int3 int4 int8 smallint bigint tinyint mediumint serial "
        "bigserial smallserial serial2 serial4 serial8 oid year",
    ),
    (
        "number",
        "numeric decimal dec fixed real float float4 float8 double double_precision money "
        "smallmoney number",
    ),
    ("boolean", "bool boolean"),
    (
        "string",
        "char character varchar character_varying nchar nvarchar national_character "
        "national_character_varying text tinytext mediumtext longtext ntext clob bpchar name "
        "citext uuid uniqueidentifier enum set xml inet cidr macaddr macaddr8 tsvector "
        "tsquery bit bit_varying varbit string sql_variant hierarchyid",
    ),
    ("date", "date"),
    (
        "datetime",
        "datetime datetime2 smalldatetime datetimeoffset timestamp timestamptz "
        "timestamp_with_time_zone timestamp_without_time_zone",
    ),
    ("time", "time timetz time_with_time_zone time_without_time_zone"),
    (
        "binary",
        "bytea blob tinyblob mediumblob longblob binary varbinary image rowversion",
    ),
    ("object", "json jsonb"),
    ("number", "interval"),  # answered as seconds (`jsonable` of a timedelta)
):
    for _name in _names.split():
        _TYPES[_name] = _kind  # type: ignore[assignment]

_ARGUMENTS = re.compile(r"\([^)]*\)")
_MODIFIERS = re.compile(r"\b(unsigned|signed|zerofill)\b")


def base_type_name(declared: str) -> str:
    """`character varying(40)` → `character_varying`, `int(10) unsigned` → `int`,
    `timestamp(3) with time zone` → `timestamp_with_time_zone`."""
    name = _MODIFIERS.sub("", _ARGUMENTS.sub("", declared.lower()))
    return "_".join(name.split())


def column_type(
    declared: str | None, overrides: Mapping[str, ColumnType] | None = None
) -> ColumnType | None:
    """The ColumnType of a declared SQL type, or None when it is not one we know (the preview
    then infers it from the values)."""
    if not declared:
        return None
    if declared.rstrip().endswith("]"):
        return "array"
    name = base_type_name(declared)
    if overrides and name in overrides:
        return overrides[name]
    return _TYPES.get(name)


# -- TLS -------------------------------------------------------------------------------------


class _ServerNameContext(ssl.SSLContext):
    """A client context that presents and verifies `server_name` whatever name the driver
    passes. asyncpg and aiomysql give the TLS layer the host they connected to, which is the
    address `ConnectContext.address()` checked; the certificate is for the host's name."""

    server_name: str | None = None

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return super().wrap_bio(
            incoming, outgoing, server_side, self.server_name or server_hostname, session
        )


def tls_context(
    server_name: str, *, ca_certificate: str | None, verify_chain: bool, verify_name: bool
) -> ssl.SSLContext:
    """A client TLS context for `server_name`: the chain checked against `ca_certificate` (or
    the system's CAs) when `verify_chain`, the certificate's name when `verify_name` too."""
    context = _ServerNameContext(ssl.PROTOCOL_TLS_CLIENT)
    context.server_name = server_name
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify_chain:
        if ca_certificate:
            context.load_verify_locations(cadata=ca_certificate)
        else:
            context.load_default_certs()
        context.check_hostname = verify_name
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


# -- answers ---------------------------------------------------------------------------------


def clamp_limit(limit: int) -> int:
    return max(0, min(limit, MAX_PREVIEW_ROWS))


def discovery(objects: list[DiscoveredObject]) -> Discovery:
    """Objects fetched with a cap of MAX_DISCOVERED + 1: more than the cap means truncated."""
    return Discovery(objects=objects[:MAX_DISCOVERED], truncated=len(objects) > MAX_DISCOVERED)


def _decoded(value: Any) -> Any:
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


@dataclass(frozen=True, slots=True)
class CatalogColumn:
    """A column as the source's catalog declares it."""

    name: str
    source_type: str | None
    nullable: bool | None
    # None: a declared type we do not know (a domain, an extension's type).
    type: ColumnType | None

    @classmethod
    def declared(
        cls,
        name: str,
        source_type: str | None,
        nullable: bool | None,
        overrides: Mapping[str, ColumnType] | None = None,
    ) -> CatalogColumn:
        return cls(name, source_type, nullable, column_type(source_type, overrides))

    def column(self, fallback: ColumnType = "string") -> Column:
        return Column(self.name, self.type or fallback, self.source_type, self.nullable)


def _boolean(value: Any) -> Any:
    """MySQL's BOOLEAN (tinyint(1)) and SQLite's answer 0 and 1."""
    return bool(value) if isinstance(value, int) and not isinstance(value, bool) else value


def build_preview(
    names: Sequence[str],
    records: Sequence[Sequence[Any]],
    limit: int,
    declared: Mapping[str, CatalogColumn],
) -> Preview:
    """A preview of rows fetched with `limit + 1` (one more row means truncated): each column
    with its declared type where it maps onto a ColumnType, else the type of its values; JSON
    columns a driver answers as text are decoded, 0/1 of boolean columns made booleans."""
    rows = [dict(zip(names, record, strict=False)) for record in records[:limit]]
    for name in names:
        known = declared.get(name)
        if known is not None and known.type in ("object", "boolean"):
            convert = _decoded if known.type == "object" else _boolean
            for row in rows:
                row[name] = convert(row[name])
    inferred = {column.name: column for column in infer_columns(rows, order=names)}
    columns = [
        known.column(inferred[name].type) if (known := declared.get(name)) else inferred[name]
        for name in names
    ]
    return Preview(
        columns=columns,
        rows=[{key: jsonable(value) for key, value in row.items()} for row in rows],
        truncated=len(records) > limit,
    )
