"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, literal_column, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncConnection

import creativeflow.ideas.models
import creativeflow.identity.models  # noqa: F401  (register every table on Base.metadata)
from creativeflow.db.base import Base
from creativeflow.db.types import JSONDocument, UTCDateTime

SEOUL = timezone(timedelta(hours=9))


@pytest.fixture
async def probe(connection: AsyncConnection) -> Table:
    """A scratch table inside the test's transaction (rolled back with it)."""
    table = Table(
        f"type_probe_{uuid.uuid4().hex[:8]}",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("at", UTCDateTime, nullable=True),
        Column("doc", JSONDocument, nullable=True),
    )
    await connection.run_sync(table.create)
    return table


async def test_aware_datetimes_come_back_as_the_same_instant_in_utc(
    connection: AsyncConnection, probe: Table
) -> None:
    written = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=SEOUL)
    await connection.execute(insert(probe).values(id=1, at=written))
    read = (await connection.execute(select(probe.c.at))).scalar_one()
    assert read == written
    assert read.tzinfo is not None
    assert read.utcoffset() == timedelta(0)
    assert read == datetime(2026, 3, 1, 0, 30, 15, 123456, tzinfo=UTC)


async def test_naive_datetimes_are_refused(connection: AsyncConnection, probe: Table) -> None:
    with pytest.raises(StatementError) as excinfo:
        await connection.execute(insert(probe).values(id=1, at=datetime(2026, 3, 1, 9, 30)))
    assert isinstance(excinfo.value.orig, ValueError)
    assert "naive" in str(excinfo.value.orig)


async def test_null_stays_null(connection: AsyncConnection, probe: Table) -> None:
    await connection.execute(insert(probe).values(id=1, at=None))
    assert (await connection.execute(select(probe.c.at))).scalar_one() is None


async def test_order_and_comparison_follow_the_instant_not_the_wall_clock(
    connection: AsyncConnection, probe: Table
) -> None:
    early = datetime(2026, 3, 1, 10, 0, tzinfo=SEOUL)  # 01:00 UTC
    late = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    await connection.execute(insert(probe), [{"id": 1, "at": late}, {"id": 2, "at": early}])
    ordered = (await connection.execute(select(probe.c.id).order_by(probe.c.at))).scalars().all()
    assert ordered == [2, 1]
    after = datetime(2026, 3, 1, 1, 30, tzinfo=UTC)
    later = (await connection.execute(select(probe.c.id).where(probe.c.at > after))).scalars()
    assert later.all() == [1]


async def test_values_stored_without_a_zone_read_back_as_utc(
    connection: AsyncConnection, probe: Table, backend: str
) -> None:
    """Rows written by other tools (plain SQL) still come back aware."""
    literal = "'2026-03-01 12:00:00'" if backend == "sqlite" else "'2026-03-01 12:00:00+00'"
    # A literal column: the value reaches the database as SQL text, bypassing UTCDateTime.
    await connection.execute(insert(probe).values(id=1, at=literal_column(literal)))
    read = (await connection.execute(select(probe.c.at))).scalar_one()
    assert read == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert read.utcoffset() == timedelta(0)


async def test_json_documents_round_trip(connection: AsyncConnection, probe: Table) -> None:
    document = {"tags": ["ai", "블로그"], "nested": {"n": 1, "ok": True, "none": None}}
    await connection.execute(insert(probe).values(id=1, doc=document))
    assert (await connection.execute(select(probe.c.doc))).scalar_one() == document


def _platform_columns(kind: str) -> list[tuple[str, str]]:
    """(table, column) of every model column of the platform type `kind`."""
    found = []
    for table in Base.metadata.tables.values():
        for column in table.columns:
            if (kind == "datetime" and isinstance(column.type, UTCDateTime)) or (
                kind == "json" and column.type is JSONDocument
            ):
                found.append((table.name, column.name))
    return found


async def _postgres_column_types(connection: AsyncConnection) -> dict[tuple[str, str], str]:
    rows = await connection.execute(
        text(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema()"
        )
    )
    return {(table, column): data_type for table, column, data_type in rows}


async def test_json_columns_are_jsonb_on_postgresql(
    connection: AsyncConnection, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("JSONB is PostgreSQL's")
    json_columns = _platform_columns("json")
    assert ("roles", "permissions") in json_columns
    types = await _postgres_column_types(connection)
    wrong = {column: types.get(column) for column in json_columns if types.get(column) != "jsonb"}
    assert not wrong, wrong


async def test_datetime_columns_are_timestamptz_on_postgresql(
    connection: AsyncConnection, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL column types")
    datetime_columns = _platform_columns("datetime")
    assert ("users", "created_at") in datetime_columns
    types = await _postgres_column_types(connection)
    wrong = {
        column: types.get(column)
        for column in datetime_columns
        if types.get(column) != "timestamp with time zone"
    }
    assert not wrong, wrong


async def test_uuid_columns_are_native_uuid_on_postgresql(
    connection: AsyncConnection, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL column types")
    types = await _postgres_column_types(connection)
    assert types[("users", "id")] == "uuid"
    assert types[("user_roles", "user_id")] == "uuid"
