"""The baseline every platform number is divided by: bare Starlette, one route, a small JSON body.

Served by bench/run.py under uvicorn's defaults (uvloop, httptools), one worker, no access log.
The platform serves on the standard library's loop (ADR 5: uvloop starved some connections
under load). The baseline keeps uvicorn's defaults, the stricter choice: at 32 connections this
endpoint serves ~13,400 requests/s on uvloop and ~11,500 on the standard loop.

    .venv/bin/python -m uvicorn baseline_app:app --app-dir bench --workers 1 --no-access-log
"""

from __future__ import annotations

import hashlib

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "service": "baseline"})


async def drain(request: Request) -> JSONResponse:
    """Receive a body as it streams and hash it: the floor under an upload (bench/uploads.py)."""
    digest, size = hashlib.sha256(), 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
    return JSONResponse({"sha256": digest.hexdigest(), "bytes": size}, status_code=201)


app = Starlette(routes=[Route("/", hello), Route("/drain", drain, methods=["POST"])])
