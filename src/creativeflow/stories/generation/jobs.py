"""The story studio's image jobs: one image generation for a target (`stories.generate_image`),
and the group of a panel sequence (`stories.panel_sequence`, one child per panel).

The provider is called with no transaction open; the images and the draft holding them as
variants are written with the job's success, so a draft exists exactly when its job
succeeded, and `draft_ready` goes out with it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from creativeflow.assets.errors import ImageNotFound, StorageUnavailableError
from creativeflow.assets.service import ImageService, read_object
from creativeflow.jobs.context import JobContext
from creativeflow.jobs.errors import JobFailed
from creativeflow.jobs.kinds import Retries, job_group, job_kind
from creativeflow.providers.base import ImageOperation, ImageRequest
from creativeflow.providers.jobs import (
    IMAGE_CATEGORY,
    call_image_provider,
    edit_request,
    job_owner,
    read_source_image,
    store_image_outputs,
)
from creativeflow.providers.service import usage_document
from creativeflow.stories.consistency.service import locked_drift_of_images
from creativeflow.stories.drafts.models import DraftKind
from creativeflow.stories.drafts.service import NewDraft, record_draft
from creativeflow.stories.generation.schemas import PanelSequenceInput, StoryImageJobInput

GENERATE_IMAGE_KIND = "stories.generate_image"
PANEL_SEQUENCE_KIND = "stories.panel_sequence"
_RETRIES = Retries(backoff_seconds=5, max_backoff_seconds=60)

job_group(
    PANEL_SEQUENCE_KIND,
    PanelSequenceInput,
    description="Images for many panels: one stories.generate_image job per panel",
    category=IMAGE_CATEGORY,
)


@job_kind(
    GENERATE_IMAGE_KIND,
    StoryImageJobInput,
    description="An image for a panel, a cover, a character or a location, as a draft",
    time_limit_seconds=900,
    retries=_RETRIES,
    category=IMAGE_CATEGORY,
)
async def generate_story_image(context: JobContext, data: StoryImageJobInput) -> dict[str, Any]:
    owner_id = job_owner(context)
    platform = context.platform
    provider = platform.image_provider
    timeout = platform.settings.provider_job_timeout_seconds
    started = time.perf_counter()
    if data.source_image_id is not None:
        source, source_bytes = await read_source_image(context, data.source_image_id)
        operation: ImageOperation = (
            "style_transfer" if data.operation == "style_transfer" else "variation"
        )
        edit = edit_request(source_bytes, operation, data, platform.settings)
        del source_bytes  # the request holds the one copy
        result = await call_image_provider(
            context, operation, lambda progress: provider.transform(edit, progress)
        )
        source_id = source.id
    else:
        references = await _references(context, data.reference_image_ids)
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
            timeout=timeout,
            references=references,
        )
        del references  # the request holds the one copy
        result = await call_image_provider(
            context, "generate", lambda progress: provider.generate(request, progress)
        )
        source_id = None
    parameters = data.model_dump(mode="json", exclude={"prompt", "negative_prompt"})
    provenance = {
        "provider": result.provider,
        "model": result.model,
        "prompt": data.prompt,
        "parameters": parameters,
        "job_id": str(context.job_id),
        "job_kind": GENERATE_IMAGE_KIND,
        "story_target": {"type": data.target_type, "id": str(data.target_id)},
    }
    images = await store_image_outputs(
        context, owner_id, result, provenance, source_image_id=source_id
    )
    variants: list[dict[str, Any]] = [
        {"image_id": image_id, "seed": seed}
        for image_id, seed in zip(images["image_ids"], images["seeds"], strict=True)
    ]
    warnings: list[dict[str, Any]] = []
    if data.target_type == "panel":
        await context.progress(0.95, "checking locked characters")
        checked = await locked_drift_of_images(
            platform, data.target_id, [image.data for image in result.images]
        )
        for index, found in enumerate(checked):
            # An image whose bytes cannot be decoded is stored and shown as it is, unchecked.
            drifted = found or []
            variants[index]["drift"] = {item["character_id"]: item["drift"] for item in drifted}
            warnings += [{**item, "variant": index} for item in drifted]
    new = NewDraft(
        project_id=data.project_id,
        kind=DraftKind.IMAGE,
        operation=data.operation,
        target_type=data.target_type,
        target_id=data.target_id,
        variants=variants,
        job_id=context.job_id,
        prompt=data.prompt,
        negative_prompt=data.negative_prompt or None,
        provider=result.provider,
        model=result.model,
        parameters=parameters,
        warnings=warnings,
        revises_id=data.revises_id,
        created_by=owner_id,
    )

    async def write_draft(session: Any) -> None:
        record_draft(session, new)

    context.on_success(write_draft)
    return {
        **images,
        "draft_id": str(new.id),
        "target": {"type": data.target_type, "id": str(data.target_id)},
        "operation": data.operation,
        "provider": result.provider,
        "model": result.model,
        "prompt": data.prompt,
        "negative_prompt": data.negative_prompt,
        "parameters": parameters,
        "timings": {
            "provider_ms": round(result.duration_ms, 1),
            "total_ms": round((time.perf_counter() - started) * 1000, 1),
        },
        "usage": usage_document(result.usage),
        "metadata": result.metadata,
        "warnings": warnings,
    }


async def _references(context: JobContext, image_ids: list[uuid.UUID]) -> tuple[bytes, ...]:
    """The reference images' bytes, in order; one deleted since the job was submitted is left
    out."""
    if not image_ids:
        return ()
    platform = context.platform
    async with platform.read_sessions() as session:
        keys = {row.id: row.storage_key for row in await ImageService(session).by_ids(image_ids)}
    await context.progress(0.01, f"reading {len(keys)} reference image(s)")
    found = []
    for image_id in image_ids:
        if image_id not in keys:
            continue
        try:
            found.append(await read_object(platform.storage, keys[image_id]))
        except StorageUnavailableError as exc:
            raise JobFailed("STORAGE_UNAVAILABLE", exc.detail, retryable=True) from exc
        except ImageNotFound:
            continue
    return tuple(found)
