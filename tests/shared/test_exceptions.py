"""The one error hierarchy: status code, stable code, detail and structured data."""

from __future__ import annotations

import pytest

from creativeflow.shared.core.exceptions import (
    AuthenticationException,
    BaseAPIException,
    ConflictException,
    NotFoundException,
    PermissionDeniedException,
    RateLimitedException,
    ValidationException,
)

HIERARCHY = [
    (NotFoundException, 404, "NOT_FOUND"),
    (ValidationException, 422, "VALIDATION_ERROR"),
    (AuthenticationException, 401, "NOT_AUTHENTICATED"),
    (PermissionDeniedException, 403, "PERMISSION_DENIED"),
    (ConflictException, 409, "CONFLICT"),
]


@pytest.mark.parametrize(("cls", "status", "code"), HIERARCHY)
def test_each_exception_carries_its_status_and_code(
    cls: type[BaseAPIException], status: int, code: str
) -> None:
    assert issubclass(cls, BaseAPIException)
    exc = cls("Something specific", data={"id": "42"})
    assert exc.status_code == status
    assert exc.code == code
    assert exc.detail == "Something specific"
    assert str(exc) == "Something specific"
    assert exc.data == {"id": "42"}
    assert exc.errors == []
    assert exc.commit_changes is False


@pytest.mark.parametrize(("cls", "_status", "_code"), HIERARCHY)
def test_detail_defaults_to_the_title(
    cls: type[BaseAPIException], _status: int, _code: str
) -> None:
    exc = cls()
    assert exc.detail == cls.title
    assert exc.detail
    assert exc.data == {}


def test_base_exception_is_a_500() -> None:
    assert issubclass(BaseAPIException, Exception)
    exc = BaseAPIException()
    assert exc.status_code == 500
    assert exc.code == "INTERNAL_ERROR"


def test_code_can_be_specialised_per_instance_without_touching_the_class() -> None:
    exc = ConflictException("Username is already taken", code="USERNAME_TAKEN")
    assert exc.code == "USERNAME_TAKEN"
    assert ConflictException.code == "CONFLICT"
    assert ConflictException().code == "CONFLICT"


def test_data_and_errors_are_not_shared_between_instances() -> None:
    first, second = NotFoundException(), NotFoundException()
    first.data["x"] = 1
    first.errors.append({"field": "a", "message": "b"})
    assert second.data == {}
    assert second.errors == []


def test_validation_exception_for_one_field() -> None:
    exc = ValidationException.for_field("due_date", "must be in the future")
    assert exc.status_code == 422
    assert exc.errors == [{"field": "due_date", "message": "must be in the future"}]
    assert "due_date" in exc.detail


def test_authentication_asks_for_a_bearer_token() -> None:
    assert AuthenticationException().headers == {"WWW-Authenticate": "Bearer"}
    custom = AuthenticationException("nope", headers={"WWW-Authenticate": 'Bearer error="x"'})
    assert custom.headers == {"WWW-Authenticate": 'Bearer error="x"'}


@pytest.mark.parametrize(("retry_after", "expected"), [(30, 30), (0, 1), (-5, 1)])
def test_rate_limited_says_when_to_retry(retry_after: int, expected: int) -> None:
    exc = RateLimitedException("Slow down", retry_after=retry_after)
    assert exc.status_code == 429
    assert exc.code == "RATE_LIMITED"
    assert exc.headers == {"Retry-After": str(expected)}
    assert exc.data == {"retry_after": expected}


def test_commit_keeps_the_writes_made_before_the_failure() -> None:
    exc = AuthenticationException("Refresh token reused", commit=True)
    assert exc.commit_changes is True


def test_modules_can_subclass_with_their_own_status() -> None:
    class QuotaExceeded(BaseAPIException):
        status_code = 429
        code = "QUOTA_EXCEEDED"
        title = "Quota Exceeded"

    exc = QuotaExceeded(data={"limit": 10})
    assert (exc.status_code, exc.code, exc.detail, exc.data) == (
        429,
        "QUOTA_EXCEEDED",
        "Quota Exceeded",
        {"limit": 10},
    )
