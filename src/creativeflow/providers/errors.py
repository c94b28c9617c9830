"""What a provider call can fail with. Providers raise these; the job runner and the routes
turn them into the shared `GenerationError` (502) and `QuotaExceededError` (429) problems."""

from __future__ import annotations

from creativeflow.shared.core.exceptions import (
    BaseAPIException,
    GenerationError,
    QuotaExceededError,
)


class ProviderError(Exception):
    """A provider call failed. `retryable` says whether trying again later may succeed."""

    code = "PROVIDER_ERROR"
    retryable = False

    def __init__(self, message: str, *, provider: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status = status


class ProviderNotConfigured(ProviderError):
    """Settings name a provider that lacks what it needs (a URL, a key)."""

    code = "PROVIDER_NOT_CONFIGURED"


class ProviderUnavailable(ProviderError):
    """5xx answers or no connection, after the call's own retries."""

    code = "PROVIDER_UNAVAILABLE"
    retryable = True


class ProviderTimeout(ProviderError):
    code = "PROVIDER_TIMEOUT"
    retryable = True


class ProviderRateLimited(ProviderError):
    """429 after the call's own retries; `retry_after` is the provider's hint, in seconds."""

    code = "PROVIDER_RATE_LIMITED"
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status=status)
        self.retry_after = retry_after


class ProviderRejected(ProviderError):
    """The provider refused the request (4xx other than 429: bad input, bad key, policy)."""

    code = "PROVIDER_REJECTED"


class MalformedResponse(ProviderError):
    """The answer was not what the protocol promises (bad JSON, wrong schema), twice."""

    code = "PROVIDER_MALFORMED_RESPONSE"


def to_api_exception(error: ProviderError) -> BaseAPIException:
    """The problem a client sees for a provider failure."""
    data = {"provider": error.provider, "provider_code": error.code}
    if isinstance(error, ProviderRateLimited):
        retry_after = round(error.retry_after) if error.retry_after else 60
        return QuotaExceededError(error.message, retry_after=retry_after, code="QUOTA_EXCEEDED")
    return GenerationError(error.message, data=data)
