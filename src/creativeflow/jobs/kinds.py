"""Job kinds: what modules register so the engine can run their work.

A kind is a name (`stories.generate_panel`), the model its input must satisfy, the handler
that does the work, a time limit, a retry policy and whether it is CPU-heavy. An async handler
runs on the event loop and must only await (network, database, executors); a CPU-heavy kind's
handler is a plain function the runner calls in a worker thread, so the loop keeps serving.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from creativeflow.jobs.context import JobContext, SyncJobContext
    from creativeflow.platform import Platform

JobResult = dict[str, Any]
AsyncHandler = Callable[["JobContext", Any], Awaitable[JobResult]]
SyncHandler = Callable[["SyncJobContext", Any], JobResult]
PruneHandler = Callable[["Platform", dict[str, Any]], Awaitable[None]]

# Modules whose import registers the platform's own kinds.
BUILTIN_JOB_MODULES = (
    "creativeflow.jobs.maintenance",
    "creativeflow.providers.jobs",
    "creativeflow.webhooks.jobs",
    "creativeflow.datasources.jobs",
    "creativeflow.stories.publishing.jobs",
    "creativeflow.stories.generation.jobs",
    "creativeflow.stories.consistency.jobs",
    "creativeflow.stories.workflows.jobs",
)


@dataclass(frozen=True, slots=True)
class Retries:
    """How a failed attempt is retried. `max_attempts` None takes JOB_DEFAULT_MAX_ATTEMPTS.
    Only failures that may pass (a provider that is down or rate limiting, a lost worker) are
    retried; a bug or bad input fails at once."""

    max_attempts: int | None = None
    backoff_seconds: float = 5.0
    max_backoff_seconds: float = 300.0

    def delay(self, attempt: int) -> float:
        return min(self.max_backoff_seconds, self.backoff_seconds * 2 ** max(0, attempt - 1))


@dataclass(frozen=True, slots=True)
class JobKind:
    name: str
    input_model: type[BaseModel]
    handler: AsyncHandler | SyncHandler
    description: str = ""
    time_limit_seconds: float = 600.0
    retries: Retries = field(default_factory=Retries)
    cpu_heavy: bool = False
    # What a succeeded job of this kind left outside its row (an export's file), removed when
    # `jobs.prune` deletes the job: called with the platform and the job's result.
    on_prune: PruneHandler | None = None
    # A group (`job_group`): never run itself; it ends when its last child job does.
    group: bool = False
    # What the spec's routes list it under: "image" (`/generate/status`, `/generate/history`).
    category: str | None = None


class JobKindRegistry:
    def __init__(self) -> None:
        self._kinds: dict[str, JobKind] = {}

    def register(self, kind: JobKind) -> JobKind:
        existing = self._kinds.get(kind.name)
        if existing is not None and existing.handler is not kind.handler:
            raise ValueError(f"job kind {kind.name!r} is registered twice")
        self._kinds[kind.name] = kind
        return kind

    def get(self, name: str) -> JobKind | None:
        return self._kinds.get(name)

    def names(self) -> list[str]:
        return sorted(self._kinds)

    def of_category(self, category: str) -> tuple[str, ...]:
        return tuple(sorted(k.name for k in self._kinds.values() if k.category == category))


job_kinds = JobKindRegistry()


def job_kind(
    name: str,
    input_model: type[BaseModel],
    *,
    description: str = "",
    time_limit_seconds: float = 600.0,
    retries: Retries | None = None,
    cpu_heavy: bool = False,
    on_prune: PruneHandler | None = None,
    category: str | None = None,
) -> Callable[[Any], Any]:
    """Decorator registering the function below it as the handler of kind `name`."""

    def register(handler: AsyncHandler | SyncHandler) -> AsyncHandler | SyncHandler:
        job_kinds.register(
            JobKind(
                name=name,
                input_model=input_model,
                handler=handler,
                description=description,
                time_limit_seconds=time_limit_seconds,
                retries=retries or Retries(),
                cpu_heavy=cpu_heavy,
                on_prune=on_prune,
                category=category,
            )
        )
        return handler

    return register


async def _group_never_runs(context: JobContext, data: Any) -> JobResult:
    raise RuntimeError("a job group is never claimed: its children run")


def job_group(
    name: str,
    input_model: type[BaseModel],
    *,
    description: str = "",
    category: str | None = None,
) -> None:
    """Register kind `name` as a group: submitted with its children
    (`JobService.submit_group`), running while any child is queued or running, its progress
    the share of children finished, and ending when the last one ends."""
    job_kinds.register(
        JobKind(
            name=name,
            input_model=input_model,
            handler=_group_never_runs,
            description=description,
            group=True,
            category=category,
        )
    )


# A periodic task: submits whatever jobs have fallen due (scheduled health checks, say) and
# returns how many it submitted. Every sweeper pass runs every one, in every process, so each
# must be safe to run concurrently (conditional updates, idempotency keys).
ScheduleHandler = Callable[["Platform"], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str
    handler: ScheduleHandler


class ScheduleRegistry:
    def __init__(self) -> None:
        self._schedules: dict[str, Schedule] = {}

    def register(self, schedule: Schedule) -> None:
        existing = self._schedules.get(schedule.name)
        if existing is not None and existing.handler is not schedule.handler:
            raise ValueError(f"schedule {schedule.name!r} is registered twice")
        self._schedules[schedule.name] = schedule

    def all(self) -> list[Schedule]:
        return list(self._schedules.values())


schedules = ScheduleRegistry()


def periodic(name: str) -> Callable[[ScheduleHandler], ScheduleHandler]:
    """Decorator registering the function below it to run on every sweeper pass."""

    def register(handler: ScheduleHandler) -> ScheduleHandler:
        schedules.register(Schedule(name, handler))
        return handler

    return register


def load_job_modules(extra: Iterable[str] = ()) -> None:
    """Import the modules that register kinds: the platform's own and JOB_MODULES."""
    for module in (*BUILTIN_JOB_MODULES, *extra):
        importlib.import_module(module)
