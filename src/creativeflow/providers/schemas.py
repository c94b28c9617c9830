"""Request models of the generation routes, and the job inputs behind them."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from creativeflow.providers.contexts import ContextType, TaskContextRef
from creativeflow.providers.tasks import TaskType

HexColour = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1, description="Same seed, same inputs: same result")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageJobInput(_Strict):
    """What `providers.generate_image` runs on."""

    prompt: str = Field(min_length=1, max_length=4000)
    negative_prompt: str = Field(default="", max_length=2000)
    width: int = Field(default=1024, ge=64, le=2048)
    height: int = Field(default=1024, ge=64, le=2048)
    count: int = Field(default=1, ge=1, le=4, description="Images to make (1-4)")
    seed: Seed | None = None
    style: str | None = Field(
        default=None, max_length=50, description="e.g. modern, watercolor, noir, comic, neon"
    )
    palette: list[HexColour] = Field(default_factory=list, max_length=8)
    format: Literal["png", "jpeg", "webp"] = "png"


class _TaskParameters(_Strict):
    task_type: TaskType
    seed: Seed | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)


class TaskContextUsed(_Strict):
    """What a task run about a stored thing was given: the target, which input fields came
    from it, which of those the client's own input replaced, and what was read."""

    type: ContextType
    id: uuid.UUID
    gathered: list[str] = Field(description="Input fields filled from the target")
    overridden: list[str] = Field(
        description="Of those, the ones the client's `input` replaced (the client's value won)"
    )
    sources: dict[str, Any] = Field(
        description="What was read, by kind: the project, chapters, scenes, panels, "
        "characters, locations and instructions (ids)"
    )


class TextTaskJobInput(_TaskParameters):
    """What `providers.text_task` runs on; `input` was validated against the task's model
    (with a context: the gathered input, overridden by the client's), so the prompt can be
    built again exactly."""

    input: dict[str, Any]
    context: TaskContextUsed | None = None
    # A revision: notes added to the prompt, and what it revises (a draft), for its outcome.
    revision_notes: list[Annotated[str, Field(min_length=1, max_length=2000)]] = Field(
        default_factory=list, max_length=20
    )
    revises: uuid.UUID | None = None


class SubjectFields(_Strict):
    subject_type: str | None = Field(
        default=None, max_length=50, description="What the job belongs to, e.g. `story_project`"
    )
    subject_id: uuid.UUID | None = None
    priority: int = Field(default=0, ge=-10, le=10, description="Among your own jobs: higher first")

    @model_validator(mode="after")
    def _both_or_neither(self) -> SubjectFields:
        if (self.subject_type is None) != (self.subject_id is None):
            raise ValueError("subject_type and subject_id go together")
        return self


class ImageGenerationRequest(ImageJobInput, SubjectFields):
    pass


class TaskExecutionRequest(_TaskParameters, SubjectFields):
    input: dict[str, Any] | None = Field(
        default=None,
        description="The task's input; `GET /tasks/types` gives each task's JSON Schema. "
        "Required without a `context`; with one, any fields given here replace the gathered ones",
    )
    context: TaskContextRef | None = Field(
        default=None,
        description="What the task is about (`GET /tasks/types` lists the types each task "
        "takes): its input is gathered from it, and the job belongs to its project",
    )


class TaskCatalogEntry(BaseModel):
    """One entry of GET /tasks/types."""

    name: TaskType
    title: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    context_types: list[ContextType] = Field(
        description="What `context.type` may name for this task (empty: input only)"
    )


class UsageTotal(BaseModel):
    day: str = Field(description="UTC day, YYYY-MM-DD")
    provider: str
    model: str
    modality: Literal["text", "image"]
    calls: int
    succeeded: int
    input_tokens: int
    output_tokens: int
    images: int
    duration_ms: float


class TaskUsage(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int
    images: int


class TaskResultRead(BaseModel):
    """A succeeded task's result: the output and how it was made."""

    task_type: TaskType
    output: dict[str, Any] = Field(description="Valid against the task's output schema")
    provider: str = Field(description="The provider that served (after any fallback)")
    model: str
    prompt: str
    system: str
    parameters: dict[str, Any]
    seed: int | None
    timings: dict[str, float]
    usage: TaskUsage
    metadata: dict[str, Any]
    draft_id: uuid.UUID | None = Field(
        default=None,
        description="The draft a task about a stored thing left for review (`GET /drafts/{id}`)",
    )
    context: TaskContextUsed | None = Field(
        default=None, description="What the task was about, when it was run with a context"
    )
