"""Request and response models of style guides, project stats and duplication."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from creativeflow.shared.validation.validators import HexColour
from creativeflow.stories.style.models import LineWeight

MAX_PALETTE = 16
MAX_REFERENCES = 20
_RATIO = re.compile(r"^([0-9]{1,4}):([0-9]{1,4})$")


class StyleGuideFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    art_style: str | None = Field(
        default=None, max_length=500, description="e.g. 'ink and watercolour, ligne claire'"
    )
    palette: list[HexColour] = Field(
        default_factory=list, max_length=MAX_PALETTE, description="Colours as #rrggbb"
    )
    line_weight: LineWeight | None = None
    lettering: str | None = Field(
        default=None, max_length=200, description="The lettering's font style"
    )
    aspect_ratio: str | None = Field(
        default=None, max_length=16, description="Panel aspect ratio as W:H, e.g. 2:3"
    )
    negative_prompt: str | None = Field(default=None, max_length=5_000)
    reference_image_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=MAX_REFERENCES, description="Images you may read"
    )

    @field_validator("aspect_ratio")
    @classmethod
    def _ratio(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = _RATIO.match(value.replace(" ", ""))
        if match is None or int(match[1]) < 1 or int(match[2]) < 1:
            raise ValueError("must be W:H with positive whole numbers, e.g. 2:3")
        return f"{int(match[1])}:{int(match[2])}"

    @field_validator("reference_image_ids")
    @classmethod
    def _unique(cls, value: list[uuid.UUID]) -> list[uuid.UUID]:
        return list(dict.fromkeys(value))


class StyleGuideReplace(StyleGuideFields):
    version: int | None = Field(
        default=None, ge=0, description="The version you read (0: the project has none yet)"
    )


class StyleGuideRead(StyleGuideFields):
    model_config = ConfigDict(extra="ignore")

    project_id: uuid.UUID
    version: int = Field(description="0 while the project has only the defaults")
    created_at: datetime | None
    updated_at: datetime | None
    updated_by: uuid.UUID | None
