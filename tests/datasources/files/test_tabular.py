"""read_table over real files of each format, from bytes and from paths."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from creativeflow.datasources.base import SourceError, SourceErrorCode
from creativeflow.datasources.files import tabular
from creativeflow.datasources.files.tabular import (
    format_from_name,
    read_table,
    table_columns,
    xlsx_sheets,
)
from tests.datasources.files.conftest import PEOPLE_CSV, parquet_bytes, xlsx_bytes


def types_of(preview) -> dict[str, str]:
    return {column.name: column.type for column in preview.columns}


def fails(code: SourceErrorCode, *args, **kwargs) -> str:
    with pytest.raises(SourceError) as caught:
        read_table(*args, **kwargs)
    assert caught.value.code == code, caught.value.message
    return caught.value.message


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.csv", "csv"),
        ("dir/A.CSV", "csv"),
        ("x.json", "json"),
        ("x.jsonl", "jsonl"),
        ("x.ndjson", "jsonl"),
        ("x.parquet", "parquet"),
        ("book.xlsx", "xlsx"),
        ("notes.txt", None),
        ("csv", None),
    ],
)
def test_format_from_name(name: str, expected: str | None) -> None:
    assert format_from_name(name) == expected


# -- csv ---------------------------------------------------------------------------------------


def test_csv_rows_are_typed_from_their_text(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE_CSV)
    preview = read_table(path, "csv", 10)
    assert types_of(preview) == {
        "id": "integer",
        "name": "string",
        "score": "number",
        "active": "boolean",
        "joined": "date",
    }
    assert preview.rows[0] == {
        "id": 1,
        "name": "Ada",
        "score": 9.5,
        "active": True,
        "joined": "2024-01-02",
    }
    assert preview.rows[1]["score"] is None
    assert next(c for c in preview.columns if c.name == "score").nullable is True
    assert preview.truncated is False


def test_csv_limit_marks_truncated() -> None:
    preview = read_table(PEOPLE_CSV.encode(), "csv", 2)
    assert [row["id"] for row in preview.rows] == [1, 2]
    assert preview.truncated is True
    exact = read_table(PEOPLE_CSV.encode(), "csv", 3)
    assert len(exact.rows) == 3 and exact.truncated is False


def test_csv_delimiter_encoding_and_bom() -> None:
    text = "name;city\nJosé;Málaga\n"
    latin = read_table(text.encode("latin-1"), "csv", 5, csv_delimiter=";", encoding="latin-1")
    assert latin.rows == [{"name": "José", "city": "Málaga"}]
    tabbed = read_table(b"a\tb\n1\t2\n", "csv", 5, csv_delimiter="\t")
    assert tabbed.rows == [{"a": 1, "b": 2}]
    bom = read_table("\ufeffa,b\n1,2\n".encode(), "csv", 5)
    assert [column.name for column in bom.columns] == ["a", "b"]


def test_csv_headers_blank_rows_and_ragged_rows() -> None:
    data = b'name,,name\n\nx,"multi\nline",y,extra\nz\n'
    preview = read_table(data, "csv", 10)
    assert [column.name for column in preview.columns] == [
        "name",
        "column_2",
        "name_2",
        "column_4",
    ]
    assert preview.rows == [
        {"name": "x", "column_2": "multi\nline", "name_2": "y", "column_4": "extra"},
        {"name": "z", "column_2": None, "name_2": None, "column_4": None},
    ]


def test_csv_empty_and_header_only() -> None:
    assert read_table(b"", "csv", 5).columns == []
    header_only = read_table(b"a,b\n", "csv", 5)
    assert [c.name for c in header_only.columns] == ["a", "b"] and header_only.rows == []


def test_csv_malformed_and_not_text() -> None:
    message = fails(SourceErrorCode.INVALID_OBJECT, b'a,b\n1,"open\n', "csv", 5)
    assert "malformed at line" in message
    message = fails(SourceErrorCode.INVALID_OBJECT, b"a,b\n\xff\xfe,1\n", "csv", 5)
    assert "utf-8" in message


def test_csv_reads_only_what_the_preview_needs(tmp_path: Path) -> None:
    # The first rows are fine; what follows them is not text at all and is never read.
    path = tmp_path / "big.csv"
    rows = "".join(f"{i},{i * 2}\n" for i in range(20_000))
    path.write_bytes(f"a,b\n{rows}".encode() + b"\xff\x00" * 2_000_000)
    preview = read_table(path, "csv", 2)
    assert preview.rows == [{"a": 0, "b": 0}, {"a": 1, "b": 2}] and preview.truncated


def test_overlong_lines_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tabular, "MAX_LINE_CHARS", 100)
    message = fails(SourceErrorCode.INVALID_OBJECT, b"a\n" + b"x" * 500, "csv", 5)
    assert "line 2 is longer" in message
    fails(SourceErrorCode.INVALID_OBJECT, b'{"a": "' + b"x" * 500 + b'"}\n', "jsonl", 5)


# -- json and jsonl ----------------------------------------------------------------------------


def test_json_array_of_objects() -> None:
    rows = [{"id": 1, "tags": ["a"], "meta": {"k": 1}}, {"id": 2, "price": 2.5}]
    preview = read_table(json.dumps(rows).encode(), "json", 10)
    assert preview.rows == rows
    assert types_of(preview) == {
        "id": "integer",
        "tags": "array",
        "meta": "object",
        "price": "number",
    }
    assert read_table(b"  [ ]  ", "json", 5).rows == []


def test_json_object_holding_an_array(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    document = {
        "meta": {"count": 3, "list": "no"},
        "total": 3,
        "data": [{"a": i} for i in range(3)],
    }
    path.write_text(json.dumps(document, indent=2))
    preview = read_table(path, "json", 2)
    assert preview.rows == [{"a": 0}, {"a": 1}] and preview.truncated is True


def test_json_streams_elements(tmp_path: Path) -> None:
    # Large, and broken after the rows the preview takes: only the front is decoded.
    path = tmp_path / "big.json"
    rows = ",".join(json.dumps({"n": i, "text": "x" * 50}) for i in range(20_000))
    path.write_text("[" + rows + ", {broken")
    preview = read_table(path, "json", 3)
    assert [row["n"] for row in preview.rows] == [0, 1, 2] and preview.truncated is True
    with pytest.raises(SourceError) as caught:
        read_table(path, "json", 100_000)
    assert caught.value.code == SourceErrorCode.INVALID_OBJECT
    assert "malformed at character" in caught.value.message


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        (b'"text"', "neither an array"),
        (b'{"a": 1}', "no array of objects"),
        (b"{}", "no array of objects"),
        (b"[1, 2]", "element 1"),
        (b'[{"a": 1} {"a": 2}]', "expected ',' or ']'"),
        (b'[{"a": 1},', "malformed"),
        (b"", "neither an array"),
    ],
)
def test_json_malformed(document: bytes, complaint: str) -> None:
    assert complaint in fails(SourceErrorCode.INVALID_OBJECT, document, "json", 10)


def test_jsonl_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"id": 1, "at": "2024-01-01"}\n\n{"id": 2, "extra": true}\n{"id": 3}\n')
    preview = read_table(path, "jsonl", 2)
    assert preview.rows == [{"id": 1, "at": "2024-01-01"}, {"id": 2, "extra": True}]
    assert preview.truncated is True
    assert types_of(preview) == {"id": "integer", "at": "string", "extra": "boolean"}


def test_jsonl_bad_lines_are_named() -> None:
    message = fails(SourceErrorCode.INVALID_OBJECT, b'{"a": 1}\n\n{"a": \n', "jsonl", 10)
    assert message.startswith("line 3 is not valid JSON")
    message = fails(SourceErrorCode.INVALID_OBJECT, b'{"a": 1}\n[1, 2]\n', "jsonl", 10)
    assert message == "line 2 is not a JSON object"


# -- parquet -----------------------------------------------------------------------------------


def test_parquet_types_and_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "items.parquet"
    path.write_bytes(parquet_bytes(rows=10, row_group_size=4))
    preview = read_table(path, "parquet", 6)  # across the first two row groups
    assert [row["id"] for row in preview.rows] == [0, 1, 2, 3, 4, 5]
    assert preview.truncated is True
    assert types_of(preview) == {
        "id": "integer",
        "price": "number",
        "amount": "number",
        "label": "string",
        "ok": "boolean",
        "at": "datetime",
        "day": "date",
        "tags": "array",
        "meta": "object",
        "blob": "binary",
    }
    sources = {column.name: column.source_type for column in preview.columns}
    assert sources["amount"] == "decimal128(9, 2)" and sources["id"] == "int64"
    first = preview.rows[0]
    assert first["amount"] == "0.25" and first["label"] is None
    assert first["at"] == "2024-01-01T12:00:00+00:00" and first["day"] == "2024-01-01"
    assert first["tags"] == ["a", "0"] and first["meta"] == {"n": 0}
    assert first["blob"] == "AA=="
    whole = read_table(path.read_bytes(), "parquet", 100)
    assert len(whole.rows) == 10 and whole.truncated is False


def test_parquet_invalid_and_driver_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    message = fails(SourceErrorCode.INVALID_OBJECT, b"not parquet at all", "parquet", 5)
    assert "not valid Parquet" in message
    data = parquet_bytes()
    # As on an installation without the parquet extra.
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    message = fails(SourceErrorCode.DRIVER_MISSING, data, "parquet", 5)
    assert "pip install 'creativeflow[parquet]'" in message


# -- xlsx --------------------------------------------------------------------------------------


def test_xlsx_first_sheet_and_named_sheet(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    path.write_bytes(xlsx_bytes())
    first = read_table(path, "xlsx", 10)
    assert types_of(first) == {
        "id": "integer",
        "name": "string",
        "joined": "datetime",
        "score": "number",
    }
    assert first.rows[0] == {"id": 1, "name": "Ada", "joined": "2024-01-02T00:00:00", "score": 9.5}
    assert first.rows[1]["score"] is None
    totals = read_table(path.read_bytes(), "xlsx", 2, sheet="Totals")
    assert totals.rows == [{"region": "north", "total": 10}, {"region": "south", "total": 12}]
    assert totals.truncated is True
    assert xlsx_sheets(path) == ["People", "Totals"]
    assert [c.name for c in table_columns(path, "xlsx", sheet="Totals")] == ["region", "total"]


def test_xlsx_unknown_sheet_and_not_a_workbook(tmp_path: Path) -> None:
    data = xlsx_bytes()
    message = fails(SourceErrorCode.NOT_FOUND, data, "xlsx", 5, sheet="Nope")
    assert "People, Totals" in message
    assert "not an xlsx workbook" in fails(SourceErrorCode.INVALID_OBJECT, b"PK nope", "xlsx", 5)
    empty_sheet = read_table(xlsx_bytes({"Empty": []}), "xlsx", 5)
    assert empty_sheet.columns == [] and empty_sheet.rows == []


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    fails(SourceErrorCode.NOT_FOUND, tmp_path / "gone.csv", "csv", 5)
    fails(SourceErrorCode.NOT_FOUND, tmp_path / "gone.parquet", "parquet", 5)
    fails(SourceErrorCode.INVALID_OBJECT, tmp_path, "jsonl", 5)


def test_json_errors_early_in_a_large_file_are_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[{"a": nope}, ' + ", ".join(['{"b": 1}'] * 300_000) + "]")
    message = fails(SourceErrorCode.INVALID_OBJECT, path, "json", 5)
    assert message == "the JSON is malformed at character 7 (Expecting value)"


def test_json_elements_across_chunks(tmp_path: Path) -> None:
    # Elements far larger than one read, cut anywhere: strings, numbers, literals, nesting.
    rows = [{"text": "x" * 100_000, "n": 123456789, "ok": None, "deep": [[1, [2, {"k": "v"}]]]}] * 3
    path = tmp_path / "large.json"
    path.write_text(json.dumps({"meta": "y" * 70_000, "items": rows}))
    preview = read_table(path, "json", 5)
    assert len(preview.rows) == 3 and preview.rows[0]["n"] == 123456789
    assert preview.rows[0]["deep"] == [[1, [2, {"k": "v"}]]]
