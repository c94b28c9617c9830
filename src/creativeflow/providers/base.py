"""The provider contract: what is asked of a text or image provider and what comes back.

Every result records which provider and model served, the seed, how long it took and what it
used (tokens or images), so jobs can store provenance and the usage ledger can count calls.
Providers never touch the database: callers hold no transaction across a call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

# Reports progress of one call: a fraction 0..1 and a short message. Job handlers pass their
# job's progress here, so a cancelled job stops at the next report.
Progress = Callable[[float, str], Awaitable[None]]

ImageFormat = Literal["png", "jpeg", "webp"]
ImageOperation = Literal["variation", "style_transfer"]


class ProviderKind(StrEnum):
    LOCAL = "local"
    OPENAI = "openai"
    IDEOGRAM = "ideogram"
    COMFYUI = "comfyui"
    AUTOMATIC1111 = "automatic1111"


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    images: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class TextRequest:
    """One text generation. `task` names what is wanted (a task type such as
    `scene_summary`, or `analysis` for a free JSON analysis); `inputs` are the structured
    facts the answer must be built from (the local provider works on these); `system` and
    `prompt` are the same request written for a language model. With `output_schema` (a JSON
    Schema) the answer must be a JSON object valid against it."""

    task: str
    prompt: str
    system: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    output_schema: dict[str, Any] | None = None
    seed: int | None = None
    temperature: float = 0.7
    max_tokens: int = 1024
    timeout: float = 120.0


@dataclass(frozen=True, slots=True)
class TextResult:
    output: dict[str, Any] | str
    provider: str
    model: str
    usage: Usage
    duration_ms: float
    seed: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImageRequest:
    prompt: str
    negative_prompt: str = ""
    width: int = 1024
    height: int = 1024
    count: int = 1
    seed: int | None = None
    # A style name (`modern`, `watercolor`, `noir`, ...) and hex colours (`#1a2b3c`).
    style: str | None = None
    palette: tuple[str, ...] = ()
    format: ImageFormat = "png"
    timeout: float = 300.0
    # Images the result must stay consistent with (a character's designs, a location's
    # references), encoded. Providers that take reference images send them (OpenAI's
    # gpt-image models, as the images of an edit); the others draw from the prompt alone
    # and say so in their result's metadata (`references_used`: 0).
    references: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class ImageEditRequest:
    """Image to image: variations of `source`, or `source` restyled (style transfer)."""

    source: bytes
    operation: ImageOperation
    prompt: str = ""
    style: str | None = None
    palette: tuple[str, ...] = ()
    # 0..1: how far the output may move from the source.
    strength: float = 0.5
    count: int = 1
    seed: int | None = None
    format: ImageFormat = "png"
    timeout: float = 300.0


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    data: bytes
    format: ImageFormat
    width: int
    height: int
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class ImageResult:
    images: list[GeneratedImage]
    provider: str
    model: str
    usage: Usage
    duration_ms: float
    metadata: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class TextProvider(Protocol):
    name: str
    model: str

    async def complete(self, request: TextRequest) -> TextResult: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ImageProvider(Protocol):
    name: str
    model: str

    async def generate(
        self, request: ImageRequest, progress: Progress | None = None
    ) -> ImageResult: ...

    async def transform(
        self, request: ImageEditRequest, progress: Progress | None = None
    ) -> ImageResult: ...

    async def aclose(self) -> None: ...
