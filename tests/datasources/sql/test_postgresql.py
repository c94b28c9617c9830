from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError

from creativeflow.datasources.base import (
    ConnectContext,
    SourceError,
    SourceErrorCode,
    secret_field_paths,
)
from creativeflow.datasources.sql.postgresql import SOURCE_TYPE, PostgresqlConfig
from tests.datasources.servers import ServerAddress, closed_port
from tests.datasources.sql.wire import refusing_postgres, self_signed

CONNECTOR = SOURCE_TYPE.connector
ODD = '"odd ""name"""'  # a table named `odd "name"`


def config(**values: Any) -> PostgresqlConfig:
    return PostgresqlConfig.model_validate(
        {
            "type": "postgresql",
            "host": "127.0.0.1",
            "database": "app",
            "username": "reader",
            "ssl_mode": "disable",
        }
        | values
    )


def server_config(server: ServerAddress, **values: Any) -> PostgresqlConfig:
    return config(
        **{
            "host": server.host,
            "port": server.port,
            "database": server.path or "postgres",
            "username": server.user or "postgres",
            "password": server.password,
        }
        | values
    )


async def fails(call: Any, code: SourceErrorCode) -> SourceError:
    with pytest.raises(SourceError) as caught:
        await call
    assert caught.value.code == code, caught.value.message
    return caught.value


@pytest.fixture
async def schema(postgres_server: ServerAddress) -> AsyncIterator[str]:
    """A uniquely named schema with a table, a view and an oddly named table; dropped after."""
    name = f"cf_sql_{uuid.uuid4().hex[:10]}"
    connection = await asyncpg.connect(
        host=postgres_server.host,
        port=postgres_server.port,
        user=postgres_server.user,
        password=postgres_server.password,
        database=postgres_server.path,
    )
    try:
        await connection.execute(
            f"""
            CREATE SCHEMA {name};
            CREATE TABLE {name}.items (
                id bigserial PRIMARY KEY,
                title varchar(80) NOT NULL,
                price numeric(10, 2),
                active boolean,
                tags text[],
                attributes jsonb,
                created timestamptz,
                day date
            );
            INSERT INTO {name}.items (title, price, active, tags, attributes, created, day)
            SELECT 'item ' || n, n * 1.5, n % 2 = 0, ARRAY['t' || n], jsonb_build_object('n', n),
                   '2024-05-01T12:00:00Z'::timestamptz + n * interval '1 day',
                   '2024-05-01'::date + n
            FROM generate_series(1, 12) AS n;
            CREATE VIEW {name}.cheap AS SELECT id, title FROM {name}.items WHERE price < 5;
            CREATE TABLE {name}.{ODD} (value integer);
            INSERT INTO {name}.{ODD} VALUES (7);
            ANALYZE {name}.items;
            """  # noqa: S608 (our own names)
        )
        yield name
    finally:
        await connection.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        await connection.close()


# -- config ----------------------------------------------------------------------------------


def test_config_defaults_and_hosts() -> None:
    parsed = PostgresqlConfig.model_validate(
        {"type": "postgresql", "host": "DB.Example.com", "database": "app", "username": "u"}
    )
    assert (parsed.host, parsed.port, parsed.ssl_mode, parsed.schemas) == (
        "db.example.com",
        5432,
        "require",
        [],
    )
    assert parsed.password is None
    assert parsed.hosts() == [("db.example.com", 5432)]
    assert secret_field_paths(PostgresqlConfig) == ["password"]
    assert SOURCE_TYPE.drivers == ("asyncpg",) and SOURCE_TYPE.extra is None
    assert SOURCE_TYPE.driver_error() is None


@pytest.mark.parametrize(
    ("values", "loc"),
    [
        ({"host": "postgres://db.example.com"}, ("host",)),
        ({"host": "db.example.com:5432"}, ("host",)),
        ({"host": "bad_host!"}, ("host",)),
        ({"port": 0}, ("port",)),
        ({"port": 65536}, ("port",)),
        ({"database": "-app"}, ("database",)),
        ({"database": "a/b"}, ("database",)),
        ({"username": ""}, ("username",)),
        ({"ssl_mode": "prefer"}, ("ssl_mode",)),
        ({"ssl_mode": "require", "ca_certificate": "not a certificate"}, ("ca_certificate",)),
        ({"schemas": ["public", ""]}, ("schemas", 1)),
        ({"schemas": ["x" * 64]}, ("schemas", 0)),
        ({"url": "postgres://x"}, ("url",)),
    ],
)
def test_config_mistakes_name_the_field(values: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        config(**values)
    assert [error["loc"] for error in caught.value.errors()] == [loc]


def test_ca_certificate_needs_tls(tmp_path: Path) -> None:
    pem = self_signed("db.example.com", tmp_path).pem
    assert config(ssl_mode="verify-full", ca_certificate=pem).ca_certificate == pem.strip()
    with pytest.raises(ValidationError) as caught:
        config(ssl_mode="disable", ca_certificate=pem)
    (error,) = caught.value.errors()
    assert error["loc"] == ("ca_certificate",)
    assert "ssl_mode" in error["msg"]


# -- against the server ----------------------------------------------------------------------


async def test_check_answers_the_version(
    postgres_server: ServerAddress, context: ConnectContext
) -> None:
    result = await CONNECTOR.check(server_config(postgres_server), context)
    assert result.server_version and result.server_version[0].isdigit()
    assert result.details == {
        "database": postgres_server.path,
        "user": postgres_server.user or "postgres",
    }


async def test_discover_lists_tables_and_views_with_columns(
    postgres_server: ServerAddress, context: ConnectContext, schema: str
) -> None:
    found = await CONNECTOR.discover(server_config(postgres_server, schemas=[schema]), context)
    by_name = {item.name: item for item in found.objects}
    assert set(by_name) == {f"{schema}.items", f"{schema}.cheap", f'{schema}.odd "name"'}
    items = by_name[f"{schema}.items"]
    assert items.kind == "table"
    assert items.details == {"schema": schema, "row_estimate": 12}
    assert items.columns is not None
    assert [(c.name, c.type, c.source_type, c.nullable) for c in items.columns] == [
        ("id", "integer", "bigint", False),
        ("title", "string", "character varying(80)", False),
        ("price", "number", "numeric(10,2)", True),
        ("active", "boolean", "boolean", True),
        ("tags", "array", "text[]", True),
        ("attributes", "object", "jsonb", True),
        ("created", "datetime", "timestamp with time zone", True),
        ("day", "date", "date", True),
    ]
    assert by_name[f"{schema}.cheap"].kind == "view"
    assert found.truncated is False

    everything = await CONNECTOR.discover(server_config(postgres_server), context)
    names = {item.name for item in everything.objects}
    assert f"{schema}.items" in names
    assert not any(name.startswith(("pg_catalog.", "information_schema.")) for name in names)


async def test_preview_answers_rows_and_types(
    postgres_server: ServerAddress, context: ConnectContext, schema: str
) -> None:
    preview = await CONNECTOR.preview(server_config(postgres_server), context, f"{schema}.items", 5)
    assert preview.truncated is True
    assert len(preview.rows) == 5
    assert preview.rows[0] == {
        "id": 1,
        "title": "item 1",
        "price": "1.50",
        "active": False,
        "tags": ["t1"],
        "attributes": {"n": 1},
        "created": "2024-05-02T12:00:00+00:00",
        "day": "2024-05-02",
    }
    assert [(c.name, c.type, c.source_type) for c in preview.columns] == [
        ("id", "integer", "bigint"),
        ("title", "string", "character varying(80)"),
        ("price", "number", "numeric(10,2)"),
        ("active", "boolean", "boolean"),
        ("tags", "array", "text[]"),
        ("attributes", "object", "jsonb"),
        ("created", "datetime", "timestamp with time zone"),
        ("day", "date", "date"),
    ]

    view = await CONNECTOR.preview(server_config(postgres_server), context, f"{schema}.cheap", 50)
    assert view.truncated is False
    assert [row["title"] for row in view.rows] == ["item 1", "item 2", "item 3"]

    odd = await CONNECTOR.preview(
        server_config(postgres_server), context, f'{schema}.odd "name"', 10
    )
    assert odd.rows == [{"value": 7}]


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("{schema}.missing", SourceErrorCode.NOT_FOUND),
        ("{schema}.items; DROP TABLE {schema}.items", SourceErrorCode.NOT_FOUND),
        ('{schema}.items" --', SourceErrorCode.NOT_FOUND),
        ("pg_catalog.pg_class", SourceErrorCode.NOT_FOUND),
        ("  ", SourceErrorCode.INVALID_OBJECT),
    ],
)
async def test_preview_of_an_unknown_object(
    postgres_server: ServerAddress,
    context: ConnectContext,
    schema: str,
    name: str,
    code: SourceErrorCode,
) -> None:
    source = server_config(postgres_server)
    await fails(CONNECTOR.preview(source, context, name.format(schema=schema), 5), code)
    # Nothing was dropped.
    assert (await CONNECTOR.preview(source, context, f"{schema}.items", 1)).rows


async def test_preview_keeps_to_the_configured_schemas(
    postgres_server: ServerAddress, context: ConnectContext, schema: str
) -> None:
    source = server_config(postgres_server, schemas=["public"])
    await fails(CONNECTOR.preview(source, context, f"{schema}.items", 5), SourceErrorCode.NOT_FOUND)


async def test_unknown_database_is_not_found(
    postgres_server: ServerAddress, context: ConnectContext
) -> None:
    source = server_config(postgres_server, database=f"missing_{uuid.uuid4().hex[:8]}")
    error = await fails(CONNECTOR.check(source, context), SourceErrorCode.NOT_FOUND)
    assert "3D000" in error.message


async def test_unknown_role_fails_authentication(
    postgres_server: ServerAddress, context: ConnectContext
) -> None:
    secret = "s3cret-" + uuid.uuid4().hex
    source = server_config(postgres_server, username="cf_nobody", password=secret)
    error = await fails(CONNECTOR.check(source, context), SourceErrorCode.AUTH_FAILED)
    assert "cf_nobody" in error.message
    assert secret not in error.message


async def test_tls_required_but_not_offered(
    postgres_server: ServerAddress, context: ConnectContext
) -> None:
    connection = await asyncpg.connect(
        host=postgres_server.host,
        port=postgres_server.port,
        user=postgres_server.user,
        password=postgres_server.password,
        database=postgres_server.path,
        ssl=False,
    )
    try:
        if await connection.fetchval("SHOW ssl") == "on":
            pytest.skip("this PostgreSQL offers TLS")
    finally:
        await connection.close()
    error = await fails(
        CONNECTOR.check(server_config(postgres_server, ssl_mode="require"), context),
        SourceErrorCode.TLS_ERROR,
    )
    assert "ssl_mode" in error.message


# -- at the wire -----------------------------------------------------------------------------


async def test_wrong_password_fails_authentication(context: ConnectContext) -> None:
    secret = "pw-" + uuid.uuid4().hex
    async with refusing_postgres() as (port, seen):
        error = await fails(
            CONNECTOR.check(config(port=port, password=secret), context),
            SourceErrorCode.AUTH_FAILED,
        )
    assert seen.passwords == [secret]  # it was offered, and refused
    assert "28P01" in error.message and "reader" in error.message
    assert secret not in error.message


async def test_verify_full_checks_the_host_name_not_the_address(
    context: ConnectContext, tmp_path: Path
) -> None:
    certificate = self_signed("localhost", tmp_path)
    ip = await context.address("localhost", 5432)
    async with refusing_postgres(ip, certificate.server_context()) as (port, seen):
        source = config(
            host="localhost", port=port, ssl_mode="verify-full", ca_certificate=certificate.pem
        )
        # The handshake passes (connected to the address, verified for the name); then the
        # server refuses the (absent) password.
        await fails(CONNECTOR.check(source, context), SourceErrorCode.AUTH_FAILED)
    assert seen.tls_names == ["localhost"]


async def test_tls_certificate_checks(context: ConnectContext, tmp_path: Path) -> None:
    wrong_name = self_signed("wrong.example.com", tmp_path)
    async with refusing_postgres(tls=wrong_name.server_context()) as (port, _seen):
        pinned = {"port": port, "ca_certificate": wrong_name.pem}
        error = await fails(
            CONNECTOR.check(config(ssl_mode="verify-full", **pinned), context),
            SourceErrorCode.TLS_ERROR,
        )
        assert "certificate" in error.message
        # verify-ca checks the chain, not the name.
        await fails(
            CONNECTOR.check(config(ssl_mode="verify-ca", **pinned), context),
            SourceErrorCode.AUTH_FAILED,
        )
        # Without the CA the self-signed certificate is not trusted...
        await fails(
            CONNECTOR.check(config(ssl_mode="verify-ca", port=port), context),
            SourceErrorCode.TLS_ERROR,
        )
        # ...but `require` encrypts without checking.
        await fails(
            CONNECTOR.check(config(ssl_mode="require", port=port), context),
            SourceErrorCode.AUTH_FAILED,
        )


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
