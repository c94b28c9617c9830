"""The ComfyUI provider against a fake ComfyUI speaking its HTTP and WebSocket protocol: a
Starlette app served by uvicorn on 127.0.0.1 in a background thread. The fake records what
it receives and replays the message sequence ComfyUI sends while it runs a prompt."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from creativeflow.providers.base import ImageEditRequest, ImageProvider, ImageRequest
from creativeflow.providers.comfyui import ComfyUIImageProvider
from creativeflow.providers.errors import (
    ProviderNotConfigured,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from creativeflow.providers.http import RetryPolicy
from creativeflow.settings import Settings

FAST = RetryPolicy(retries=1, backoff_seconds=0.01)
CHECKPOINT = "sd15.safetensors"
# POST /prompt's answer to a workflow naming a checkpoint the server does not have.
REFUSAL = json.loads("""{
  "error": {"type": "prompt_outputs_failed_validation",
    "message": "Prompt outputs failed validation", "details": "", "extra_info": {}},
  "node_errors": {"4": {"class_type": "CheckpointLoaderSimple", "dependent_outputs": ["9"],
    "errors": [{"type": "value_not_in_list", "message": "Value not in list",
      "details": "ckpt_name: 'sd15.safetensors' not in []", "extra_info": {}}]}}
}""")


def png(width: int, height: int, colour: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def node_of(workflow: dict[str, Any], class_type: str) -> tuple[str, dict[str, Any]]:
    """The fake's own lookup (the provider must not rely on ids, the fake may)."""
    return next((i, n["inputs"]) for i, n in workflow.items() if n["class_type"] == class_type)


class FakeComfyUI:
    """Enough of ComfyUI's server for the provider: /prompt, /ws, /history, /view,
    /upload/image, /queue and /interrupt. `scenario` picks how a prompt runs: "success",
    "error" (execution_error at step 2), "drop" (socket closed after step 1, the prompt still
    finishes), "hang" (stays at step 1 until interrupted) or "pending" (never starts)."""

    def __init__(self) -> None:
        self.url = ""
        self.reset()

    def reset(self) -> None:
        self.scenario = "success"
        self.steps = 4
        self.reject = False
        self.refuse_socket = False
        self.choose_own_ids = False
        self.error = {"exception_message": "boom", "exception_type": "RuntimeError"}
        self.prompts: list[dict[str, Any]] = []
        self.socket_clients: list[str] = []
        self.history_requests: list[str] = []
        self.view_requests: list[dict[str, str]] = []
        self.uploads: list[dict[str, Any]] = []
        self.queue_posts: list[dict[str, Any]] = []
        self.interrupts: list[dict[str, Any]] = []
        self.sockets: dict[str, WebSocket] = {}
        self.history: dict[str, dict[str, Any]] = {}
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.running: dict[str, int] = {}
        self.pending: dict[str, int] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        # Set when a prompt is waiting in the queue (the test thread waits on it).
        self.queued = threading.Event()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/prompt", self.post_prompt, methods=["POST"]),
                WebSocketRoute("/ws", self.websocket),
                Route("/history/{prompt_id}", self.get_history),
                Route("/view", self.view),
                Route("/upload/image", self.upload, methods=["POST"]),
                Route("/queue", self.get_queue, methods=["GET"]),
                Route("/queue", self.post_queue, methods=["POST"]),
                Route("/interrupt", self.interrupt, methods=["POST"]),
            ]
        )

    async def post_prompt(self, request: Request) -> Response:
        body = await request.json()
        self.prompts.append(body)
        if self.reject:
            return JSONResponse(REFUSAL, status_code=400)
        own = self.choose_own_ids or "prompt_id" not in body
        prompt_id = str(uuid.uuid4()) if own else body["prompt_id"]
        number = len(self.prompts)
        task = asyncio.get_running_loop().create_task(self.play(prompt_id, number, body))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return JSONResponse({"prompt_id": prompt_id, "number": number, "node_errors": {}})

    async def websocket(self, websocket: WebSocket) -> None:
        client_id = websocket.query_params["clientId"]
        if self.refuse_socket:
            await websocket.close(code=1008)
            return
        await websocket.accept()
        self.socket_clients.append(client_id)
        self.sockets[client_id] = websocket
        status = {"status": {"exec_info": {"queue_remaining": 0}}, "sid": client_id}
        await websocket.send_json({"type": "status", "data": status})
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
        self.sockets.pop(client_id, None)

    async def play(self, prompt_id: str, number: int, body: dict[str, Any]) -> None:
        """The messages ComfyUI sends while it runs one prompt, in its order; `log` is what
        it keeps in the history's status."""
        workflow, client_id = body["prompt"], body.get("client_id", "")
        stamp = {"prompt_id": prompt_id, "timestamp": int(time.time() * 1000)}
        log: list[list[Any]] = []

        async def emit(kind: str, data: dict[str, Any], keep: bool = False) -> None:
            if keep:
                log.append([kind, data])
            if (ws := self.sockets.get(client_id)) is not None:
                await ws.send_text(json.dumps({"type": kind, "data": data}))

        if self.scenario == "pending":
            self.pending[prompt_id] = number
            self.queued.set()
            return
        self.running[prompt_id] = number
        await emit("status", {"status": {"exec_info": {"queue_remaining": 1}}})
        await emit("execution_start", stamp, keep=True)
        await emit("execution_cached", {"nodes": [], **stamp}, keep=True)
        sampler, _ = node_of(workflow, "KSampler")
        for node_id in [*workflow][: [*workflow].index(sampler) + 1]:
            await emit("executing", {"node": node_id, "display_node": node_id, **stamp})
        for step in range(1, self.steps + 1):
            await emit("progress", {"value": step, "max": self.steps, "node": sampler, **stamp})
            ws = self.sockets.get(client_id)
            if step == 1 and ws is not None:  # a preview frame: event 1, PNG (2), the image
                await ws.send_bytes(struct.pack(">II", 1, 2) + png(8, 8))
            if step == 1 and self.scenario == "hang":
                return
            if step == 1 and self.scenario == "drop" and ws is not None:
                self.sockets.pop(client_id)
                await ws.close()
            if step == 2 and self.scenario == "error":
                error = {"node_id": sampler, "node_type": "KSampler", "executed": [], **stamp}
                await emit("execution_error", error | self.error | {"traceback": []}, keep=True)
                self.finish(prompt_id, body, {}, "error", log)
                return
        save, save_inputs = node_of(workflow, "SaveImage")
        images = self.render(workflow, save_inputs["filename_prefix"])
        await emit("executing", {"node": save, "display_node": save, **stamp})
        await emit("executed", {"node": save, "output": {"images": images}, **stamp})
        await emit("execution_success", stamp, keep=True)
        await asyncio.sleep(0.05)  # ComfyUI writes the history after execution_success
        self.finish(prompt_id, body, {save: {"images": images}}, "success", log)
        await emit("executing", {"node": None, "prompt_id": prompt_id})

    def finish(
        self, prompt_id: str, body: dict[str, Any], outputs: Any, status: str, log: list[Any]
    ) -> None:
        number = self.running.pop(prompt_id, 0)
        completed = status == "success"
        self.history[prompt_id] = {
            "prompt": [number, prompt_id, body["prompt"], {"client_id": body["client_id"]}, []],
            "outputs": outputs,
            "status": {"status_str": status, "completed": completed, "messages": log},
            "meta": {},
        }

    def render(self, workflow: dict[str, Any], prefix: str) -> list[dict[str, str]]:
        """Real PNGs of the size the workflow asks for (the latent, or the uploaded source)."""
        if any(n["class_type"] == "EmptyLatentImage" for n in workflow.values()):
            _, latent = node_of(workflow, "EmptyLatentImage")
            size, count = (latent["width"], latent["height"]), latent["batch_size"]
        else:
            _, load = node_of(workflow, "LoadImage")
            _, batch = node_of(workflow, "RepeatLatentBatch")
            with Image.open(io.BytesIO(self.files[(load["image"], "", "input")])) as source:
                size, count = source.size, batch["amount"]
        subfolder, _, base = prefix.rpartition("/")
        images = []
        for index in range(count):
            filename = f"{base}_{index + 1:05}_.png"
            self.files[(filename, subfolder, "output")] = png(*size, colour=(index * 40, 90, 90))
            images.append({"filename": filename, "subfolder": subfolder, "type": "output"})
        return images

    async def get_history(self, request: Request) -> Response:
        prompt_id = request.path_params["prompt_id"]
        self.history_requests.append(prompt_id)
        entry = self.history.get(prompt_id)
        return JSONResponse({prompt_id: entry} if entry else {})

    async def view(self, request: Request) -> Response:
        params = dict(request.query_params)
        self.view_requests.append(params)
        key = (params.get("filename", ""), params.get("subfolder", ""), params.get("type", ""))
        if key not in self.files:
            return Response(status_code=404)
        return Response(self.files[key], media_type="image/png")

    async def upload(self, request: Request) -> Response:
        form = await request.form()
        image = form["image"]
        assert not isinstance(image, str)
        data = await image.read()
        name = image.filename or "upload.png"
        self.uploads.append(
            {
                "name": name,
                "data": data,
                "overwrite": form.get("overwrite"),
                "type": form.get("type"),
            }
        )
        self.files[(name, "", "input")] = data
        return JSONResponse({"name": name, "subfolder": "", "type": "input"})

    async def get_queue(self, request: Request) -> Response:
        def items(queue: dict[str, int]) -> list[list[Any]]:
            return [[number, prompt_id, {}, {}, []] for prompt_id, number in queue.items()]

        return JSONResponse(
            {"queue_running": items(self.running), "queue_pending": items(self.pending)}
        )

    async def post_queue(self, request: Request) -> Response:
        body = await request.json()
        self.queue_posts.append(body)
        for prompt_id in body.get("delete", []):
            self.pending.pop(prompt_id, None)
        return Response(status_code=200)

    async def interrupt(self, request: Request) -> Response:
        body = await request.json() if await request.body() else {}
        self.interrupts.append(body)
        prompt_id = body.get("prompt_id")
        if prompt_id in self.running:
            interrupted = ["execution_interrupted", {"prompt_id": prompt_id}]
            self.finish(prompt_id, self.prompts[-1], {}, "error", [interrupted])
        return Response(status_code=200)


@pytest.fixture(scope="module")
def comfy_server() -> Iterator[FakeComfyUI]:
    fake = FakeComfyUI()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(fake.app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake ComfyUI did not start")
        time.sleep(0.01)
    fake.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    yield fake
    server.should_exit = True
    thread.join(timeout=10)
    listener.close()


@pytest.fixture
def comfy(comfy_server: FakeComfyUI) -> FakeComfyUI:
    comfy_server.reset()
    return comfy_server


@pytest.fixture
async def provider(comfy: FakeComfyUI) -> AsyncIterator[ComfyUIImageProvider]:
    provider = ComfyUIImageProvider(base_url=comfy.url, checkpoint=CHECKPOINT, policy=FAST)
    yield provider
    await provider.aclose()


def write_workflow(tmp_path: Path, workflow: dict[str, Any]) -> Path:
    path = tmp_path / "workflow.json"
    path.write_text(json.dumps(workflow))
    return path


# A workflow as an operator might export it ("Save (API)"): other ids, a LoRA between the
# checkpoint and the sampler, and a preview node besides the SaveImage.
CUSTOM_WORKFLOW: dict[str, Any] = json.loads("""{
  "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x.safetensors"}},
  "lora": {"class_type": "LoraLoader", "inputs": {"lora_name": "ink.safetensors",
    "strength_model": 0.8, "strength_clip": 0.8, "model": ["ckpt", 0], "clip": ["ckpt", 1]}},
  "neg": {"class_type": "CLIPTextEncode", "inputs": {"text": "ugly", "clip": ["lora", 1]}},
  "pos": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["lora", 1]}},
  "size": {"class_type": "EmptyLatentImage",
    "inputs": {"width": 512, "height": 512, "batch_size": 1}},
  "sample": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 12, "cfg": 6.5,
    "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0, "model": ["lora", 0],
    "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["size", 0]}},
  "decode": {"class_type": "VAEDecode", "inputs": {"samples": ["sample", 0], "vae": ["ckpt", 2]}},
  "preview": {"class_type": "PreviewImage", "inputs": {"images": ["decode", 0]}},
  "out": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["decode", 0]}}
}""")


def without(*node_ids: str) -> dict[str, Any]:
    return {k: v for k, v in CUSTOM_WORKFLOW.items() if k not in node_ids}


class Recorder:
    """A progress callback that keeps what it was told."""

    def __init__(self) -> None:
        self.reports: list[tuple[float, str]] = []
        self.called = asyncio.Event()

    async def __call__(self, fraction: float, message: str) -> None:
        self.reports.append((fraction, message))
        self.called.set()


async def test_generate_fills_the_shipped_workflow_and_returns_the_saved_images(
    comfy: FakeComfyUI, provider: ComfyUIImageProvider
) -> None:
    assert isinstance(provider, ImageProvider)
    request = ImageRequest(prompt="a lighthouse at dusk", negative_prompt="blurry, people")
    request = replace(request, width=500, height=300, count=2, seed=1234, style="watercolor")

    result = await provider.generate(replace(request, palette=("#000080", "#ff7f50")))

    [body] = comfy.prompts
    workflow = body["prompt"]
    assert comfy.socket_clients == [body["client_id"]]  # socket opened before the prompt
    assert workflow["3"]["inputs"]["seed"] == 1234
    assert workflow["6"]["inputs"]["text"] == (
        "a lighthouse at dusk, watercolor style, color palette of navy, coral"
    )
    assert workflow["7"]["inputs"]["text"] == "blurry, people"
    assert workflow["5"]["inputs"] == {"width": 504, "height": 304, "batch_size": 2}
    assert workflow["4"]["inputs"]["ckpt_name"] == CHECKPOINT
    prompt_id = result.metadata["prompt_id"]
    assert workflow["9"]["inputs"]["filename_prefix"] == f"creativeflow/{prompt_id}"

    assert comfy.history_requests and set(comfy.history_requests) == {prompt_id}
    names = [f"{prompt_id}_{n:05}_.png" for n in (1, 2)]
    where = {"subfolder": "creativeflow", "type": "output"}
    assert comfy.view_requests == [{"filename": name, **where} for name in names]
    assert [(i.format, i.width, i.height, i.seed) for i in result.images] == [
        ("png", 504, 304, 1234)
    ] * 2
    assert result.images[1].data == comfy.files[(names[1], "creativeflow", "output")]
    assert (result.provider, result.model, result.usage.images) == ("comfyui", CHECKPOINT, 2)
    assert result.metadata["workflow"] == "shipped"
    nodes = {"sampler": "3", "save": "9", "positive": "6", "negative": "7", "checkpoint": "4"}
    assert result.metadata["nodes"] == nodes | {"latent": "5"}
    assert comfy.queue_posts == [] and comfy.interrupts == []


async def test_progress_follows_the_sampling_steps_in_order(
    comfy: FakeComfyUI, provider: ComfyUIImageProvider
) -> None:
    progress = Recorder()

    await provider.generate(ImageRequest(prompt="fog", width=64, height=64), progress)

    assert progress.reports == [
        (0.25, "sampling step 1/4"),
        (0.5, "sampling step 2/4"),
        (0.75, "sampling step 3/4"),
        (1.0, "sampling step 4/4"),
    ]


async def test_a_missing_seed_is_drawn_and_reported(
    comfy: FakeComfyUI, provider: ComfyUIImageProvider
) -> None:
    result = await provider.generate(ImageRequest(prompt="dunes", width=64, height=64))

    seed = comfy.prompts[0]["prompt"]["3"]["inputs"]["seed"]
    assert isinstance(seed, int) and 0 <= seed < 2**32
    assert result.metadata["seed"] == seed and result.images[0].seed == seed


async def test_images_are_converted_to_the_requested_format(
    comfy: FakeComfyUI, provider: ComfyUIImageProvider
) -> None:
    result = await provider.generate(ImageRequest(prompt="x", width=96, height=64, format="jpeg"))

    [image] = result.images
    assert (image.format, image.width, image.height) == ("jpeg", 96, 64)
    with Image.open(io.BytesIO(image.data)) as decoded:
        assert decoded.format == "JPEG"


async def test_a_custom_workflow_file_is_filled_by_walking_its_graph(
    comfy: FakeComfyUI, tmp_path: Path
) -> None:
    path = write_workflow(tmp_path, CUSTOM_WORKFLOW)
    provider = ComfyUIImageProvider(
        base_url=comfy.url, checkpoint=CHECKPOINT, workflow_file=path, policy=FAST
    )
    try:
        result = await provider.generate(
            ImageRequest(prompt="a fox", negative_prompt="text", width=256, height=128, seed=9)
        )
    finally:
        await provider.aclose()

    workflow = comfy.prompts[0]["prompt"]
    assert workflow["sample"]["inputs"]["seed"] == 9
    assert workflow["pos"]["inputs"]["text"] == "a fox"
    assert workflow["neg"]["inputs"]["text"] == "text"
    assert workflow["size"]["inputs"] == {"width": 256, "height": 128, "batch_size": 1}
    assert workflow["ckpt"]["inputs"]["ckpt_name"] == CHECKPOINT
    assert workflow["lora"]["inputs"] == CUSTOM_WORKFLOW["lora"]["inputs"]
    assert workflow["out"]["inputs"]["filename_prefix"].startswith("creativeflow/")
    assert result.metadata["workflow"] == str(path)
    assert result.metadata["nodes"]["sampler"] == "sample"
    assert (result.images[0].width, result.images[0].height) == (256, 128)


@pytest.mark.parametrize(
    ("workflow", "named"),
    [
        (without("sample"), "lacks: KSampler node feeding the SaveImage node"),
        (without("out", "preview"), "lacks: SaveImage node"),
        (without("size"), "lacks: EmptyLatentImage node on the KSampler's latent_image input"),
        ({"nodes": [], "links": []}, "Save (API)"),
    ],
    ids=["no-ksampler", "no-save-image", "no-latent", "editor-format"],
)
def test_a_workflow_without_the_nodes_it_needs_is_not_configured(
    tmp_path: Path, workflow: dict[str, Any], named: str
) -> None:
    path = write_workflow(tmp_path, workflow)

    with pytest.raises(ProviderNotConfigured) as caught:
        ComfyUIImageProvider(base_url="http://127.0.0.1:9", checkpoint="x", workflow_file=path)

    assert named in caught.value.message and str(path) in caught.value.message


def test_from_settings_needs_the_url_and_uses_the_workflow_file(tmp_path: Path) -> None:
    with pytest.raises(ProviderNotConfigured, match="COMFYUI_URL"):
        ComfyUIImageProvider.from_settings(Settings(_env_file=None, comfyui_url=None))

    path = write_workflow(tmp_path, CUSTOM_WORKFLOW)
    settings = Settings(
        _env_file=None,
        comfyui_url="http://comfy.local:8188/",
        comfyui_workflow_file=path,
        comfyui_checkpoint="dream.safetensors",
    )
    provider = ComfyUIImageProvider.from_settings(settings)
    assert (provider.name, provider.model) == ("comfyui", "dream.safetensors")


@pytest.mark.parametrize(
    ("message", "exception_type", "raised"),
    [
        ("mat1 and mat2 shapes cannot be multiplied", "RuntimeError", ProviderRejected),
        ("Allocation on device: out of memory", "torch.OutOfMemoryError", ProviderUnavailable),
    ],
    ids=["node-failure", "out-of-memory"],
)
async def test_an_execution_error_carries_comfyuis_message(
    comfy: FakeComfyUI,
    provider: ComfyUIImageProvider,
    message: str,
    exception_type: str,
    raised: type[Exception],
) -> None:
    comfy.scenario = "error"
    comfy.error = {"exception_message": message, "exception_type": exception_type}

    with pytest.raises(raised) as caught:
        await provider.generate(ImageRequest(prompt="x", width=64, height=64))

    assert str(caught.value) == f"ComfyUI failed in KSampler (node 3): {message}"
    assert comfy.view_requests == [] and comfy.interrupts == []


async def test_a_workflow_comfyui_refuses_is_rejected_with_its_node_errors(
    comfy: FakeComfyUI, provider: ComfyUIImageProvider
) -> None:
    comfy.reject = True

    with pytest.raises(ProviderRejected) as caught:
        await provider.generate(ImageRequest(prompt="x"))

    assert caught.value.status == 400
    assert "Prompt outputs failed validation" in caught.value.message
    assert f"node 4 (CheckpointLoaderSimple): Value not in list: ckpt_name: '{CHECKPOINT}'" in (
        caught.value.message
    )
    assert len(comfy.prompts) == 1  # a refused workflow is not sent again


async def test_a_socket_closed_before_the_end_falls_back_to_polling_the_history(
    comfy: FakeComfyUI, provider: ComfyUIImageProvider
) -> None:
    comfy.scenario = "drop"
    progress = Recorder()

    result = await provider.generate(
        ImageRequest(prompt="x", width=64, height=64, count=3), progress
    )

    assert progress.reports == [(0.25, "sampling step 1/4")]
    assert len(result.images) == 3
    assert len(comfy.history_requests) >= 2  # polled until the history had the prompt


async def test_without_a_socket_the_history_is_polled(
    comfy: FakeComfyUI, provider: ComfyUIImageProvider
) -> None:
    comfy.refuse_socket = True

    result = await provider.generate(ImageRequest(prompt="x", width=64, height=64))

    assert comfy.socket_clients == [] and len(result.images) == 1


async def test_a_server_that_chooses_its_own_prompt_id_is_followed(
    comfy: FakeComfyUI, provider: ComfyUIImageProvider
) -> None:
    comfy.choose_own_ids = True

    result = await provider.generate(ImageRequest(prompt="x", width=64, height=64))

    assert result.metadata["prompt_id"] != comfy.prompts[0]["prompt_id"]
    assert set(comfy.history_requests) == {result.metadata["prompt_id"]}


async def test_a_timeout_deletes_and_interrupts_the_running_prompt(
    comfy: FakeComfyUI, provider: ComfyUIImageProvider
) -> None:
    comfy.scenario = "hang"

    with pytest.raises(ProviderTimeout, match="within 1 s"):
        await provider.generate(ImageRequest(prompt="x", width=64, height=64, timeout=1.0))

    prompt_id = comfy.prompts[0]["prompt_id"]
    assert comfy.queue_posts == [{"delete": [prompt_id]}]
    assert comfy.interrupts == [{"prompt_id": prompt_id}]


async def test_cancelling_the_task_interrupts_the_running_prompt(
    comfy: FakeComfyUI, provider: ComfyUIImageProvider
) -> None:
    comfy.scenario = "hang"
    progress = Recorder()

    task = asyncio.create_task(
        provider.generate(ImageRequest(prompt="x", width=64, height=64), progress)
    )
    await asyncio.wait_for(progress.called.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    prompt_id = comfy.prompts[0]["prompt_id"]
    assert comfy.queue_posts == [{"delete": [prompt_id]}]
    assert comfy.interrupts == [{"prompt_id": prompt_id}]


async def test_cancelling_a_queued_prompt_deletes_it_without_interrupting_others(
    comfy: FakeComfyUI, provider: ComfyUIImageProvider
) -> None:
    comfy.scenario = "pending"
    task = asyncio.create_task(provider.generate(ImageRequest(prompt="x", width=64, height=64)))
    assert await asyncio.to_thread(comfy.queued.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert comfy.queue_posts == [{"delete": [comfy.prompts[0]["prompt_id"]]}]
    assert comfy.pending == {} and comfy.interrupts == []


async def test_an_unreachable_server_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = ComfyUIImageProvider(
        base_url=f"http://127.0.0.1:{port}", checkpoint="x", policy=FAST
    )
    try:
        with pytest.raises(ProviderUnavailable, match="unreachable"):
            await provider.generate(ImageRequest(prompt="x", timeout=5))
    finally:
        await provider.aclose()


async def test_transform_uploads_the_source_then_fills_load_image_and_denoise(
    comfy: FakeComfyUI, provider: ComfyUIImageProvider
) -> None:
    source = png(320, 240, colour=(10, 120, 200))
    request = ImageEditRequest(
        source=source,
        operation="style_transfer",
        prompt="a harbour at night",
        style="noir",
        strength=0.35,
        count=2,
        seed=7,
    )

    result = await provider.transform(request)

    [upload] = comfy.uploads
    assert upload["data"] == source and upload["name"].endswith(".png")
    assert (upload["overwrite"], upload["type"]) == ("true", "input")
    workflow = comfy.prompts[0]["prompt"]
    assert workflow["2"]["inputs"]["image"] == upload["name"] == result.metadata["uploaded"]
    assert workflow["7"]["inputs"]["denoise"] == 0.35
    assert workflow["7"]["inputs"]["seed"] == 7
    assert workflow["4"]["inputs"]["amount"] == 2
    assert workflow["5"]["inputs"]["text"] == "a harbour at night, noir style"
    assert workflow["1"]["inputs"]["ckpt_name"] == CHECKPOINT
    assert [(i.width, i.height, i.seed) for i in result.images] == [(320, 240, 7)] * 2
    assert result.metadata["operation"] == "style_transfer"
    assert result.metadata["nodes"]["source"] == "2" and result.metadata["nodes"]["batch"] == "4"


async def test_transform_refuses_a_source_that_is_not_an_image(
    comfy: FakeComfyUI, provider: ComfyUIImageProvider
) -> None:
    with pytest.raises(ProviderRejected, match="not an image"):
        await provider.transform(ImageEditRequest(source=b"GIF? no", operation="variation"))

    assert comfy.uploads == [] and comfy.prompts == []
