"""`If-Match` for versioned resources (`db/versioning.py`), and their `ETag`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Response

from creativeflow.shared.core.exceptions import ValidationException


def etag(version: int) -> str:
    return f'"{version}"'


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


def _if_match(
    if_match: Annotated[
        str | None,
        Header(description='The version you read (its ETag, `"3"`): 409 if it has changed'),
    ] = None,
) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise ValidationException.for_field("If-Match", 'must be an ETag such as "3"')
    return int(text)


IfMatch = Annotated[int | None, Depends(_if_match)]


def expected_version(header: int | None, body: int | None) -> int | None:
    """The version the client read: from If-Match or from the body (both must agree)."""
    if header is not None and body is not None and header != body:
        raise ValidationException.for_field("version", "differs from If-Match")
    return header if header is not None else body
