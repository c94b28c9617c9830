"""Config fields and answer handling both web types share: names of saved objects, relative
paths, default headers, dotted paths to the records in a JSON answer, and records as rows."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any

import httpx
from pydantic import AfterValidator, Field, ValidationInfo

from creativeflow.datasources.base import SourceError, SourceErrorCode
from creativeflow.datasources.fields import HttpUrl
from creativeflow.datasources.rows import jsonable

# An HTTP header name (RFC 9110 token); also what an API-key query parameter may be called.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$")
# Headers the client sets itself, or that carry credentials (those belong in `auth`).
_RESERVED_HEADERS = {
    "authorization": "is not allowed here; put credentials in `auth`",
    "proxy-authorization": "is not allowed here; put credentials in `auth`",
    "host": "is set from the URL",
    "content-length": "is set by the client",
    "transfer-encoding": "is set by the client",
    "connection": "is set by the client",
}
_OBJECT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9 _.\-]{0,99}$")
_PATH_SEGMENT = re.compile(r"^[^.\s]+$")


def header_name(value: str) -> str:
    if not _TOKEN.match(value):
        raise ValueError(
            f"{value!r} is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)"
        )
    return value


def _headers(value: dict[str, str]) -> dict[str, str]:
    for name, text in value.items():
        header_name(name)
        reason = _RESERVED_HEADERS.get(name.lower())
        if reason is not None:
            raise ValueError(f"the {name} header {reason}")
        if any(ch in text for ch in "\r\n\0"):
            raise ValueError(f"the value of the {name} header must not hold line breaks")
    return value


Headers = Annotated[
    dict[str, str],
    AfterValidator(_headers),
    Field(
        default_factory=dict,
        max_length=50,
        description="Headers sent with every request (no Authorization: use `auth`).",
    ),
]


def _port_and_no_query(value: str) -> str:
    port = httpx.URL(value).port
    if port is not None and not 1 <= port <= 65535:
        raise ValueError("must have a port of 1-65535")
    if "?" in value or "#" in value:
        raise ValueError("must not carry a query or fragment")
    return value


BaseUrl = Annotated[HttpUrl, AfterValidator(_port_and_no_query)]


def ca_certificate_fits(url_field: str) -> Callable[[str | None, ValidationInfo], str | None]:
    """A validator of `ca_certificate` (declared after `url_field` and `verify_tls`)."""

    def check(value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if info.data.get("verify_tls") is False:
            raise ValueError("applies only when verify_tls is true")
        url = info.data.get(url_field)
        if isinstance(url, str) and not url.startswith("https://"):
            raise ValueError(f"applies only to an https:// {url_field}")
        return value

    return check


def unique_names(names: Iterable[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"the name {name!r} is used twice")
        seen.add(name)


def _object_name(value: str) -> str:
    if not _OBJECT_NAME.match(value):
        raise ValueError(
            "must be 1-100 letters, digits, spaces, '_', '.' or '-', starting with a letter, "
            "digit or '_'"
        )
    return value


ObjectName = Annotated[str, AfterValidator(_object_name)]


def _relative_path(value: str) -> str:
    if "://" in value or value.startswith("//"):
        raise ValueError("must be a path relative to the base URL, not a URL")
    if any(ch in value for ch in "?#"):
        raise ValueError("must not carry a query or fragment; put query parameters in `params`")
    if any(ch.isspace() or ord(ch) < 32 for ch in value):
        raise ValueError("must not hold spaces or control characters (percent-encode them)")
    if ".." in value.split("/"):
        raise ValueError("must not climb out of the base URL with '..'")
    return value


RelativePath = Annotated[str, AfterValidator(_relative_path), Field(max_length=2000)]


def _records_path(value: str) -> str:
    if value and not all(_PATH_SEGMENT.match(part) for part in value.split(".")):
        raise ValueError("must be dot-separated keys without spaces (like `data.items`)")
    return value


RecordsPath = Annotated[
    str,
    AfterValidator(_records_path),
    Field(
        default="",
        max_length=500,
        description="Dotted path to the list of records in the JSON answer (`data.items`; a "
        "number picks a list element); empty for the answer itself.",
    ),
]


def join_url(base: str, path: str) -> str:
    """`path` under `base` (`https://api.example.com/v1` + `users` → `.../v1/users`)."""
    if not path:
        return base
    return base.rstrip("/") + "/" + path.lstrip("/")


def records_at(document: Any, path: str, target: str) -> list[Any]:
    """The records at the dotted `path`: a list as is, an object as one record, null as none."""
    node = document
    for part in path.split(".") if path else ():
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise SourceError(
                SourceErrorCode.NOT_FOUND,
                f"the answer of {target} has no `{path}` (nothing at `{part}`)",
            )
    if isinstance(node, list):
        return node
    if isinstance(node, Mapping):
        return [node]
    if node is None:
        return []
    raise SourceError(
        SourceErrorCode.PROTOCOL_ERROR,
        f"`{path or 'the answer'}` of {target} is a {type(node).__name__}, not records",
    )


def to_row(record: Any) -> dict[str, Any]:
    """A record as a row: an object's keys are its columns (nested objects stay objects); any
    other value is one `value` column."""
    if isinstance(record, Mapping):
        return {str(key): jsonable(value) for key, value in record.items()}
    return {"value": jsonable(record)}
