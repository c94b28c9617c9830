"""What the file family's configs share: how text files are read (delimiter, encoding), sheet
names, and object names of the form `file.xlsx#Sheet1`."""

from __future__ import annotations

import codecs
import re
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from creativeflow.datasources.base import SourceError
from creativeflow.datasources.files.tabular import FileFormat, format_from_name


def _delimiter(value: str) -> str:
    if value in ('"', "\r", "\n"):
        raise ValueError("must not be a quote or a line break")
    return value


# Not stripped like other text: a tab is a delimiter.
CsvDelimiter = Annotated[
    str,
    StringConstraints(strip_whitespace=False, min_length=1, max_length=1),
    AfterValidator(_delimiter),
    Field(description="CSV: the one character between fields (`,`, `;`, a tab, `|`)"),
]


def _encoding(value: str) -> str:
    try:
        return codecs.lookup(value).name
    except LookupError:
        raise ValueError(
            "is not a text encoding Python knows (utf-8, latin-1, cp1252, ...)"
        ) from None


TextEncoding = Annotated[
    str,
    AfterValidator(_encoding),
    Field(max_length=40, description="The text encoding of CSV, JSON and JSONL files"),
]

_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def _sheet_name(value: str) -> str:
    if not value:
        raise ValueError("must name a sheet")
    if _SHEET_FORBIDDEN.search(value):
        raise ValueError("is not a sheet name (sheet names have no [ ] : * ? / \\)")
    return value


SheetName = Annotated[str, Field(max_length=31), AfterValidator(_sheet_name)]


def split_sheet(object_name: str, file_format: FileFormat | None) -> tuple[str, str | None]:
    """`book.xlsx#Sheet1` as (`book.xlsx`, `Sheet1`); any other name is the file itself. The
    format (the config's, when it sets one) decides whether `#` can start a sheet name."""
    base, hash_sign, sheet = object_name.rpartition("#")
    if not hash_sign or not sheet:
        return object_name, None
    if (file_format or format_from_name(base)) != "xlsx":
        return object_name, None
    return base, sheet


def naming(error: SourceError, name: str) -> SourceError:
    """The error with the object it is about in front of its message."""
    return SourceError(error.code, f"{name}: {error.message}")
