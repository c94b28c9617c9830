"""What a text task is about: the registry of *task contexts*.

A client may run a task about a stored thing (`{"context": {"type": "scene", "id": ...}}`)
instead of writing its whole input. The module that owns that kind of thing registers, once, a
gatherer for it and the tasks it serves; the gatherer checks the caller may read the target,
reads what the task needs (the story so far, the cast, the instructions that apply) and answers
the task's input, the subject the job belongs to, and what it read. The providers module knows
no story: a context type nobody registered is simply not offered (`GET /tasks/types` lists,
per task, the types registered for it).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.identity.principal import Principal
from creativeflow.jobs.service import Subject
from creativeflow.providers.tasks import TaskType
from creativeflow.shared.core.exceptions import ValidationException


class ContextType(StrEnum):
    PROJECT = "project"
    CHAPTER = "chapter"
    SCENE = "scene"
    PANEL = "panel"
    CHARACTER = "character"


class TaskContextRef(BaseModel):
    """The thing a task is about."""

    model_config = ConfigDict(extra="forbid")

    type: ContextType
    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class GatheredContext:
    """A gatherer's answer. `input`: the task's input fields read from the target (JSON
    values, within the input model's limits). `subject`: what the job belongs to (a story's
    project, so its members see it). `sources`: what was read, by kind (JSON values: ids),
    kept with the job. `unfilled`: required fields the target could not give, each with why;
    if the client's input does not give them either, the request is refused naming
    `context` with that reason."""

    input: dict[str, Any]
    subject: Subject
    sources: dict[str, Any]
    unfilled: dict[str, str] = field(default_factory=dict)


Gatherer = Callable[[AsyncSession, Principal, TaskType, uuid.UUID], Awaitable[GatheredContext]]


@dataclass(frozen=True, slots=True)
class _Registration:
    gatherer: Gatherer
    tasks: frozenset[TaskType]


_registered: dict[ContextType, _Registration] = {}


def register_task_context(
    target_type: ContextType | str, gatherer: Gatherer, *, tasks: Iterable[TaskType]
) -> None:
    """`gatherer` answers the input of each of `tasks` about a `target_type` thing."""
    _registered[ContextType(target_type)] = _Registration(gatherer, frozenset(tasks))


def unregister_task_context(target_type: ContextType | str) -> None:
    _registered.pop(ContextType(target_type), None)


def context_types(task: TaskType) -> list[str]:
    """The context types `task` accepts, in `ContextType` order."""
    return [kind.value for kind in ContextType if task in _tasks_of(kind)]


def _tasks_of(kind: ContextType) -> frozenset[TaskType]:
    registration = _registered.get(kind)
    return registration.tasks if registration else frozenset()


async def gather_task_context(
    session: AsyncSession, principal: Principal, task: TaskType, target: TaskContextRef
) -> GatheredContext:
    """The target's answer for `task`; a type `task` does not take is 422 naming
    `context.type` with the types it does take."""
    registration = _registered.get(target.type)
    if registration is None or task not in registration.tasks:
        allowed = context_types(task)
        takes = ", ".join(allowed) if allowed else "no context"
        raise ValidationException.for_field(
            "context.type",
            f"{task.value} is not run about a {target.type.value} (it takes: {takes})",
        )
    return await registration.gatherer(session, principal, task, target.id)


def merged_input(gathered: GatheredContext, sent: dict[str, Any]) -> dict[str, Any]:
    """The gathered input with the client's fields over it (the client's win). A field the
    target could not fill and the client did not send is 422 naming `context`, with why."""
    merged = {**gathered.input, **sent}
    for name, reason in gathered.unfilled.items():
        if name not in merged:
            raise ValidationException.for_field("context", reason)
    return merged


# -- what a task about a stored thing leaves behind ------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """A text task about a stored thing has succeeded: its validated output, and who asked."""

    task: TaskType
    target_type: ContextType
    target_id: uuid.UUID
    output: dict[str, Any]
    # The job's whole input (task type, input, context, seed …): enough to run it again.
    task_input: dict[str, Any]
    revises: uuid.UUID | None
    prompt: str
    provider: str
    model: str
    seed: int | None
    job_id: uuid.UUID
    owner_id: uuid.UUID | None
    subject_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class OutcomeWrite:
    """What the owning module makes of an outcome (a draft to review): fields added to the
    job's result, and rows written in the transaction that records the job's success."""

    result: dict[str, Any]
    write: Callable[[AsyncSession], Awaitable[None]]


OutcomeHandler = Callable[[TaskOutcome], OutcomeWrite | None]
_outcome_handlers: dict[ContextType, OutcomeHandler] = {}


def register_task_outcome(target_type: ContextType | str, handler: OutcomeHandler) -> None:
    """`handler` turns a succeeded task about a `target_type` thing into what it leaves."""
    _outcome_handlers[ContextType(target_type)] = handler


def outcome_handler(target_type: ContextType | str) -> OutcomeHandler | None:
    return _outcome_handlers.get(ContextType(target_type))
