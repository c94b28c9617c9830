"""Files under DATASOURCE_FILE_ROOT: one csv, json, jsonl, parquet or xlsx file, or a
directory of them. Every path goes through `ConnectContext.local_path`, so neither `..` nor a
symlink reaches outside the root."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import stat
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from creativeflow.datasources.base import (
    MAX_DISCOVERED,
    CheckResult,
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
from creativeflow.datasources.files.options import (
    CsvDelimiter,
    SheetName,
    TextEncoding,
    naming,
    split_sheet,
)
from creativeflow.datasources.files.tabular import (
    FILE_FORMATS,
    FileFormat,
    file_error,
    format_from_name,
    read_table,
    table_columns,
    xlsx_sheets,
)

# Entries a directory discovery looks at before it stops (a huge tree with few matches).
MAX_WALKED = 100_000


def _path(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    if not value.strip():
        raise ValueError("must name a file or directory")
    return value


def _glob(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    pattern = PurePosixPath(value)
    if pattern.is_absolute() or ".." in pattern.parts:
        raise ValueError("must be a pattern inside the directory (no leading '/', no '..')")
    return value


class LocalFileConfig(SourceConfig):
    type: Literal["local_file"]
    path: Annotated[str, AfterValidator(_path)] = Field(
        max_length=4096,
        description="A file or directory, relative to the server's DATASOURCE_FILE_ROOT "
        "(or an absolute path inside it)",
    )
    format: FileFormat | None = Field(
        default=None,
        description="csv, json, jsonl, parquet or xlsx; omitted: from each file's extension",
    )
    csv_delimiter: CsvDelimiter = ","
    encoding: TextEncoding = "utf-8"
    sheet: SheetName | None = Field(
        default=None, description="xlsx: the sheet to read (default: the first)"
    )
    glob: Annotated[str, AfterValidator(_glob)] = Field(
        default="*",
        max_length=256,
        description="A directory's files to list, matched at any depth (`*.csv`, `2024/*.parquet`)",
    )

    @field_validator("sheet")
    @classmethod
    def _sheet_needs_xlsx(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        named = info.data.get("format") or format_from_name(info.data.get("path") or "")
        if named is not None and named != "xlsx":
            raise ValueError(f"applies to xlsx files only, and this source reads {named}")
        return value

    def environment_problems(self, environment: SourceEnvironment) -> list[ConfigProblem]:
        root = environment.file_root.resolve()
        try:
            target = (root / self.path).resolve()
        except RuntimeError:  # a symlink loop
            return [ConfigProblem("path", f"{self.path} is a symlink loop")]
        if not target.is_relative_to(root):
            return [
                ConfigProblem(
                    "path",
                    f"{self.path} lies outside DATASOURCE_FILE_ROOT; give a path relative to it",
                )
            ]
        return []


def _modified(info: os.stat_result) -> str:
    return dt.datetime.fromtimestamp(info.st_mtime, dt.UTC).isoformat()


def _format(config: LocalFileConfig, name: str) -> FileFormat | None:
    return config.format or format_from_name(name)


def _known_format(config: LocalFileConfig, name: str) -> FileFormat:
    file_format = _format(config, name)
    if file_format is None:
        raise SourceError(
            SourceErrorCode.INVALID_OBJECT,
            f"{name}: the format is not clear from the name; set `format` to one of "
            f"{', '.join(FILE_FORMATS)}",
        )
    return file_format


def _inside(context: ConnectContext, path: str | Path, name: str) -> Path:
    """`path` resolved inside the file root (PERMISSION_DENIED outside it)."""
    try:
        return context.local_path(path)
    except RuntimeError:  # a symlink loop (Python before 3.13 raises this resolving one)
        raise SourceError(SourceErrorCode.INVALID_OBJECT, f"{name} is a symlink loop") from None


def _source(config: LocalFileConfig, context: ConnectContext) -> tuple[Path, os.stat_result]:
    """The source's file or directory, resolved inside the root, and its status."""
    path = _inside(context, config.path, config.path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SourceError(
            SourceErrorCode.NOT_FOUND, f"there is no file or directory {config.path}"
        ) from None
    except OSError as exc:
        raise naming(file_error(exc), config.path) from None
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        raise SourceError(
            SourceErrorCode.INVALID_OBJECT, f"{config.path} is neither a file nor a directory"
        )
    return path, info


def _read(config: LocalFileConfig, path: Path, name: str, limit: int, sheet: str | None) -> Preview:
    try:
        return read_table(
            path,
            _known_format(config, name),
            limit,
            sheet=sheet or config.sheet,
            csv_delimiter=config.csv_delimiter,
            encoding=config.encoding,
        )
    except SourceError as exc:
        raise naming(exc, name) from None


def _check(config: LocalFileConfig, context: ConnectContext) -> CheckResult:
    path, info = _source(config, context)
    if stat.S_ISDIR(info.st_mode):
        if not os.access(path, os.R_OK | os.X_OK):
            raise SourceError(
                SourceErrorCode.PERMISSION_DENIED, f"the directory {config.path} is not readable"
            )
        return CheckResult(details={"kind": "directory", "modified": _modified(info)})
    name = PurePosixPath(config.path).name
    file_format = _known_format(config, name)
    # One row read proves the file is readable and what its format says.
    preview = _read(config, path, name, 1, None)
    return CheckResult(
        details={
            "kind": "file",
            "format": file_format,
            "size": info.st_size,
            "modified": _modified(info),
            "columns": len(preview.columns),
        }
    )


def _file_objects(
    config: LocalFileConfig, path: Path, name: str, info: os.stat_result, *, columns: bool
) -> list[DiscoveredObject]:
    """One file as discovery lists it: an xlsx file's sheets, or the file itself."""
    file_format = _known_format(config, name)
    details: dict[str, Any] = {
        "format": file_format,
        "size": info.st_size,
        "modified": _modified(info),
    }
    options: dict[str, Any] = {"csv_delimiter": config.csv_delimiter, "encoding": config.encoding}
    try:
        if file_format == "xlsx":
            return [
                DiscoveredObject(
                    name=f"{name}#{sheet}",
                    kind="sheet",
                    columns=table_columns(path, "xlsx", sheet=sheet) if columns else None,
                    details={**details, "sheet": sheet},
                )
                for sheet in xlsx_sheets(path)
            ]
        found = table_columns(path, file_format, **options) if columns else None
    except SourceError as exc:
        if columns:  # the source's one file
            raise naming(exc, name) from None
        # One unreadable file does not spoil a directory's listing; it says what is wrong.
        return [
            DiscoveredObject(name=name, kind="file", details={**details, "problem": exc.message})
        ]
    return [DiscoveredObject(name=name, kind="file", columns=found, details=details)]


def _walk(
    config: LocalFileConfig, context: ConnectContext, directory: Path
) -> tuple[list[DiscoveredObject], bool]:
    objects: list[DiscoveredObject] = []
    walked = 0
    # Matching is anchored at the right, so `*.csv` already finds them at any depth; a leading
    # `**/` (which PurePath.match reads as one `*` level) would only hide the top level.
    pattern = re.sub(r"^(\*\*/)+", "", config.glob) or "*"
    for current, subdirectories, files in os.walk(directory):  # symlinked directories: not entered
        subdirectories.sort()
        for file_name in sorted(files):
            walked += 1
            if walked > MAX_WALKED:
                return objects, True
            relative = (Path(current) / file_name).relative_to(directory).as_posix()
            if not PurePosixPath(relative).match(pattern):
                continue
            if _format(config, relative) is None:
                continue
            try:
                # Symlinks resolved: one that points outside the root is left out.
                target = _inside(context, directory / relative, relative)
                info = target.stat()
            except (SourceError, OSError):
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            objects.extend(_file_objects(config, target, relative, info, columns=False))
            if len(objects) > MAX_DISCOVERED:
                return objects[:MAX_DISCOVERED], True
    return objects, False


def _discover(config: LocalFileConfig, context: ConnectContext) -> Discovery:
    path, info = _source(config, context)
    if stat.S_ISDIR(info.st_mode):
        objects, truncated = _walk(config, context, path)
        return Discovery(objects=objects, truncated=truncated)
    name = PurePosixPath(config.path).name
    return Discovery(objects=_file_objects(config, path, name, info, columns=True))


def _preview(
    config: LocalFileConfig, context: ConnectContext, object_name: str, limit: int
) -> Preview:
    path, info = _source(config, context)
    if stat.S_ISREG(info.st_mode):
        file_name = PurePosixPath(config.path).name
        name, sheet = split_sheet(object_name.strip(), _format(config, file_name))
        if name not in ("", file_name):
            raise SourceError(
                SourceErrorCode.NOT_FOUND, f"this source is the one file {file_name}, not {name}"
            )
        return _read(config, path, file_name, limit, sheet)
    name, sheet = split_sheet(object_name.strip(), config.format)
    relative = PurePosixPath(name)
    if not name or "\x00" in name or relative.is_absolute() or ".." in relative.parts:
        raise SourceError(
            SourceErrorCode.INVALID_OBJECT,
            f"{object_name!r} is not a file name relative to the source's directory",
        )
    target = _inside(context, path / relative, name)
    try:
        target_info = target.stat()
    except FileNotFoundError:
        raise SourceError(SourceErrorCode.NOT_FOUND, f"there is no file {name}") from None
    except OSError as exc:
        raise naming(file_error(exc), name) from None
    if not stat.S_ISREG(target_info.st_mode):
        raise SourceError(SourceErrorCode.INVALID_OBJECT, f"{name} is not a file")
    return _read(config, target, name, limit, sheet)


class LocalFileConnector:
    """File work runs in a thread; nothing here writes to the files."""

    async def check(self, config: LocalFileConfig, context: ConnectContext) -> CheckResult:
        return await asyncio.to_thread(_check, config, context)

    async def discover(self, config: LocalFileConfig, context: ConnectContext) -> Discovery:
        return await asyncio.to_thread(_discover, config, context)

    async def preview(
        self, config: LocalFileConfig, context: ConnectContext, object_name: str, limit: int
    ) -> Preview:
        return await asyncio.to_thread(_preview, config, context, object_name, limit)


SOURCE_TYPE = SourceType(
    name="local_file",
    display_name="Local files",
    category=SourceCategory.FILE,
    config_model=LocalFileConfig,
    connector=LocalFileConnector(),
    description="A csv, json, jsonl, parquet or xlsx file, or a directory of them, under the "
    "server's DATASOURCE_FILE_ROOT.",
)
