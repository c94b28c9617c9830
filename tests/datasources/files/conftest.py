"""Real files of every format the family reads, written where a test wants them."""

from __future__ import annotations

import datetime as dt
import decimal
import io
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

PEOPLE_CSV = (
    "id,name,score,active,joined\n"
    "1,Ada,9.5,true,2024-01-02\n"
    "2,Grace,,false,2024-02-03\n"
    "3,Linus,7,true,2024-03-04\n"
)


def parquet_bytes(rows: int = 10, row_group_size: int = 4) -> bytes:
    """A Parquet file of `rows` rows in row groups of `row_group_size`, with many types."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "price": pa.array([i * 1.5 for i in range(rows)], pa.float64()),
            "amount": pa.array(
                [decimal.Decimal(f"{i}.25") for i in range(rows)], pa.decimal128(9, 2)
            ),
            "label": pa.array([f"item {i}" if i % 3 else None for i in range(rows)], pa.string()),
            "ok": pa.array([i % 2 == 0 for i in range(rows)], pa.bool_()),
            "at": pa.array(
                [
                    dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC) + dt.timedelta(days=i)
                    for i in range(rows)
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "day": pa.array([dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(rows)]),
            "tags": pa.array([["a", str(i)] for i in range(rows)], pa.list_(pa.string())),
            "meta": pa.array([{"n": i} for i in range(rows)], pa.struct([("n", pa.int32())])),
            "blob": pa.array([bytes([i]) for i in range(rows)], pa.binary()),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group_size)
    return sink.getvalue()


def xlsx_bytes(sheets: dict[str, list[list[Any]]] | None = None) -> bytes:
    """A workbook with these sheets (rows of cells; the first row is the header)."""
    sheets = sheets or {
        "People": [
            ["id", "name", "joined", "score"],
            [1, "Ada", dt.datetime(2024, 1, 2), 9.5],
            [2, "Grace", dt.datetime(2024, 2, 3), None],
        ],
        "Totals": [["region", "total"], ["north", 10], ["south", 12], ["east", 7]],
    }
    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        worksheet = workbook.create_sheet(title)
        for row in rows:
            worksheet.append(row)
    sink = io.BytesIO()
    workbook.save(sink)
    return sink.getvalue()


@pytest.fixture
def write(file_root: Path):
    """`write("dir/name.csv", text_or_bytes)` -> the path, inside the file root."""

    def write_file(relative: str, content: str | bytes) -> Path:
        path = file_root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return path

    return write_file
