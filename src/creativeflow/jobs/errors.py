"""How a job attempt ends other than by returning its result."""

from __future__ import annotations

from creativeflow.shared.core.exceptions import ConflictException, NotFoundException


class JobCancelled(Exception):
    """Raised at a progress point once cancellation was asked for."""


class JobLost(Exception):
    """This worker no longer holds the job (its heartbeat expired and the job went elsewhere):
    stop, and write nothing."""


class JobFailed(Exception):
    """A handler's deliberate failure with a stable code (`INVALID_SOURCE_IMAGE`, ...).
    `retryable` lets the kind's retry policy try again."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


class JobNotFound(NotFoundException):
    code = "JOB_NOT_FOUND"


class JobStateConflict(ConflictException):
    """The job is not in a state that allows this (cancel a finished job, retry a running one)."""

    code = "JOB_STATE_CONFLICT"
