"""Tabular files as previews: CSV, JSON, JSONL, Parquet and xlsx, from bytes or from a path.

Everything here is synchronous (callers run it in a thread). From a path only what the preview
needs is read: CSV and JSONL line by line, JSON element by element, Parquet the first row
groups, xlsx row by row (openpyxl's read-only mode). A file that is not what its format says
is INVALID_OBJECT with a message naming what is wrong.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Literal, TextIO, get_args

from creativeflow.datasources.base import Column, ColumnType, Preview, SourceError, SourceErrorCode
from creativeflow.datasources.files.json_rows import json_rows
from creativeflow.datasources.rows import infer_columns, jsonable, typed_text

if TYPE_CHECKING:
    import pyarrow as pa

FileFormat = Literal["csv", "json", "jsonl", "parquet", "xlsx"]
FILE_FORMATS: tuple[FileFormat, ...] = get_args(FileFormat)

# Lines longer than this (a CSV or JSONL file without line breaks, say) are not read whole.
MAX_LINE_CHARS = 8 * 1024 * 1024
# The rows discovery reads to tell a table's columns.
COLUMN_SAMPLE_ROWS = 100

_EXTENSIONS: dict[str, FileFormat] = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
}


def format_from_name(name: str) -> FileFormat | None:
    """The format a file name's extension says (case-insensitive), or None."""
    return _EXTENSIONS.get(PurePosixPath(name).suffix.lower())


def read_table(
    data: bytes | Path,
    file_format: FileFormat,
    limit: int,
    *,
    sheet: str | None = None,
    csv_delimiter: str = ",",
    encoding: str = "utf-8",
) -> Preview:
    """The first `limit` rows of a file and its columns' types; `truncated` when it holds
    more. `sheet` picks an xlsx sheet (default: the first)."""
    limit = max(limit, 0)
    try:
        if file_format == "csv":
            with _text(data, encoding) as handle:
                return _csv(handle, limit, csv_delimiter)
        if file_format == "jsonl":
            with _text(data, encoding) as handle:
                return _jsonl(handle, limit)
        if file_format == "json":
            with _binary(data) as binary:
                rows, more = json_rows(binary, _codec(encoding), limit)
            return _object_rows(rows, more)
        if file_format == "parquet":
            return _parquet(data, limit)
        if file_format == "xlsx":
            return _xlsx(data, limit, sheet)
    except UnicodeDecodeError as exc:
        raise SourceError(
            SourceErrorCode.INVALID_OBJECT, f"the file is not {encoding} text ({exc.reason})"
        ) from None
    except OSError as exc:
        raise file_error(exc) from None
    raise SourceError(SourceErrorCode.INVALID_OBJECT, f"{file_format} is not a known file format")


def table_columns(
    data: bytes | Path,
    file_format: FileFormat,
    *,
    sheet: str | None = None,
    csv_delimiter: str = ",",
    encoding: str = "utf-8",
) -> list[Column]:
    """A table's columns as discovery shows them, inferred from its first rows."""
    preview = read_table(
        data,
        file_format,
        COLUMN_SAMPLE_ROWS,
        sheet=sheet,
        csv_delimiter=csv_delimiter,
        encoding=encoding,
    )
    return preview.columns


def xlsx_sheets(data: bytes | Path) -> list[str]:
    """The names of a workbook's worksheets (chart sheets hold no rows and are left out)."""
    try:
        workbook = _workbook(data)
    except OSError as exc:
        raise file_error(exc) from None
    try:
        return [worksheet.title for worksheet in workbook.worksheets]
    finally:
        workbook.close()


def file_error(exc: OSError) -> SourceError:
    """A failure reading a local file as a SourceError (no path: callers name the object)."""
    if isinstance(exc, FileNotFoundError):
        return SourceError(SourceErrorCode.NOT_FOUND, "the file does not exist")
    if isinstance(exc, PermissionError):
        return SourceError(SourceErrorCode.PERMISSION_DENIED, "the file is not readable here")
    if isinstance(exc, IsADirectoryError):
        return SourceError(SourceErrorCode.INVALID_OBJECT, "is a directory, not a file")
    return SourceError(SourceErrorCode.ERROR, f"the file could not be read ({exc.strerror or exc})")


# -- text formats ------------------------------------------------------------------------------


def _codec(encoding: str) -> str:
    """The codec to decode with: UTF-8 also takes a byte-order mark (as Excel writes it)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise SourceError(
            SourceErrorCode.INVALID_OBJECT, f"{encoding} is not a known text encoding"
        ) from None
    return "utf-8-sig" if name == "utf-8" else name


@contextmanager
def _binary(data: bytes | Path) -> Iterator[BinaryIO]:
    if isinstance(data, Path):
        with data.open("rb") as handle:
            yield handle
    else:
        yield io.BytesIO(data)


@contextmanager
def _text(data: bytes | Path, encoding: str) -> Iterator[TextIO]:
    codec = _codec(encoding)
    # newline="": the csv module sees line endings as written (quoted fields may hold them).
    with _binary(data) as binary, io.TextIOWrapper(binary, encoding=codec, newline="") as handle:
        yield handle


def _lines(handle: IO[str]) -> Iterator[str]:
    """The file's lines, each at most MAX_LINE_CHARS long."""
    number = 0
    while True:
        line = handle.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_CHARS:
            raise SourceError(
                SourceErrorCode.INVALID_OBJECT,
                f"line {number} is longer than {MAX_LINE_CHARS // 2**20} Mi characters; "
                "too large to preview",
            )
        yield line


def _column_names(cells: Sequence[Any]) -> list[str]:
    """Header cells as column names: blank ones numbered, repeated ones made unique."""
    names: list[str] = []
    for index, cell in enumerate(cells):
        base = str(cell).strip() if cell is not None else ""
        base = base or f"column_{index + 1}"
        name, suffix = base, 2
        while name in names:
            name, suffix = f"{base}_{suffix}", suffix + 1
        names.append(name)
    return names


def _widen(names: list[str], width: int) -> None:
    """Name the cells of a row longer than the header."""
    while len(names) < width:
        name = f"column_{len(names) + 1}"
        names.append(name if name not in names else f"{name}_{len(names)}")


def _csv(handle: TextIO, limit: int, delimiter: str) -> Preview:
    reader = csv.reader(_lines(handle), delimiter=delimiter, strict=True)
    cells_rows: list[list[str]] = []
    truncated = False
    try:
        header = next(reader, None)
        if header is None:
            return Preview(columns=[], rows=[])
        names = _column_names(header)
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # blank lines
            if len(cells_rows) == limit:
                truncated = True
                break
            _widen(names, len(cells))
            cells_rows.append(cells)
    except csv.Error as exc:
        raise SourceError(
            SourceErrorCode.INVALID_OBJECT,
            f"the CSV is malformed at line {reader.line_num} ({exc})",
        ) from None
    text_rows = [dict(zip(names, cells, strict=False)) for cells in cells_rows]
    columns = infer_columns(text_rows, from_text=True, order=names)
    kinds = {column.name: column.type for column in columns}
    rows = [
        {
            name: jsonable(typed_text(row[name], kinds[name])) if name in row else None
            for name in names
        }
        for row in text_rows
    ]
    return Preview(columns=columns, rows=rows, truncated=truncated)


def _jsonl(handle: TextIO, limit: int) -> Preview:
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(_lines(handle), start=1):
        if not line.strip():
            continue
        if len(rows) == limit:
            return _object_rows(rows, True)
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SourceError(
                SourceErrorCode.INVALID_OBJECT, f"line {number} is not valid JSON ({exc.msg})"
            ) from None
        if not isinstance(row, dict):
            raise SourceError(SourceErrorCode.INVALID_OBJECT, f"line {number} is not a JSON object")
        rows.append(row)
    return _object_rows(rows, False)


def _object_rows(rows: list[dict[str, Any]], truncated: bool) -> Preview:
    safe = [{str(key): jsonable(value) for key, value in row.items()} for row in rows]
    return Preview(columns=infer_columns(rows), rows=safe, truncated=truncated)


# -- parquet -----------------------------------------------------------------------------------


def _parquet(data: bytes | Path, limit: int) -> Preview:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise SourceError(
            SourceErrorCode.DRIVER_MISSING,
            "reading Parquet needs pyarrow, which is not installed here; install it with "
            "pip install 'creativeflow[parquet]'",
        ) from None
    source: str | pa.BufferReader = str(data) if isinstance(data, Path) else pa.BufferReader(data)
    rows: list[dict[str, Any]] = []
    try:
        with pq.ParquetFile(source) as parquet:
            schema = parquet.schema_arrow
            total = parquet.metadata.num_rows
            # Row group by row group: only the groups the first `limit` rows lie in are read.
            for index in range(parquet.num_row_groups):
                if len(rows) >= limit:
                    break
                group = parquet.read_row_group(index)
                rows.extend(group.slice(0, limit - len(rows)).to_pylist())
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except pa.ArrowException as exc:
        raise SourceError(
            SourceErrorCode.INVALID_OBJECT, f"the file is not valid Parquet ({_first_line(exc)})"
        ) from None
    columns = [
        Column(
            name=field.name,
            type=_arrow_type(field.type),
            source_type=str(field.type),
            nullable=field.nullable,
        )
        for field in schema
    ]
    safe = [{str(key): jsonable(value) for key, value in row.items()} for row in rows]
    return Preview(columns=columns, rows=safe, truncated=total > len(rows))


def _arrow_type(arrow_type: pa.DataType) -> ColumnType:
    import pyarrow.types as types

    if types.is_dictionary(arrow_type):
        return _arrow_type(arrow_type.value_type)
    checks: list[tuple[ColumnType, Any]] = [
        ("null", types.is_null),
        ("boolean", types.is_boolean),
        ("integer", types.is_integer),
        ("number", lambda t: types.is_floating(t) or types.is_decimal(t)),
        ("string", lambda t: types.is_string(t) or types.is_large_string(t)),
        ("datetime", types.is_timestamp),
        ("date", types.is_date),
        ("time", types.is_time),
        ("binary", lambda t: types.is_binary(t) or types.is_large_binary(t)),
        ("binary", types.is_fixed_size_binary),
        ("object", lambda t: types.is_struct(t) or types.is_map(t)),
        ("array", lambda t: types.is_list(t) or types.is_large_list(t)),
        ("array", types.is_fixed_size_list),
    ]
    for kind, check in checks:
        if check(arrow_type):
            return kind
    return "string"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- xlsx --------------------------------------------------------------------------------------


def _workbook(data: bytes | Path) -> Any:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    source = data if isinstance(data, Path) else io.BytesIO(data)
    try:
        return load_workbook(source, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise SourceError(
            SourceErrorCode.INVALID_OBJECT, f"the file is not an xlsx workbook ({exc})"
        ) from None
    except (KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
        # A zip file, but not the parts a workbook holds.
        raise SourceError(
            SourceErrorCode.INVALID_OBJECT,
            f"the file is not a readable xlsx workbook ({type(exc).__name__})",
        ) from None


def _xlsx(data: bytes | Path, limit: int, sheet: str | None) -> Preview:
    workbook = _workbook(data)
    try:
        worksheets = {worksheet.title: worksheet for worksheet in workbook.worksheets}
        if sheet is not None and sheet not in worksheets:
            known = ", ".join(worksheets) or "none"
            raise SourceError(
                SourceErrorCode.NOT_FOUND,
                f"the workbook has no sheet {sheet!r} (its sheets: {known})",
            )
        if not worksheets:
            return Preview(columns=[], rows=[])
        worksheet = worksheets[sheet] if sheet is not None else next(iter(worksheets.values()))
        try:
            names, rows, truncated = _sheet_rows(worksheet.iter_rows(values_only=True), limit)
        except (KeyError, ValueError, TypeError, SyntaxError) as exc:  # SyntaxError: bad XML
            raise SourceError(
                SourceErrorCode.INVALID_OBJECT,
                f"the sheet {worksheet.title!r} is not readable ({type(exc).__name__})",
            ) from None
    finally:
        workbook.close()
    columns = infer_columns(rows, order=names)
    safe = [{name: jsonable(row.get(name)) for name in names} for row in rows]
    return Preview(columns=columns, rows=safe, truncated=truncated)


def _sheet_rows(
    cells: Iterator[Sequence[Any]], limit: int
) -> tuple[list[str], list[dict[str, Any]], bool]:
    """The header's names, the first `limit` rows (empty ones skipped), whether more follow."""
    header = next(cells, None)
    if header is None:
        return [], [], False
    names = _column_names(_trimmed(header))
    rows: list[dict[str, Any]] = []
    for values in cells:
        row_values = _trimmed(values)
        if not row_values:
            continue
        if len(rows) == limit:
            return names, rows, True
        _widen(names, len(row_values))
        rows.append(dict(zip(names, row_values, strict=False)))
    return names, rows, False


def _trimmed(values: Sequence[Any]) -> list[Any]:
    """A row without its trailing empty cells (read-only sheets pad rows to the widest)."""
    cells = list(values)
    while cells and (cells[-1] is None or cells[-1] == ""):
        cells.pop()
    return cells
