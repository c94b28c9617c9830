"""Image embeddings, for measuring how far a panel drifts from a character's design beyond
what colours and a perceptual hash see (pose, clothes, face).

One client for the multimodal embeddings API in Jina's form: `POST {base}/embeddings` with
`{"model", "input": [{"image": <base64>}], "normalized": true}`, answered with
`{"data": [{"index", "embedding"}]}` (Jina's `jina-clip-v2`, or a self-hosted CLIP server
that speaks it). Configured by IMAGE_EMBEDDING_URL, IMAGE_EMBEDDING_MODEL and
IMAGE_EMBEDDING_API_KEY; unset, no embeddings are asked for and drift is measured from image
features alone.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Self

import httpx

from creativeflow.providers.errors import MalformedResponse
from creativeflow.providers.http import RetryPolicy, json_body, send

if TYPE_CHECKING:
    from creativeflow.settings import Settings

PROVIDER = "image-embeddings"
# Images per request: a check of many panels is sent in batches.
BATCH = 16


class ImageEmbedder:
    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None,
        timeout: float = 60.0,
        policy: RetryPolicy = RetryPolicy(),
    ) -> None:
        self.model = model
        self.timeout = timeout
        self._url = base_url.rstrip("/") + "/embeddings"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._policy = policy
        self._client = httpx.AsyncClient(timeout=timeout)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self | None:
        if not settings.image_embedding_url:
            return None
        key = settings.image_embedding_api_key
        return cls(
            base_url=settings.image_embedding_url,
            model=settings.image_embedding_model,
            api_key=key.get_secret_value() if key else None,
            timeout=settings.provider_job_timeout_seconds,
        )

    async def embed(self, images: Sequence[bytes]) -> list[list[float]]:
        """One embedding per image, in order."""
        vectors: list[list[float]] = []
        for start in range(0, len(images), BATCH):
            batch = images[start : start + BATCH]
            body = {
                "model": self.model,
                "normalized": True,
                "input": [{"image": base64.b64encode(data).decode()} for data in batch],
            }
            response = await send(
                self._client,
                "POST",
                self._url,
                provider=PROVIDER,
                seconds=self.timeout,
                policy=self._policy,
                headers=self._headers,
                json=body,
            )
            vectors += _vectors(json_body(response, PROVIDER), len(batch))
        return vectors

    async def aclose(self) -> None:
        await self._client.aclose()


def _vectors(data: object, expected: int) -> list[list[float]]:
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or len(items) != expected:
        raise MalformedResponse(
            f"{PROVIDER} answered without {expected} embedding(s)", provider=PROVIDER
        )
    ordered = sorted(items, key=lambda item: item.get("index", 0) if isinstance(item, dict) else 0)
    vectors = []
    for item in ordered:
        vector = item.get("embedding") if isinstance(item, dict) else None
        if (
            not isinstance(vector, list)
            or not vector
            or not all(isinstance(value, int | float) for value in vector)
        ):
            raise MalformedResponse(
                f"{PROVIDER} sent an embedding that is not numbers", provider=PROVIDER
            )
        vectors.append([float(value) for value in vector])
    return vectors


def cosine_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """1 - cosine similarity, kept to 0..1 (opposite vectors are as far as it goes)."""
    if len(a) != len(b):
        raise ValueError("embeddings of different lengths")
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    if norms == 0:
        return 1.0
    return min(1.0, max(0.0, 1.0 - dot / norms))
