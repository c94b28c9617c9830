"""Reusable validators: password complexity and username format."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from creativeflow.shared.api.dtos.user import UserCreate
from creativeflow.shared.validation.validators import (
    validate_password_complexity,
    validate_username_format,
)

# --- passwords --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "Correct-Horse-42!",
        "Abcdefghij1!",  # exactly 12
        "P4ssw0rd with spaces",
        "Ünïcödé-Pässwörd-9",
        "A1!" + "a" * 125,  # exactly 128
    ],
)
def test_strong_passwords_are_returned_unchanged(password: str) -> None:
    assert validate_password_complexity(password) == password


@pytest.mark.parametrize(
    ("password", "missing"),
    [
        ("Abcdefgh1!", "at least 12 characters"),
        ("abcdefghijk1!", "an upper-case letter"),
        ("ABCDEFGHIJK1!", "a lower-case letter"),
        ("Abcdefghijkl!", "a digit"),
        ("Abcdefghijkl1", "a symbol"),
        ("A1!" + "a" * 126, "at most 128 characters"),
    ],
)
def test_each_missing_rule_is_named(password: str, missing: str) -> None:
    with pytest.raises(ValueError, match="password needs") as excinfo:
        validate_password_complexity(password)
    assert missing in str(excinfo.value)


def test_every_broken_rule_is_named_at_once() -> None:
    with pytest.raises(ValueError) as excinfo:
        validate_password_complexity("short")
    message = str(excinfo.value)
    for rule in ("at least 12 characters", "an upper-case letter", "a digit", "a symbol"):
        assert rule in message
    assert "a lower-case letter" not in message


def test_empty_password_is_refused() -> None:
    with pytest.raises(ValueError):
        validate_password_complexity("")


# --- usernames --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "stored"),
    [
        ("alice", "alice"),
        ("Alice", "alice"),
        ("  bob.smith  ", "bob.smith"),
        ("a_b-c.9", "a_b-c.9"),
        ("abc", "abc"),  # shortest
        ("a" * 32, "a" * 32),  # longest
        ("007", "007"),
    ],
)
def test_valid_usernames_are_normalised_to_lower_case(username: str, stored: str) -> None:
    assert validate_username_format(username) == stored


@pytest.mark.parametrize(
    "username",
    [
        "ab",  # too short
        "a" * 33,  # too long
        "",
        ".alice",
        "alice.",
        "-alice",
        "alice_",
        "al ice",
        "alice!",
        "ali@ce",
        "al/ice",
        "álice",
        "ali\nce",
        "ali\x00ce",
    ],
)
def test_malformed_usernames_are_refused(username: str) -> None:
    with pytest.raises(ValueError, match="username must be"):
        validate_username_format(username)


@pytest.mark.parametrize("username", ["admin", "ROOT", "System", "api", "support"])
def test_reserved_usernames_are_refused(username: str) -> None:
    with pytest.raises(ValueError, match="reserved"):
        validate_username_format(username)


# --- through the DTO ------------------------------------------------------------------------


def test_user_create_applies_both_validators() -> None:
    user = UserCreate(
        email="ada@example.com", username="Ada.L", name="Ada", password="Analytical-Engine-1843"
    )
    assert user.username == "ada.l"

    with pytest.raises(ValidationError) as excinfo:
        UserCreate(email="ada@example.com", username="a!", name="Ada", password="weak")
    fields = {error["loc"][0] for error in excinfo.value.errors()}
    assert fields == {"username", "password"}
