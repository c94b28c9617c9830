"""Base DTOs: Pydantic v2 models that read from ORM objects (`from_attributes`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel as PydanticBaseModel
from pydantic import ConfigDict


class BaseModel(PydanticBaseModel):
    """Every DTO's base: builds from ORM objects, refuses unknown fields on input."""

    model_config = ConfigDict(from_attributes=True, extra="forbid", str_strip_whitespace=True)


class ResponseModel(BaseModel):
    """A response DTO: tolerant of extra attributes on the ORM object it is built from."""

    model_config = ConfigDict(from_attributes=True, extra="ignore")


class EntityResponse(ResponseModel):
    """The fields every stored entity exposes."""

    id: uuid.UUID
    created_at: datetime
    updated_at: datetime


class AuditedEntityResponse(EntityResponse):
    created_by: uuid.UUID | None = None
    updated_by: uuid.UUID | None = None
