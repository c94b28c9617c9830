"""ComfyUI image provider: fills a workflow graph (a shipped template or the operator's own
file), queues it, follows its progress over the WebSocket and fetches the saved images.

The nodes a request fills are found by walking the graph back from its SaveImage node, not by
fixed node ids, so any workflow exported with "Save (API)" that has the usual nodes works.
Several images are one ComfyUI batch (EmptyLatentImage `batch_size`, or RepeatLatentBatch for
image to image): one prompt, one seed, one progress stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import json
import re
import secrets
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import httpx
from PIL import Image, UnidentifiedImageError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from creativeflow.providers.base import (
    GeneratedImage,
    ImageEditRequest,
    ImageFormat,
    ImageRequest,
    ImageResult,
    Progress,
    Usage,
)
from creativeflow.providers.errors import (
    MalformedResponse,
    ProviderError,
    ProviderNotConfigured,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from creativeflow.providers.http import RetryPolicy, json_body, send
from creativeflow.providers.remote import decode_image, diffusion_prompt
from creativeflow.settings import Settings
from creativeflow.shared.core.logging import get_logger

PROVIDER = "comfyui"

Workflow = dict[str, dict[str, Any]]
WorkflowKind = Literal["txt2img", "img2img"]

SEED_RANGE = 2**32
# Cleanup after a timeout or a cancellation must not hold the caller up for long.
ABANDON_SECONDS = 5.0
POLL_FIRST_SECONDS = 0.1
POLL_MAX_SECONDS = 2.0
# Preview frames are whole images; websockets' default 1 MiB limit would drop the socket.
SOCKET_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# Out of memory or a lost device may pass; any other node failure is how this workflow and
# input behave, so trying the same prompt again fails the same way.
_TRANSIENT_FAILURE = re.compile(r"out ?of ?memory|cuda error|connection|timed? ?out", re.I)
_EXTENSIONS = {"jpeg": "jpg"}
# What a request fills, as (role, KSampler input leading to it, node class).
_PROMPT_ROLES = (
    ("positive", "positive", "CLIPTextEncode"),
    ("negative", "negative", "CLIPTextEncode"),
    ("checkpoint", "model", "CheckpointLoaderSimple"),
)
_ROLES: dict[WorkflowKind, tuple[tuple[str, str, str], ...]] = {
    "txt2img": (*_PROMPT_ROLES, ("latent", "latent_image", "EmptyLatentImage")),
    "img2img": (
        *_PROMPT_ROLES,
        ("source", "latent_image", "LoadImage"),
        ("batch", "latent_image", "RepeatLatentBatch"),
    ),
}

_log = get_logger("creativeflow.providers")


# -- workflows -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkflowTemplate:
    """A workflow and the ids of the nodes a request fills, by role ("sampler", "positive",
    "negative", "checkpoint", "save", and "latent" or "source" and "batch")."""

    graph: Workflow
    nodes: dict[str, str]
    # "shipped" or the path of the operator's file.
    source: str

    def instantiate(self) -> Workflow:
        return copy.deepcopy(self.graph)


def load_template(kind: WorkflowKind, path: Path | None = None) -> WorkflowTemplate:
    """The shipped template of `kind`, or the workflow file at `path`, checked to have every
    node a request fills."""
    if path is None:
        shipped = resources.files("creativeflow.providers").joinpath("workflows", f"{kind}.json")
        source, content = "shipped", shipped.read_text(encoding="utf-8")
    else:
        try:
            content = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise _not_configured(
                f"the ComfyUI workflow file {path} cannot be read: {exc}"
            ) from exc
        source = str(path)
    graph = parse_workflow(content, source)
    return WorkflowTemplate(graph=graph, nodes=locate_nodes(graph, kind, source), source=source)


def parse_workflow(content: str, source: str) -> Workflow:
    """A workflow in ComfyUI's API format: node id -> {"class_type", "inputs"}."""
    try:
        data = json.loads(content)
    except ValueError as exc:
        raise _not_configured(f"the ComfyUI workflow {source} is not JSON: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("nodes"), list):
        raise _not_configured(
            f"the ComfyUI workflow {source} is in the editor's format; export it with 'Save (API)'"
        )
    if not isinstance(data, dict) or not data or not all(map(_is_node, data.values())):
        raise _not_configured(
            f"the ComfyUI workflow {source} is not in ComfyUI's API format (an object of "
            "nodes, each with class_type and inputs)"
        )
    return {str(node_id): node for node_id, node in data.items()}


def _is_node(node: Any) -> bool:
    return (
        isinstance(node, dict)
        and isinstance(node.get("class_type"), str)
        and isinstance(node.get("inputs"), dict)
    )


def locate_nodes(graph: Workflow, kind: WorkflowKind, source: str) -> dict[str, str]:
    """Walk back from the SaveImage node to the nodes a request fills; a workflow lacking any
    of them is a `ProviderNotConfigured` naming what is missing."""
    saves = sorted(
        (i for i, node in graph.items() if node["class_type"] == "SaveImage"), key=_id_order
    )
    samplers = [(save, _upstream(graph, save, "images", "KSampler")) for save in saves]
    save, sampler = next(((s, k) for s, k in samplers if k is not None), (None, None))
    if save is None or sampler is None:
        what = "KSampler node feeding the SaveImage node" if saves else "SaveImage node"
        raise _missing(source, [what])
    found = {role: _upstream(graph, sampler, name, cls) for role, name, cls in _ROLES[kind]}
    missing = [
        f"{cls} node on the KSampler's {name} input"
        for role, name, cls in _ROLES[kind]
        if found[role] is None
    ]
    if missing:
        raise _missing(source, missing)
    if found["positive"] == found["negative"]:
        raise _missing(source, ["separate CLIPTextEncode nodes for positive and negative"])
    return {"sampler": sampler, "save": save} | {role: node for role, node in found.items() if node}


def _upstream(graph: Workflow, start: str, input_name: str, class_type: str) -> str | None:
    """The nearest node of `class_type` feeding `start`'s input `input_name`, through any
    nodes in between (a LoRA loader, a conditioning combine)."""
    link = graph[start]["inputs"].get(input_name)
    if not _is_link(link):
        return None
    queue, seen = deque([str(link[0])]), set()
    while queue:
        node_id = queue.popleft()
        if node_id in seen or node_id not in graph:
            continue
        seen.add(node_id)
        if graph[node_id]["class_type"] == class_type:
            return node_id
        inputs = graph[node_id]["inputs"].values()
        queue.extend(str(value[0]) for value in inputs if _is_link(value))
    return None


def _is_link(value: Any) -> bool:
    """An input wired to another node's output: [node id, output index]."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str | int)
        and isinstance(value[1], int)
    )


def _id_order(node_id: str) -> tuple[int, int, str]:
    return (0, int(node_id), "") if node_id.isdigit() else (1, 0, node_id)


def _missing(source: str, what: list[str]) -> ProviderNotConfigured:
    return _not_configured(
        f"the ComfyUI workflow {source} lacks: {'; '.join(what)} (the provider fills these nodes)"
    )


def _not_configured(message: str) -> ProviderNotConfigured:
    return ProviderNotConfigured(message, provider=PROVIDER)


def _multiple_of_8(value: int) -> int:
    """Latent sizes are multiples of 8 within EmptyLatentImage's range."""
    return min(16384, max(64, (value + 4) // 8 * 8))


# -- the provider --------------------------------------------------------------------------


@dataclass(slots=True)
class _Run:
    """One prompt: its filled workflow, and what cleanup needs to know if the caller gives
    up."""

    template: WorkflowTemplate
    graph: Workflow
    seed: int
    deadline: float
    prompt_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    client_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    submitted: bool = False
    running: bool = False
    finished: bool = False

    @property
    def nodes(self) -> dict[str, str]:
        return self.template.nodes

    def fill(self, role: str, **inputs: Any) -> None:
        self.graph[self.nodes[role]]["inputs"].update(inputs)

    def seconds_left(self) -> float:
        return max(0.001, self.deadline - asyncio.get_running_loop().time())


class ComfyUIImageProvider:
    """Image generation and image to image on a ComfyUI server."""

    def __init__(
        self,
        *,
        base_url: str,
        checkpoint: str,
        workflow_file: Path | None = None,
        client: httpx.AsyncClient | None = None,
        policy: RetryPolicy = RetryPolicy(),
    ) -> None:
        if not base_url:
            raise _not_configured("COMFYUI_URL is not set")
        self.name: str = PROVIDER
        self.model: str = checkpoint
        self._base_url = base_url.rstrip("/")
        self._policy = policy
        # Templates first: a bad workflow file fails here, before a client is opened.
        self._txt2img = load_template("txt2img", workflow_file)
        self._img2img = load_template("img2img")
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(30.0))

    @classmethod
    def from_settings(cls, settings: Settings) -> ComfyUIImageProvider:
        if not settings.comfyui_url:
            raise _not_configured(
                "COMFYUI_URL is not set: point it at the ComfyUI server (http://host:8188)"
            )
        return cls(
            base_url=settings.comfyui_url,
            checkpoint=settings.comfyui_checkpoint,
            workflow_file=settings.comfyui_workflow_file,
            policy=RetryPolicy(
                retries=settings.provider_max_retries,
                backoff_seconds=settings.provider_retry_backoff_seconds,
            ),
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def generate(
        self, request: ImageRequest, progress: Progress | None = None
    ) -> ImageResult:
        started = time.perf_counter()
        run = self._prepare(self._txt2img, request.seed, request.timeout)
        run.fill("positive", text=diffusion_prompt(request.prompt, request.style, request.palette))
        if request.negative_prompt.strip():
            run.fill("negative", text=request.negative_prompt.strip())
        width, height = _multiple_of_8(request.width), _multiple_of_8(request.height)
        run.fill("latent", width=width, height=height, batch_size=request.count)
        async with self._guarded(run, request.timeout):
            images = await self._execute(run, progress, request.format)
        return self._result(images, started, run)

    async def transform(
        self, request: ImageEditRequest, progress: Progress | None = None
    ) -> ImageResult:
        started = time.perf_counter()
        source_format = await asyncio.to_thread(_identify, request.source)
        run = self._prepare(self._img2img, request.seed, request.timeout)
        positive = diffusion_prompt(request.prompt, request.style, request.palette)
        if positive:  # a plain variation keeps the template's generic prompt
            run.fill("positive", text=positive)
        run.fill("sampler", denoise=min(1.0, max(0.0, request.strength)))
        run.fill("batch", amount=request.count)
        async with self._guarded(run, request.timeout):
            uploaded = await self._upload(request.source, source_format, run)
            run.fill("source", image=uploaded)
            images = await self._execute(run, progress, request.format)
        result = self._result(images, started, run)
        result.metadata.update(uploaded=uploaded, operation=request.operation)
        return result

    # -- one prompt, start to finish ----------------------------------------------------------

    def _prepare(self, template: WorkflowTemplate, seed: int | None, seconds: float) -> _Run:
        run = _Run(
            template=template,
            graph=template.instantiate(),
            seed=seed if seed is not None else secrets.randbelow(SEED_RANGE),
            deadline=asyncio.get_running_loop().time() + seconds,
        )
        run.fill("sampler", seed=run.seed)
        run.fill("checkpoint", ckpt_name=self.model)
        run.fill("save", filename_prefix=f"creativeflow/{run.prompt_id}")
        return run

    @contextlib.asynccontextmanager
    async def _guarded(self, run: _Run, seconds: float) -> AsyncIterator[None]:
        """The call's time limit; a prompt left behind by a timeout or a cancellation is
        taken out of ComfyUI's queue (and stopped) so it does not burn the GPU for nobody."""
        try:
            async with asyncio.timeout(seconds):
                yield
        except (TimeoutError, ProviderTimeout) as exc:
            await self._abandon(run)
            raise ProviderTimeout(
                f"ComfyUI did not finish within {seconds:g} s", provider=PROVIDER
            ) from exc
        except asyncio.CancelledError:
            await self._abandon(run)
            raise

    async def _execute(
        self, run: _Run, progress: Progress | None, image_format: ImageFormat
    ) -> list[GeneratedImage]:
        # The socket opens before the prompt is queued, so no message about it is missed.
        socket = await self._open_socket(run)
        try:
            await self._submit(run)
            followed = socket is not None and await self._follow(socket, run, progress)
        finally:
            if socket is not None:
                await socket.close()
        if not followed:
            _log.info("comfyui_polling_history", prompt_id=run.prompt_id)
        entry = await self._wait_for_history(run)
        references = _output_images(entry, run.nodes["save"])
        blobs = await asyncio.gather(*(self._fetch(ref, run) for ref in references))
        return await asyncio.to_thread(
            lambda: [decode_image(b, image_format, provider=PROVIDER, seed=run.seed) for b in blobs]
        )

    async def _open_socket(self, run: _Run) -> ClientConnection | None:
        """The progress socket, or None (then the history is polled) when it cannot open."""
        base = httpx.URL(self._base_url)
        url = base.copy_with(
            scheme="wss" if base.scheme == "https" else "ws",
            path=base.path.rstrip("/") + "/ws",
            params={"clientId": run.client_id},
        )
        try:
            return await connect(
                str(url),
                open_timeout=min(10.0, run.seconds_left()),
                close_timeout=2.0,
                max_size=SOCKET_MAX_MESSAGE_BYTES,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            _log.warning("comfyui_socket_unavailable", host=base.host, reason=str(exc))
            return None

    async def _submit(self, run: _Run) -> None:
        """POST /prompt, once: queueing is not idempotent, so a retry could run the prompt
        twice (the job's own retries cover a failure here). The prompt id is chosen here so a
        cancellation during the call can still delete it; older servers choose their own."""
        body = {"prompt": run.graph, "client_id": run.client_id, "prompt_id": run.prompt_id}
        run.submitted = True
        try:
            response = await self._client.post(
                self._url("/prompt"), json=body, timeout=run.seconds_left()
            )
        except httpx.TimeoutException as exc:
            raise ProviderTimeout("ComfyUI did not accept the prompt", provider=PROVIDER) from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"ComfyUI is unreachable: {exc}", provider=PROVIDER) from exc
        if not response.is_success:
            raise _prompt_refused(response)
        data = json_body(response, PROVIDER)
        prompt_id = data.get("prompt_id") if isinstance(data, dict) else None
        if not isinstance(prompt_id, str) or not prompt_id:
            raise MalformedResponse("ComfyUI queued the prompt without an id", provider=PROVIDER)
        run.prompt_id = prompt_id
        _log.info("comfyui_prompt_queued", prompt_id=prompt_id, number=data.get("number"))

    async def _follow(self, socket: ClientConnection, run: _Run, progress: Progress | None) -> bool:
        """Read the socket until the prompt finishes (True) or the socket closes (False)."""
        while True:
            try:
                message = await socket.recv()
            except ConnectionClosed:
                return False
            if isinstance(message, bytes):
                continue  # preview frames
            kind, data = _parse_event(message)
            # Only our prompts run with our client id; messages without an id are ours too.
            if data.get("prompt_id", run.prompt_id) != run.prompt_id:
                continue
            if kind in {"execution_start", "execution_cached", "executing", "progress"}:
                run.running = True
            if kind == "progress" and progress is not None:
                value, maximum = data.get("value"), data.get("max")
                on_sampler = data.get("node", run.nodes["sampler"]) == run.nodes["sampler"]
                if on_sampler and isinstance(value, int) and isinstance(maximum, int) and maximum:
                    await progress(min(1.0, value / maximum), f"sampling step {value}/{maximum}")
            elif kind == "execution_success" or (kind == "executing" and data.get("node") is None):
                run.running, run.finished = False, True
                return True
            elif kind == "execution_error":
                run.running, run.finished = False, True
                raise _execution_failure(data)
            elif kind == "execution_interrupted":
                run.running, run.finished = False, True
                raise _interrupted()

    async def _wait_for_history(self, run: _Run) -> dict[str, Any]:
        """The prompt's history entry, polled until it is there (ComfyUI writes it when the
        prompt is done); the call's time limit bounds the wait."""
        delay = POLL_FIRST_SECONDS
        while True:
            response = await self._call("GET", f"/history/{run.prompt_id}", run)
            data = json_body(response, PROVIDER)
            if not isinstance(data, dict):
                raise MalformedResponse("ComfyUI's history is not an object", provider=PROVIDER)
            entry = data.get(run.prompt_id)
            if isinstance(entry, dict):
                run.running, run.finished = False, True
                _raise_for_status(entry)
                return entry
            await asyncio.sleep(delay)
            delay = min(delay * 2, POLL_MAX_SECONDS)

    async def _fetch(self, reference: dict[str, Any], run: _Run) -> bytes:
        params = {
            "filename": reference["filename"],
            "subfolder": str(reference.get("subfolder") or ""),
            "type": str(reference.get("type") or "output"),
        }
        response = await self._call("GET", "/view", run, params=params)
        return response.content

    async def _upload(self, source: bytes, source_format: str, run: _Run) -> str:
        """Upload the source image; returns the name LoadImage takes."""
        filename = f"creativeflow_{run.prompt_id}.{_EXTENSIONS.get(source_format, source_format)}"
        # Retrying is safe: the same name is overwritten.
        files = {"image": (filename, source, f"image/{source_format}")}
        form = {"overwrite": "true", "type": "input"}
        response = await self._call("POST", "/upload/image", run, files=files, data=form)
        data = json_body(response, PROVIDER)
        name = data.get("name") if isinstance(data, dict) else None
        if not isinstance(name, str) or not name:
            raise MalformedResponse("ComfyUI stored the upload without a name", provider=PROVIDER)
        subfolder = data.get("subfolder") or ""
        return f"{subfolder}/{name}" if subfolder else name

    async def _abandon(self, run: _Run) -> None:
        """Best effort: delete the prompt from the queue and, when it is the one running,
        interrupt it. Older servers interrupt whatever runs, hence the check first."""
        if not run.submitted or run.finished:
            return
        try:
            async with asyncio.timeout(ABANDON_SECONDS):
                await self._client.post(self._url("/queue"), json={"delete": [run.prompt_id]})
                running = await self._is_running(run.prompt_id)
                if running or (running is None and run.running):
                    await self._client.post(
                        self._url("/interrupt"), json={"prompt_id": run.prompt_id}
                    )
        except (httpx.HTTPError, TimeoutError) as exc:
            _log.warning("comfyui_abandon_failed", prompt_id=run.prompt_id, reason=str(exc))
        else:
            _log.info("comfyui_prompt_abandoned", prompt_id=run.prompt_id)

    async def _is_running(self, prompt_id: str) -> bool | None:
        """Whether ComfyUI runs `prompt_id` now; None when it cannot tell."""
        try:
            response = await self._client.get(self._url("/queue"))
            response.raise_for_status()
            running = response.json().get("queue_running", [])
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
        return any(
            isinstance(item, list) and len(item) > 1 and item[1] == prompt_id for item in running
        )

    def _url(self, path: str) -> str:
        return f"{self._base_url}{path}"

    async def _call(self, method: str, path: str, run: _Run, **kwargs: Any) -> httpx.Response:
        return await send(
            self._client,
            method,
            self._url(path),
            provider=PROVIDER,
            seconds=run.seconds_left(),
            policy=self._policy,
            **kwargs,
        )

    def _result(self, images: list[GeneratedImage], started: float, run: _Run) -> ImageResult:
        metadata = {"prompt_id": run.prompt_id, "seed": run.seed}
        metadata |= {"workflow": run.template.source, "nodes": dict(run.nodes)}
        return ImageResult(
            images=images,
            provider=PROVIDER,
            model=self.model,
            usage=Usage(images=len(images)),
            duration_ms=(time.perf_counter() - started) * 1000,
            metadata=metadata,
        )


# -- messages and images -------------------------------------------------------------------


def _parse_event(message: str) -> tuple[str, dict[str, Any]]:
    try:
        event = json.loads(message)
    except ValueError:
        return "", {}
    if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
        return "", {}
    return str(event.get("type", "")), event["data"]


def _prompt_refused(response: httpx.Response) -> ProviderError:
    """POST /prompt's refusal, with the node errors ComfyUI lists (which node, which input)."""
    status = response.status_code
    try:
        detail = _node_errors_text(response.json())
    except ValueError:
        detail = ""
    detail = detail or response.text[:200] or response.reason_phrase
    if status == 429 or status >= 500:
        return ProviderUnavailable(
            f"ComfyUI answered {status}: {detail}", provider=PROVIDER, status=status
        )
    return ProviderRejected(
        f"ComfyUI refused the workflow ({status}): {detail}", provider=PROVIDER, status=status
    )


def _node_errors_text(body: Any) -> str:
    """`{"error": {...}, "node_errors": {id: {"class_type", "errors": [...]}}}` as one line."""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    parts = [_message_of(error) if isinstance(error, dict) else str(error or "")]
    node_errors = body.get("node_errors")
    for node_id, info in sorted(node_errors.items() if isinstance(node_errors, dict) else ()):
        for item in info.get("errors", []) if isinstance(info, dict) else ():
            if isinstance(item, dict):
                parts.append(f"node {node_id} ({info.get('class_type')}): {_message_of(item)}")
    return "; ".join(part for part in parts if part)[:600]


def _message_of(error: dict[str, Any]) -> str:
    details = error.get("details")
    return f"{error.get('message', '')}{': ' + str(details) if details else ''}"


def _execution_failure(data: dict[str, Any]) -> ProviderError:
    message = str(data.get("exception_message") or "unknown error").strip()
    text = f"ComfyUI failed in {data.get('node_type') or 'a node'} (node {data.get('node_id')}): "
    text += message
    if _TRANSIENT_FAILURE.search(f"{data.get('exception_type', '')} {message}"):
        return ProviderUnavailable(text, provider=PROVIDER)
    return ProviderRejected(text, provider=PROVIDER)


def _interrupted() -> ProviderUnavailable:
    return ProviderUnavailable(
        "ComfyUI interrupted the prompt (cancelled there, or the server is stopping)",
        provider=PROVIDER,
    )


def _raise_for_status(entry: dict[str, Any]) -> None:
    """A finished history entry that reports an error raises what the socket would have."""
    status = entry.get("status")
    if not isinstance(status, dict) or status.get("status_str") != "error":
        return
    for item in status.get("messages") or []:
        if isinstance(item, list) and len(item) == 2 and isinstance(item[1], dict):
            if item[0] == "execution_error":
                raise _execution_failure(item[1])
            if item[0] == "execution_interrupted":
                raise _interrupted()
    raise ProviderUnavailable("ComfyUI reports the prompt failed", provider=PROVIDER)


def _output_images(entry: dict[str, Any], save_node: str) -> list[dict[str, Any]]:
    """The images our SaveImage node wrote (previews of other nodes are not results)."""
    outputs = entry.get("outputs")
    ours = outputs.get(save_node) if isinstance(outputs, dict) else None
    images = [
        image
        for image in (ours.get("images") or [] if isinstance(ours, dict) else [])
        if isinstance(image, dict) and isinstance(image.get("filename"), str)
    ]
    if not images:
        raise MalformedResponse("ComfyUI finished without saving an image", provider=PROVIDER)
    return images


def _identify(source: bytes) -> str:
    """The source image's format; bytes Pillow cannot read are refused before any upload."""
    try:
        with Image.open(io.BytesIO(source)) as image:
            image_format = (image.format or "").lower()
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ProviderRejected("the source is not an image", provider=PROVIDER) from exc
    return image_format or "png"
