"""Providers for the OpenAI-compatible API: OpenAI itself and the servers that speak it
(Ollama, vLLM, LM Studio, LocalAI).

Text is `POST /chat/completions`; images are `POST /images/generations` and, image to image,
`POST /images/edits` (or `/images/variations` for dall-e-2).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import httpx

from creativeflow.providers.base import (
    ImageEditRequest,
    ImageFormat,
    ImageRequest,
    ImageResult,
    Progress,
    TextRequest,
    TextResult,
    Usage,
)
from creativeflow.providers.errors import (
    MalformedResponse,
    ProviderNotConfigured,
    ProviderRejected,
)
from creativeflow.providers.http import RetryPolicy, json_body, send
from creativeflow.providers.remote import (
    DEFAULT_CLIENT_TIMEOUT,
    Deadline,
    add_usage,
    batches,
    compose_prompt,
    decode_image,
    download,
    edit_prompt,
    inspect_source,
    policy_from,
    to_png,
    within,
)
from creativeflow.settings import Settings
from creativeflow.shared.core.logging import get_logger

PROVIDER = "openai"
OPENAI_HOST = "api.openai.com"

# OpenAI's JSON mode refuses a request whose messages never say "JSON".
JSON_INSTRUCTION = "Answer with one JSON object, and nothing else, valid against this JSON Schema:"
# The sizes OpenAI's own image models accept; any other model gets the requested size.
KNOWN_SIZES: dict[str, tuple[tuple[int, int], ...]] = {
    "dall-e-2": ((256, 256), (512, 512), (1024, 1024)),
    "dall-e-3": ((1024, 1024), (1792, 1024), (1024, 1792)),
    "gpt-image": ((1024, 1024), (1536, 1024), (1024, 1536)),
}
MAX_IMAGES_PER_CALL = 10
# File extensions of the source image formats, for the upload's file name.
_EXTENSIONS: dict[str, str] = {"png": "png", "jpeg": "jpg", "webp": "webp"}
# gpt-image takes up to 16 images in an edit.
MAX_REFERENCES = 16

_FENCED = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.S)

_log = get_logger("creativeflow.providers")


def requires_api_key(base_url: str) -> bool:
    """OpenAI itself needs a key; self-hosted servers that speak its API (Ollama, vLLM, LM
    Studio, LocalAI) usually do not."""
    return httpx.URL(base_url).host == OPENAI_HOST


class _Compatible:
    """What both OpenAI-compatible providers share: the endpoint, the key, the client."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        client: httpx.AsyncClient | None = None,
        policy: RetryPolicy = RetryPolicy(),
    ) -> None:
        if not base_url:
            raise ProviderNotConfigured("OPENAI_BASE_URL is not set", provider=PROVIDER)
        self.name: str = PROVIDER
        self.model: str = model
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._policy = policy
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=DEFAULT_CLIENT_TIMEOUT)

    @staticmethod
    def _settings_options(settings: Settings) -> dict[str, Any]:
        base_url = settings.openai_base_url
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        if requires_api_key(base_url) and not key:
            raise ProviderNotConfigured(
                f"OPENAI_API_KEY is not set (required by {base_url}; servers such as Ollama "
                "or vLLM need none: point OPENAI_BASE_URL at them)",
                provider=PROVIDER,
            )
        return {"base_url": base_url, "api_key": key, "policy": policy_from(settings)}

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def _headers(self) -> dict[str, str]:
        # Per request, never on the client: image downloads go to other hosts.
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    async def _call(
        self, method: str, path: str, deadline: Deadline, **kwargs: Any
    ) -> httpx.Response:
        return await send(
            self._client,
            method,
            f"{self._base_url}{path}",
            provider=PROVIDER,
            seconds=deadline.left(),
            policy=self._policy,
            headers=self._headers(),
            **kwargs,
        )


# -- text ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Answer:
    output: dict[str, Any] | str
    model: str | None
    metadata: dict[str, Any]


class OpenAITextProvider(_Compatible):
    """Chat completions; with an output schema, JSON mode and a parsed JSON object."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(model=settings.openai_text_model, **cls._settings_options(settings))

    async def complete(self, request: TextRequest) -> TextResult:
        started = time.perf_counter()
        deadline = Deadline.after(request.timeout)
        structured = request.output_schema is not None
        body = self._body(request)
        used = Usage()
        async with within(request.timeout, PROVIDER):
            # An answer that breaks the protocol is asked for once more, then fails.
            for attempt in (1, 2):
                response = await self._call("POST", "/chat/completions", deadline, json=body)
                try:
                    data = json_body(response, PROVIDER)
                    used = add_usage(used, _token_usage(data))
                    answer = _read_answer(data, structured)
                except MalformedResponse as exc:
                    if attempt == 2:
                        raise
                    _log.warning("provider_malformed_answer", provider=PROVIDER, reason=exc.message)
                    continue
                return TextResult(
                    output=answer.output,
                    provider=PROVIDER,
                    model=answer.model or self.model,
                    usage=used,
                    duration_ms=(time.perf_counter() - started) * 1000,
                    seed=request.seed,
                    metadata={**answer.metadata, "attempts": attempt},
                )
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _body(self, request: TextRequest) -> dict[str, Any]:
        system = request.system.strip()
        if request.output_schema is not None and "json" not in f"{system}{request.prompt}".lower():
            schema = json.dumps(request.output_schema, ensure_ascii=False)
            system = f"{system}\n\n{JSON_INSTRUCTION}\n{schema}".strip()
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": request.prompt})
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.output_schema is not None:
            body["response_format"] = {"type": "json_object"}
        return body


def _token_usage(data: Any) -> Usage:
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return Usage()
    return Usage(
        input_tokens=_int(usage.get("prompt_tokens")),
        output_tokens=_int(usage.get("completion_tokens")),
    )


def _read_answer(data: Any, structured: bool) -> _Answer:
    """`choices[0].message.content`, as a JSON object when one was asked for."""
    choices = data.get("choices") if isinstance(data, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices else None
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise MalformedResponse("openai answered without choices[0].message", provider=PROVIDER)
    assert isinstance(data, dict) and isinstance(choice, dict)
    finish_reason = choice.get("finish_reason")
    if message.get("refusal") or finish_reason == "content_filter":
        reason = message.get("refusal") or "the content filter stopped the answer"
        raise ProviderRejected(f"openai refused the request: {reason}", provider=PROVIDER)
    content = _text_of(message.get("content"))
    if not content.strip():
        raise MalformedResponse("openai answered with empty content", provider=PROVIDER)
    output: dict[str, Any] | str = parse_json_object(content) if structured else content.strip()
    model = data.get("model")
    metadata = {
        key: value
        for key, value in (
            ("id", data.get("id")),
            ("finish_reason", finish_reason),
            ("system_fingerprint", data.get("system_fingerprint")),
        )
        if value is not None
    }
    return _Answer(
        output=output, model=model if isinstance(model, str) else None, metadata=metadata
    )


def _text_of(content: Any) -> str:
    """Content is a string; some servers send a list of parts ({"type": "text", "text"})."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def parse_json_object(content: str) -> dict[str, Any]:
    """A JSON object, bare or in a ```json fenced block; anything else is malformed."""
    candidates = [content.strip()] + [match.strip() for match in _FENCED.findall(content)]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise MalformedResponse("openai's answer is not a JSON object", provider=PROVIDER)


# -- images --------------------------------------------------------------------------------


class OpenAIImageProvider(_Compatible):
    """Image generation and editing; OpenAI's own models get a size they accept."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(model=settings.openai_image_model, **cls._settings_options(settings))

    async def generate(
        self, request: ImageRequest, progress: Progress | None = None
    ) -> ImageResult:
        started = time.perf_counter()
        deadline = Deadline.after(request.timeout)
        family = model_family(self.model)
        width, height = nearest_size(self.model, request.width, request.height)
        prompt = compose_prompt(
            request.prompt, request.style, request.palette, avoid=request.negative_prompt
        )
        body = {"model": self.model, "prompt": prompt, "size": f"{width}x{height}"}
        body |= _output_options(family, request.format)
        references = request.references[:MAX_REFERENCES] if family == "gpt-image" else ()
        async with within(request.timeout, PROVIDER):
            if references:
                # gpt-image takes reference images as the images of an edit: the result is
                # drawn from the prompt, consistent with them.
                files = await asyncio.to_thread(_reference_files, references)
                form = {key: str(value) for key, value in body.items()}
                calls = [
                    self._call(
                        "POST", "/images/edits", deadline, data={**form, "n": str(n)}, files=files
                    )
                    for n in batches(request.count, _per_call(family))
                ]
            else:
                calls = [
                    self._call("POST", "/images/generations", deadline, json={**body, "n": n})
                    for n in batches(request.count, _per_call(family))
                ]
            answers = await asyncio.gather(*calls)
            result = await self._collect(answers, request.format, deadline, started)
        result.metadata["references_used"] = len(references)
        if progress is not None:
            await progress(1.0, f"{len(result.images)} image(s) received")
        return result

    async def transform(
        self, request: ImageEditRequest, progress: Progress | None = None
    ) -> ImageResult:
        started = time.perf_counter()
        deadline = Deadline.after(request.timeout)
        family = model_family(self.model)
        if family == "dall-e-3":
            raise ProviderRejected(
                "dall-e-3 cannot edit images (use gpt-image-1 or dall-e-2)", provider=PROVIDER
            )
        source = await asyncio.to_thread(inspect_source, request.source, PROVIDER)
        data, image_format = request.source, source.format
        if family == "dall-e-2" and image_format != "png":  # dall-e-2 takes PNG only
            data, image_format = await asyncio.to_thread(to_png, request.source), "png"
        width, height = nearest_size(self.model, source.width, source.height)
        form = {"model": self.model, "size": f"{width}x{height}"}
        if family == "dall-e-2" and request.operation == "variation":
            path = "/images/variations"
            form |= {"response_format": "b64_json"}
        else:
            path = "/images/edits"
            form |= {"prompt": edit_prompt(request)} | _output_options(family, request.format)
        files = {"image": (f"source.{_EXTENSIONS[image_format]}", data, f"image/{image_format}")}
        async with within(request.timeout, PROVIDER):
            answers = await asyncio.gather(
                *(
                    self._call("POST", path, deadline, data={**form, "n": str(n)}, files=files)
                    for n in batches(request.count, _per_call(family))
                )
            )
            result = await self._collect(answers, request.format, deadline, started)
        result.metadata.update(operation=request.operation, endpoint=path)
        if progress is not None:
            await progress(1.0, f"{len(result.images)} image(s) received")
        return result

    async def _collect(
        self,
        answers: Sequence[httpx.Response],
        image_format: ImageFormat,
        deadline: Deadline,
        started: float,
    ) -> ImageResult:
        """Every image of every answer (inline base64 or downloaded), decoded."""
        pending: list[Any] = []
        revised: list[str] = []
        used = Usage()
        for response in answers:
            data = json_body(response, PROVIDER)
            items = data.get("data") if isinstance(data, dict) else None
            if not isinstance(items, list) or not items:
                raise MalformedResponse("openai answered without images", provider=PROVIDER)
            usage = data.get("usage")
            if isinstance(usage, dict):
                used = add_usage(
                    used,
                    Usage(
                        input_tokens=_int(usage.get("input_tokens")),
                        output_tokens=_int(usage.get("output_tokens")),
                    ),
                )
            for item in items:
                pending.append(self._image_bytes(item, deadline))
                if isinstance(item, dict) and isinstance(item.get("revised_prompt"), str):
                    revised.append(item["revised_prompt"])
        blobs = await asyncio.gather(*pending)
        images = await asyncio.to_thread(
            lambda: [decode_image(blob, image_format, provider=PROVIDER) for blob in blobs]
        )
        metadata: dict[str, Any] = {"revised_prompts": revised} if revised else {}
        return ImageResult(
            images=images,
            provider=PROVIDER,
            model=self.model,
            usage=Usage(used.input_tokens, used.output_tokens, images=len(images)),
            duration_ms=(time.perf_counter() - started) * 1000,
            metadata=metadata,
        )

    async def _image_bytes(self, item: Any, deadline: Deadline) -> bytes:
        if isinstance(item, dict) and isinstance(item.get("b64_json"), str):
            try:
                return base64.b64decode(item["b64_json"], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise MalformedResponse(
                    "openai sent an image that is not base64", provider=PROVIDER
                ) from exc
        if isinstance(item, dict) and isinstance(item.get("url"), str) and item["url"]:
            url = httpx.URL(f"{self._base_url}/").join(item["url"])
            return await download(self._client, str(url), PROVIDER, deadline, self._policy)
        raise MalformedResponse("openai sent an image without b64_json or url", provider=PROVIDER)


def _reference_files(references: Sequence[bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    """The references as `image[]` parts, each checked to be a PNG, JPEG or WebP."""
    parts = []
    for number, data in enumerate(references):
        image_format = inspect_source(data, PROVIDER).format
        name = f"reference-{number}.{_EXTENSIONS[image_format]}"
        parts.append(("image[]", (name, data, f"image/{image_format}")))
    return parts


def model_family(model: str) -> str | None:
    """ "dall-e-2", "dall-e-3" or "gpt-image" for OpenAI's own image models, else None."""
    name = model.strip().lower()
    if name in ("dall-e-2", "dall-e-3"):
        return name
    return "gpt-image" if name.startswith("gpt-image") else None


def nearest_size(model: str, width: int, height: int) -> tuple[int, int]:
    """The accepted size closest in shape, then in area, for OpenAI's own models; the
    requested size for any other."""
    family = model_family(model)
    width, height = max(1, width), max(1, height)
    if family is None:
        return width, height
    shape, area = math.log(width / height), math.log(width * height)
    return min(
        KNOWN_SIZES[family],
        key=lambda size: (
            round(abs(math.log(size[0] / size[1]) - shape), 6),
            abs(math.log(size[0] * size[1]) - area),
        ),
    )


def _per_call(family: str | None) -> int:
    return 1 if family == "dall-e-3" else MAX_IMAGES_PER_CALL


def _output_options(family: str | None, image_format: ImageFormat) -> dict[str, str]:
    """dall-e answers with URLs unless asked for base64; gpt-image always sends base64 and
    refuses `response_format`, but chooses its encoding."""
    if family in ("dall-e-2", "dall-e-3"):
        return {"response_format": "b64_json"}
    if family == "gpt-image":
        return {"output_format": image_format}
    return {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
