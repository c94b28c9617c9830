"""The job kinds of the generation routes: a text task, and an image generation.

Both call the configured provider chain with no transaction open, record every call in the
usage ledger, and return a result that says who served it, with what, and how long it took.
"""

from __future__ import annotations

import time
from typing import Any

from creativeflow.assets.service import ImageService, StoredImage, put_image_bytes
from creativeflow.db.ids import uuid7
from creativeflow.jobs.context import JobContext
from creativeflow.jobs.errors import JobFailed
from creativeflow.jobs.kinds import Retries, job_kind
from creativeflow.providers.base import ImageRequest
from creativeflow.providers.errors import ProviderError
from creativeflow.providers.schemas import ImageJobInput, TextTaskJobInput
from creativeflow.providers.service import CallRecord, record_call, run_text_task, usage_document
from creativeflow.providers.tasks import TASKS

TEXT_TASK_KIND = "providers.text_task"
IMAGE_KIND = "providers.generate_image"
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
    return {
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
    }


@job_kind(
    IMAGE_KIND,
    ImageJobInput,
    description="Generate images from a prompt; they are stored and served at /api/v1/images",
    time_limit_seconds=900,
    retries=_PROVIDER_RETRIES,
)
async def generate_image(context: JobContext, data: ImageJobInput) -> dict[str, Any]:
    if context.owner_id is None:
        raise JobFailed("OWNER_REQUIRED", "Images belong to a user: submit this job as one")
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
    await context.progress(0.02, f"asking {provider.name}")
    started = time.perf_counter()

    async def provider_progress(fraction: float, message: str) -> None:
        await context.progress(0.02 + 0.88 * fraction, message)

    try:
        result = await provider.generate(request, provider_progress)
    except ProviderError as exc:
        await record_call(
            platform,
            CallRecord(
                context.owner_id,
                context.job_id,
                "image",
                "generate",
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
            "generate",
            result.provider,
            result.model,
            True,
            result.usage,
            result.duration_ms,
        ),
    )
    await context.progress(0.92, "storing images")
    stored: list[StoredImage] = []
    seeds = []
    for image in result.images:
        stored.append(
            await put_image_bytes(
                platform.storage,
                uuid7(),
                image.data,
                width=image.width,
                height=image.height,
                image_format=image.format,
            )
        )
        seeds.append(image.seed)
    provenance = {
        "provider": result.provider,
        "model": result.model,
        "prompt": data.prompt,
        "parameters": data.model_dump(mode="json", exclude={"prompt"}),
        "job_id": str(context.job_id),
    }

    owner_id = context.owner_id

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
            )

    context.on_success(record_images)
    return {
        "images": [
            item.describe() | {"seed": seed} for item, seed in zip(stored, seeds, strict=True)
        ],
        "image_ids": [str(item.id) for item in stored],
        "provider": result.provider,
        "model": result.model,
        "prompt": data.prompt,
        "parameters": provenance["parameters"],
        "seeds": seeds,
        "timings": {
            "provider_ms": round(result.duration_ms, 1),
            "total_ms": round((time.perf_counter() - started) * 1000, 1),
        },
        "usage": usage_document(result.usage),
        "metadata": result.metadata,
    }
