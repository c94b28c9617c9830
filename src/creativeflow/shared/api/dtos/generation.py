"""DTOs of AI generation requests: what is asked, how it is going, what came out."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from creativeflow.shared.api.dtos.base import BaseModel, EntityResponse


class GenerationStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class GenerationRequestCreate(BaseModel):
    input_prompt: str = Field(min_length=1, max_length=4000)
    style_guidance: str | None = Field(default=None, max_length=2000)
    input_parameters: dict[str, Any] = Field(default_factory=dict)
    project_id: uuid.UUID | None = None
    sample_count: int = Field(default=1, ge=1, le=8)


class GenerationStatusResponse(EntityResponse):
    status: GenerationStatus
    progress: float = Field(ge=0, le=1, description="0..1")
    sample_asset_ids: list[uuid.UUID] = Field(default_factory=list)
    error: str | None = None


class GenerationResultResponse(GenerationStatusResponse):
    result_asset_ids: list[uuid.UUID] = Field(default_factory=list)
    completed_at: datetime | None = None
    output: dict[str, Any] = Field(default_factory=dict)
