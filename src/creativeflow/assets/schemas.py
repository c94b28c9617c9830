"""Request and response models of the images API."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from creativeflow.assets.imaging import CONTENT_TYPES
from creativeflow.assets.models import Image, ImageOrigin
from creativeflow.providers.rendering import STYLES

MAX_TAGS = 20
MAX_TAG_LENGTH = 50

HexColour = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1, description="Same seed, same inputs: same result")]


class ImageSort(StrEnum):
    CREATED_AT = "created_at"
    SIZE_BYTES = "size_bytes"


class SortOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"


class DominantColor(BaseModel):
    hex: str = Field(description="#rrggbb")
    share: float = Field(ge=0, le=1, description="Fraction of the visible pixels")


class ImageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str = Field(description="The bytes")
    thumbnail_url: str = Field(description="A WebP, 256 px on its long side")
    metadata_url: str
    origin: ImageOrigin
    format: str = Field(description="jpeg, png or webp")
    content_type: str
    width: int
    height: int
    size_bytes: int
    sha256: str = Field(description="Of the stored bytes; also the ETag")
    dominant_colors: list[DominantColor]
    tags: list[str]
    owner_id: uuid.UUID = Field(description="The uploader, or who started the job")
    subject_type: str | None
    subject_id: uuid.UUID | None
    job_id: uuid.UUID | None = Field(description="The job that generated it")
    source_image_id: uuid.UUID | None = Field(
        description="The image a variation or style transfer was made from"
    )
    created_at: datetime
    updated_at: datetime
    created_by: uuid.UUID | None
    updated_by: uuid.UUID | None

    @classmethod
    def of(cls, image: Image) -> ImageRead:
        base = f"/api/v1/images/{image.id}"
        return cls.model_validate(
            {
                **{name: getattr(image, name) for name in _ROW_FIELDS},
                "url": base,
                "thumbnail_url": f"{base}/thumbnail",
                "metadata_url": f"{base}/metadata",
                "content_type": CONTENT_TYPES.get(image.format, "application/octet-stream"),
            }
        )


_ROW_FIELDS = tuple(
    name
    for name in ImageRead.model_fields
    if name not in {"url", "thumbnail_url", "metadata_url", "content_type"}
)


class Provenance(BaseModel):
    """How a generated image was made (from the job that made it)."""

    job_id: uuid.UUID | None
    job_kind: str | None = None
    provider: str | None
    model: str | None
    prompt: str | None
    seed: int | None
    parameters: dict[str, Any] = Field(default_factory=dict)
    operation: str | None = Field(
        default=None, description="variation or style_transfer, for images made from another"
    )
    source_image_id: uuid.UUID | None = Field(
        default=None, description="Kept when the source image has since been deleted"
    )
    source_sha256: str | None = None


class UploadDetails(BaseModel):
    """What the uploader sent, before it was re-encoded."""

    filename: str | None = Field(description="The client's name for the file (display only)")
    sha256: str = Field(description="Of the bytes as uploaded")
    size_bytes: int
    format: str


class SubjectRead(BaseModel):
    type: str
    id: uuid.UUID


class DerivedImages(BaseModel):
    ids: list[uuid.UUID] = Field(description="Newest first, at most 100")
    total: int


class UsedBy(BaseModel):
    type: str = Field(description="What uses the image, e.g. panel")
    ids: list[uuid.UUID]


class ImageUsage(BaseModel):
    subject: SubjectRead | None
    derived_images: DerivedImages
    used_by: list[UsedBy]


class ImageMetadata(ImageRead):
    provenance: Provenance | None = Field(description="For generated images")
    upload: UploadDetails | None = Field(description="For uploaded images")
    usage: ImageUsage


# -- image to image ------------------------------------------------------------------------------


class _EditRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=1, ge=1, le=4, description="Images to make (1-4)")
    strength: float = Field(
        default=0.5, ge=0, le=1, description="How far the outputs may move from the source"
    )
    seed: Seed | None = None
    format: Literal["png", "jpeg", "webp"] = "png"
    priority: int = Field(default=0, ge=-10, le=10, description="Among your own jobs: higher first")


class VariationRequest(_EditRequest):
    prompt: str = Field(
        default="", max_length=4000, description="Guidance for remote providers; optional"
    )


class StyleTransferRequest(_EditRequest):
    style: str | None = Field(
        default=None,
        description="One of " + ", ".join(STYLES),
        json_schema_extra={"enum": list(STYLES)},
    )
    palette: list[HexColour] = Field(default_factory=list, max_length=8)
    prompt: str = Field(default="", max_length=4000, description="Words naming style or colours")

    @field_validator("style")
    @classmethod
    def _known_style(cls, value: str | None) -> str | None:
        if value is None:
            return None
        style = value.strip().lower()
        if style not in STYLES:
            raise ValueError(f"must be one of {', '.join(STYLES)}")
        return style


# -- upload ------------------------------------------------------------------------------------

_TAG = re.compile(r"[^\x00-\x1f\x7f]{1,50}")


class UploadForm(BaseModel):
    """The text fields of an upload, beside its `file` part."""

    model_config = ConfigDict(extra="forbid")

    panel_id: uuid.UUID | None = Field(
        default=None, description="Shorthand for subject_type `panel` and this subject_id"
    )
    subject_type: str | None = Field(default=None, min_length=1, max_length=50)
    subject_id: uuid.UUID | None = None
    tags: list[str] = Field(
        default_factory=list,
        max_length=MAX_TAGS,
        description=f"Repeat the field, or separate with commas; at most {MAX_TAGS} of "
        f"1-{MAX_TAG_LENGTH} characters",
    )

    @field_validator("tags", mode="before")
    @classmethod
    def _split_tags(cls, value: object) -> object:
        if isinstance(value, list):
            tags = [tag.strip() for item in value for tag in str(item).split(",")]
            return [tag for tag in tags if tag]
        return value

    @field_validator("tags")
    @classmethod
    def _valid_tags(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if _TAG.fullmatch(tag) is None:
                raise ValueError(
                    f"tags have 1-{MAX_TAG_LENGTH} characters and no control characters: "
                    f"{tag[:60]!r}"
                )
        return tags
