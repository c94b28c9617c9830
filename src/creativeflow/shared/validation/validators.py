"""Reusable field validators, used through Pydantic's `AfterValidator` or called directly."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 128
USERNAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{1,30}[a-z0-9])$")
_RESERVED_USERNAMES = frozenset({"admin", "root", "system", "me", "api", "support"})
_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def validate_password_complexity(password: str) -> str:
    """At least 12 characters with an upper-case letter, a lower-case letter, a digit and a
    symbol. Raises ValueError naming every rule that is not met."""
    problems: list[str] = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > PASSWORD_MAX_LENGTH:
        problems.append(f"at most {PASSWORD_MAX_LENGTH} characters")
    if not re.search(r"[A-Z]", password):
        problems.append("an upper-case letter")
    if not re.search(r"[a-z]", password):
        problems.append("a lower-case letter")
    if not re.search(r"\d", password):
        problems.append("a digit")
    if not re.search(r"[^A-Za-z0-9]", password):
        problems.append("a symbol")
    if problems:
        raise ValueError("password needs " + ", ".join(problems))
    return password


def validate_username_format(username: str) -> str:
    """3-32 characters of lower-case letters, digits, '.', '_' or '-', starting and ending with a
    letter or digit; a few names that would mislead other users are reserved. Input is
    lower-cased first, so usernames are case-insensitive."""
    normalized = username.strip().lower()
    if not USERNAME_PATTERN.match(normalized):
        raise ValueError(
            "username must be 3-32 characters of a-z, 0-9, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    if normalized in _RESERVED_USERNAMES:
        raise ValueError(f"username '{normalized}' is reserved")
    return normalized


def validate_hex_colour(value: str) -> str:
    """A colour as `#rrggbb` (surrounding spaces ignored), kept in lower case."""
    value = value.strip()
    if not _HEX_COLOUR.match(value):
        raise ValueError(f"{value!r} is not a colour as #rrggbb")
    return value.lower()


HexColour = Annotated[str, AfterValidator(validate_hex_colour)]
