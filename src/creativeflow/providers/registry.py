"""Which provider serves: settings name one, or a fallback chain (TEXT_PROVIDERS=openai,local).

Call sites ask for "the text provider" or "the image provider" and get a chain: when one
provider fails or times out the next one serves, and the result says which served (its
`provider`, with `metadata["fallback_from"]` listing the ones that failed).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import replace
from typing import Any, TypeVar

from creativeflow.providers.base import (
    ImageEditRequest,
    ImageProvider,
    ImageRequest,
    ImageResult,
    Progress,
    ProviderKind,
    TextProvider,
    TextRequest,
    TextResult,
)
from creativeflow.providers.errors import ProviderError, ProviderNotConfigured
from creativeflow.settings import ConfigurationError, Settings
from creativeflow.shared.core.logging import get_logger

_log = get_logger("creativeflow.providers")

# kind -> "module:Class" of its text and image providers (imported only when chosen).
_TEXT = {
    ProviderKind.LOCAL: "creativeflow.providers.local_text:LocalTextProvider",
    ProviderKind.OPENAI: "creativeflow.providers.openai:OpenAITextProvider",
}
_IMAGE = {
    ProviderKind.LOCAL: "creativeflow.providers.local_image:LocalImageProvider",
    ProviderKind.OPENAI: "creativeflow.providers.openai:OpenAIImageProvider",
    ProviderKind.IDEOGRAM: "creativeflow.providers.ideogram:IdeogramImageProvider",
    ProviderKind.COMFYUI: "creativeflow.providers.comfyui:ComfyUIImageProvider",
    ProviderKind.AUTOMATIC1111: "creativeflow.providers.automatic1111:Automatic1111ImageProvider",
}


def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _kinds(
    names: Sequence[str], table: dict[ProviderKind, str], setting: str
) -> list[ProviderKind]:
    kinds = []
    for name in names:
        try:
            kind = ProviderKind(name.strip().lower())
        except ValueError:
            kind = None
        if kind is None or kind not in table:
            known = ", ".join(k.value for k in table)
            raise ConfigurationError(f"{setting}: unknown provider {name!r} (known: {known})")
        kinds.append(kind)
    return kinds


def build_text_provider(settings: Settings) -> TextProvider:
    chain = []
    for kind in _kinds(settings.text_provider_chain, _TEXT, "TEXT_PROVIDERS"):
        cls = _load(_TEXT[kind])
        chain.append(cls() if kind is ProviderKind.LOCAL else _configured(cls, settings))
    return chain[0] if len(chain) == 1 else FallbackTextProvider(chain)


def build_image_provider(settings: Settings, executor: Executor | None = None) -> ImageProvider:
    chain = []
    for kind in _kinds(settings.image_provider_chain, _IMAGE, "IMAGE_PROVIDERS"):
        cls = _load(_IMAGE[kind])
        chain.append(cls(executor) if kind is ProviderKind.LOCAL else _configured(cls, settings))
    return chain[0] if len(chain) == 1 else FallbackImageProvider(chain)


def _configured(cls: Any, settings: Settings) -> Any:
    try:
        return cls.from_settings(settings)
    except ProviderNotConfigured as exc:
        raise ConfigurationError(str(exc)) from exc


ProviderT = TypeVar("ProviderT", TextProvider, ImageProvider)
ResultT = TypeVar("ResultT", TextResult, ImageResult)


class _Chain:
    def __init__(self, providers: Sequence[Any]) -> None:
        self.providers = list(providers)
        self.name = ",".join(p.name for p in self.providers)
        self.model = self.providers[0].model

    async def _first_that_serves(self, call: Callable[[Any], Awaitable[ResultT]]) -> ResultT:
        failed: list[dict[str, str]] = []
        last: ProviderError | None = None
        for provider in self.providers:
            try:
                result = await call(provider)
            except ProviderError as exc:
                _log.warning(
                    "provider_failed_falling_back",
                    provider=provider.name,
                    code=exc.code,
                    error=exc.message,
                )
                failed.append({"provider": provider.name, "code": exc.code, "error": exc.message})
                last = exc
                continue
            if failed:
                result = replace(result, metadata={**result.metadata, "fallback_from": failed})
            return result
        assert last is not None
        raise last

    async def aclose(self) -> None:
        for provider in self.providers:
            await provider.aclose()


class FallbackTextProvider(_Chain):
    async def complete(self, request: TextRequest) -> TextResult:
        return await self._first_that_serves(lambda provider: provider.complete(request))


class FallbackImageProvider(_Chain):
    async def generate(
        self, request: ImageRequest, progress: Progress | None = None
    ) -> ImageResult:
        return await self._first_that_serves(lambda p: p.generate(request, progress))

    async def transform(
        self, request: ImageEditRequest, progress: Progress | None = None
    ) -> ImageResult:
        return await self._first_that_serves(lambda p: p.transform(request, progress))
