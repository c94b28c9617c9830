"""Request models of the generation routes, and the job inputs behind them."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

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


class TextTaskJobInput(_Strict):
    """What `providers.text_task` runs on; `input` was validated against the task's model."""

    task_type: TaskType
    input: dict[str, Any]
    seed: Seed | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)


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


class TaskExecutionRequest(TextTaskJobInput, SubjectFields):
    input: dict[str, Any] = Field(
        description="The task's input; `GET /tasks/types` gives each task's JSON Schema"
    )


class TaskCatalogEntry(BaseModel):
    """One entry of GET /tasks/types."""

    name: TaskType
    title: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]


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
