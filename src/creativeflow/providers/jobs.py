"""The job kinds of the generation routes: a text task, an image generation, and image to image
(variations and style transfer of a stored image, started from /api/v1/images/{id}/...).

All call the configured provider chain with no transaction open, record every call in the
usage ledger, and return a result that says who served it, with what, and how long it took.
Images are stored through the assets module, with their provenance, when the job succeeds.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from creativeflow.assets.errors import (
    ImageNotFound,
    ImageTooManyPixels,
    StorageUnavailableError,
    UnsupportedImage,
)
from creativeflow.assets.models import Image
from creativeflow.assets.service import ImageService, StoredImage, put_image_bytes, read_object
from creativeflow.db.ids import uuid7
from creativeflow.jobs.context import JobContext
from creativeflow.jobs.errors import JobFailed
from creativeflow.jobs.kinds import Retries, job_kind
from creativeflow.providers.base import (
    ImageEditRequest,
    ImageFormat,
    ImageOperation,
    ImageRequest,
    ImageResult,
    Progress,
    TextResult,
)
from creativeflow.providers.contexts import TaskOutcome, outcome_handler
from creativeflow.providers.errors import ProviderError
from creativeflow.providers.schemas import HexColour, ImageJobInput, Seed, TextTaskJobInput
from creativeflow.providers.service import CallRecord, record_call, run_text_task, usage_document
from creativeflow.providers.tasks import TASKS, TaskType

if TYPE_CHECKING:
    from creativeflow.settings import Settings

TEXT_TASK_KIND = "providers.text_task"
IMAGE_KIND = "providers.generate_image"
IMAGE_VARIATIONS_KIND = "providers.image_variations"
STYLE_TRANSFER_KIND = "providers.style_transfer"
# The kinds `/generate/status`, `/generate/cancel` and `/generate/history` answer for (the
# studios' image generations too).
IMAGE_CATEGORY = "image"
# Provider outages pass: a few attempts, a minute apart at most.
_PROVIDER_RETRIES = Retries(backoff_seconds=5, max_backoff_seconds=60)


@job_kind(
    TEXT_TASK_KIND,
    TextTaskJobInput,
    description="One of the six LLM task types (GET /tasks/types)",
    time_limit_seconds=600,
    retries=_PROVIDER_RETRIES,
)
async def text_task(context: JobContext, data: TextTaskJobInput) -> dict[str, Any]:
    platform = context.platform
    spec = TASKS[data.task_type]
    request = spec.build_request(
        spec.input_model.model_validate(data.input),
        seed=data.seed,
        temperature=data.temperature,
        timeout=platform.settings.provider_job_timeout_seconds,
        revision_notes=data.revision_notes,
    )
    await context.progress(0.1, f"asking {platform.text_provider.name}")
    started = time.perf_counter()
    result, output = await run_text_task(
        platform,
        platform.text_provider,
        spec,
        request,
        user_id=context.owner_id,
        job_id=context.job_id,
    )
    await context.progress(0.95, "answer validated")
    left = _outcome(context, data, spec.type, output, request.prompt, result)
    return {
        **left,
        "task_type": spec.type.value,
        "output": output,
        "provider": result.provider,
        "model": result.model,
        "prompt": request.prompt,
        "system": request.system,
        "parameters": {"temperature": request.temperature, "max_tokens": request.max_tokens},
        "seed": result.seed,
        "timings": {
            "provider_ms": round(result.duration_ms, 1),
            "total_ms": round((time.perf_counter() - started) * 1000, 1),
        },
        "usage": usage_document(result.usage),
        "metadata": result.metadata,
        "context": data.context.model_dump(mode="json") if data.context else None,
    }


@job_kind(
    IMAGE_KIND,
    ImageJobInput,
    category=IMAGE_CATEGORY,
    description="Generate images from a prompt; they are stored and served at /api/v1/images",
    time_limit_seconds=900,
    retries=_PROVIDER_RETRIES,
)
async def generate_image(context: JobContext, data: ImageJobInput) -> dict[str, Any]:
    owner_id = job_owner(context)
    platform = context.platform
    provider = platform.image_provider
    request = ImageRequest(
        prompt=data.prompt,
        negative_prompt=data.negative_prompt,
        width=data.width,
        height=data.height,
        count=data.count,
        seed=data.seed,
        style=data.style,
        palette=tuple(data.palette),
        format=data.format,
        timeout=platform.settings.provider_job_timeout_seconds,
    )
    started = time.perf_counter()
    result = await call_image_provider(
        context, "generate", lambda progress: provider.generate(request, progress)
    )
    parameters = data.model_dump(mode="json", exclude={"prompt"})
    provenance = {
        "provider": result.provider,
        "model": result.model,
        "prompt": data.prompt,
        "parameters": parameters,
        "job_id": str(context.job_id),
        "job_kind": IMAGE_KIND,
    }
    images = await store_image_outputs(context, owner_id, result, provenance)
    return {
        **images,
        "provider": result.provider,
        "model": result.model,
        "prompt": data.prompt,
        "parameters": parameters,
        "timings": {
            "provider_ms": round(result.duration_ms, 1),
            "total_ms": round((time.perf_counter() - started) * 1000, 1),
        },
        "usage": usage_document(result.usage),
        "metadata": result.metadata,
    }


class ImageEditJobInput(BaseModel):
    """What `providers.image_variations` and `providers.style_transfer` run on: an image of
    the images table (the submitter was checked to be its owner or a writer of its subject)
    and how to change it."""

    model_config = ConfigDict(extra="forbid")

    source_image_id: uuid.UUID
    prompt: str = Field(default="", max_length=4000)
    style: str | None = Field(default=None, max_length=50)
    palette: list[HexColour] = Field(default_factory=list, max_length=8)
    strength: float = Field(default=0.5, ge=0, le=1)
    count: int = Field(default=1, ge=1, le=4)
    seed: Seed | None = None
    format: Literal["png", "jpeg", "webp"] = "png"


@job_kind(
    IMAGE_VARIATIONS_KIND,
    ImageEditJobInput,
    category=IMAGE_CATEGORY,
    description="Variations of a stored image, stored and linked to it",
    time_limit_seconds=900,
    retries=_PROVIDER_RETRIES,
)
async def image_variations(context: JobContext, data: ImageEditJobInput) -> dict[str, Any]:
    return await _transform_image(context, data, "variation", IMAGE_VARIATIONS_KIND)


@job_kind(
    STYLE_TRANSFER_KIND,
    ImageEditJobInput,
    category=IMAGE_CATEGORY,
    description="A stored image restyled (style, palette, prompt), stored and linked to it",
    time_limit_seconds=900,
    retries=_PROVIDER_RETRIES,
)
async def style_transfer(context: JobContext, data: ImageEditJobInput) -> dict[str, Any]:
    return await _transform_image(context, data, "style_transfer", STYLE_TRANSFER_KIND)


async def _transform_image(
    context: JobContext, data: ImageEditJobInput, operation: ImageOperation, kind: str
) -> dict[str, Any]:
    owner_id = job_owner(context)
    platform = context.platform
    provider = platform.image_provider
    source, source_bytes = await read_source_image(context, data.source_image_id)
    request = edit_request(source_bytes, operation, data, platform.settings)
    del source_bytes  # the request holds the one copy
    started = time.perf_counter()
    result = await call_image_provider(
        context, operation, lambda progress: provider.transform(request, progress)
    )
    parameters = data.model_dump(mode="json", exclude={"prompt", "source_image_id"})
    provenance = {
        "provider": result.provider,
        "model": result.model,
        "prompt": data.prompt,
        "parameters": parameters,
        "job_id": str(context.job_id),
        "job_kind": kind,
        "operation": operation,
        "source_image_id": str(source.id),
        "source_sha256": source.sha256,
    }
    images = await store_image_outputs(
        context, owner_id, result, provenance, source_image_id=source.id
    )
    return {
        **images,
        "operation": operation,
        "source_image_id": str(source.id),
        "provider": result.provider,
        "model": result.model,
        "prompt": data.prompt,
        "parameters": parameters,
        "timings": {
            "provider_ms": round(result.duration_ms, 1),
            "total_ms": round((time.perf_counter() - started) * 1000, 1),
        },
        "usage": usage_document(result.usage),
        "metadata": result.metadata,
    }


def _outcome(
    context: JobContext,
    data: TextTaskJobInput,
    task: TaskType,
    output: dict[str, Any],
    prompt: str,
    result: TextResult,
) -> dict[str, Any]:
    """For a task about a stored thing, what its owner makes of the output (a draft),
    written with the job's success; the fields it adds to the result."""
    handler = outcome_handler(data.context.type) if data.context else None
    if data.context is None or handler is None:
        return {}
    outcome = handler(
        TaskOutcome(
            task=task,
            target_type=data.context.type,
            target_id=data.context.id,
            output=output,
            task_input=data.model_dump(mode="json"),
            revises=data.revises,
            prompt=prompt,
            provider=result.provider,
            model=result.model,
            seed=result.seed,
            job_id=context.job_id,
            owner_id=context.owner_id,
            subject_id=context.subject_id,
        )
    )
    if outcome is None:
        return {}
    context.on_success(outcome.write)
    return outcome.result


# -- shared by the image kinds -------------------------------------------------------------------


class EditParameters(Protocol):
    """How to change a stored image: what both image-to-image job inputs carry."""

    prompt: str
    style: str | None
    palette: list[str]
    strength: float
    count: int
    seed: int | None
    format: ImageFormat


def edit_request(
    source: bytes, operation: ImageOperation, data: EditParameters, settings: Settings
) -> ImageEditRequest:
    """The provider's image-to-image request for `source`, changed as `data` says."""
    return ImageEditRequest(
        source=source,
        operation=operation,
        prompt=data.prompt,
        style=data.style,
        palette=tuple(data.palette),
        strength=data.strength,
        count=data.count,
        seed=data.seed,
        format=data.format,
        timeout=settings.provider_job_timeout_seconds,
    )


async def read_source_image(context: JobContext, image_id: uuid.UUID) -> tuple[Image, bytes]:
    """An image to transform: its row and its bytes (JobFailed when it is gone)."""
    platform = context.platform
    async with platform.read_sessions() as session:
        source = await ImageService(session).source_for_job(image_id)
    if source is None:
        raise JobFailed("SOURCE_IMAGE_NOT_FOUND", "The source image was deleted")
    await context.progress(0.01, "reading the source image")
    try:
        return source, await read_object(platform.storage, source.storage_key)
    except StorageUnavailableError as exc:
        raise JobFailed("STORAGE_UNAVAILABLE", exc.detail, retryable=True) from exc
    except ImageNotFound as exc:
        raise JobFailed("SOURCE_IMAGE_NOT_FOUND", exc.detail) from exc


def job_owner(context: JobContext) -> uuid.UUID:
    if context.owner_id is None:
        raise JobFailed("OWNER_REQUIRED", "Images belong to a user: submit this job as one")
    return context.owner_id


async def call_image_provider(
    context: JobContext,
    operation: str,
    call: Callable[[Progress], Awaitable[ImageResult]],
) -> ImageResult:
    """One image provider call with its progress (2-90 %) and its row in the usage ledger,
    written whether it succeeded or not."""
    platform = context.platform
    provider = platform.image_provider
    await context.progress(0.02, f"asking {provider.name}")

    async def provider_progress(fraction: float, message: str) -> None:
        await context.progress(0.02 + 0.88 * fraction, message)

    try:
        result = await call(provider_progress)
    except ProviderError as exc:
        await record_call(
            platform,
            CallRecord(
                context.owner_id,
                context.job_id,
                "image",
                operation,
                exc.provider,
                provider.model,
                False,
                error_code=exc.code,
            ),
        )
        raise
    await record_call(
        platform,
        CallRecord(
            context.owner_id,
            context.job_id,
            "image",
            operation,
            result.provider,
            result.model,
            True,
            result.usage,
            result.duration_ms,
        ),
    )
    return result


async def store_image_outputs(
    context: JobContext,
    owner_id: uuid.UUID,
    result: ImageResult,
    provenance: dict[str, Any],
    *,
    source_image_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Store the provider's images (no transaction open) and have their rows written with the
    job's success; the result's `images`, `image_ids` and `seeds`."""
    platform = context.platform
    await context.progress(0.92, "storing images")
    stored: list[StoredImage] = []
    seeds = []
    for image in result.images:
        try:
            stored.append(
                await put_image_bytes(
                    platform.storage,
                    uuid7(),
                    image.data,
                    image_format=image.format,
                    max_pixels=platform.settings.image_max_pixels,
                )
            )
        except StorageUnavailableError as exc:
            raise JobFailed("STORAGE_UNAVAILABLE", exc.detail, retryable=True) from exc
        except (UnsupportedImage, ImageTooManyPixels) as exc:
            raise JobFailed("PROVIDER_IMAGE_UNREADABLE", exc.detail) from exc
        seeds.append(image.seed)

    async def record_images(session: Any) -> None:
        images = ImageService(session)
        for item, seed in zip(stored, seeds, strict=True):
            await images.record(
                item,
                owner_id=owner_id,
                subject_type=context.subject_type,
                subject_id=context.subject_id,
                job_id=context.job_id,
                details={**provenance, "seed": seed},
                source_image_id=source_image_id,
            )

    context.on_success(record_images)
    return {
        "images": [
            item.describe() | {"seed": seed} for item, seed in zip(stored, seeds, strict=True)
        ],
        "image_ids": [str(item.id) for item in stored],
        "seeds": seeds,
    }
