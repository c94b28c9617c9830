"""The one error hierarchy. Services raise these; the HTTP layer renders them as problem+json."""

from __future__ import annotations

from typing import Any


class BaseAPIException(Exception):
    """An expected failure with the HTTP status, a human `detail` and optional structured `data`.

    `code` is the stable UPPER_SNAKE name clients may switch on; `errors` lists field problems
    as `{"field": ..., "message": ...}`. The request's unit of work is rolled back unless
    `commit=True`.
    """

    status_code: int = 500
    code: str = "INTERNAL_ERROR"
    title: str = "Internal Server Error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        data: dict[str, Any] | None = None,
        errors: list[dict[str, str]] | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        commit: bool = False,
    ) -> None:
        self.detail = detail or self.title
        self.data = data or {}
        self.errors = errors or []
        self.headers = headers or {}
        # True when the writes made before the failure must still be kept (e.g. revoking a
        # session whose refresh token was replayed, while answering 401).
        self.commit_changes = commit
        if code is not None:
            self.code = code
        super().__init__(self.detail)


class NotFoundException(BaseAPIException):
    status_code = 404
    code = "NOT_FOUND"
    title = "Not Found"


class ValidationException(BaseAPIException):
    status_code = 422
    code = "VALIDATION_ERROR"
    title = "Validation Error"

    @classmethod
    def for_field(cls, field: str, message: str) -> ValidationException:
        return cls(f"{field}: {message}", errors=[{"field": field, "message": message}])


class AuthenticationException(BaseAPIException):
    status_code = 401
    code = "NOT_AUTHENTICATED"
    title = "Unauthorized"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class PermissionDeniedException(BaseAPIException):
    status_code = 403
    code = "PERMISSION_DENIED"
    title = "Forbidden"


class ConflictException(BaseAPIException):
    status_code = 409
    code = "CONFLICT"
    title = "Conflict"


class RateLimitedException(BaseAPIException):
    status_code = 429
    code = "RATE_LIMITED"
    title = "Too Many Requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(max(1, retry_after))})
        kwargs.setdefault("data", {"retry_after": max(1, retry_after)})
        super().__init__(detail, **kwargs)


class GenerationError(BaseAPIException):
    """An AI provider failed, timed out or answered something unusable (graphic-novel-api.md
    names it; 502 because the failure is upstream of us, not in the request)."""

    status_code = 502
    code = "GENERATION_FAILED"
    title = "Bad Gateway"


class QuotaExceededError(BaseAPIException):
    """A provider's (or the caller's) quota is used up; retry after `retry_after` seconds."""

    status_code = 429
    code = "QUOTA_EXCEEDED"
    title = "Too Many Requests"

    def __init__(self, detail: str | None = None, *, retry_after: int = 60, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(max(1, retry_after))})
        kwargs.setdefault("data", {"retry_after": max(1, retry_after)})
        super().__init__(detail, **kwargs)
