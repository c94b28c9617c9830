"""The baseline every platform number is divided by: bare Starlette, one route, a small JSON body.

Served by bench/run.py under uvicorn with the same loop and HTTP parser as the platform
(uvloop, httptools), one worker, no access log:

    .venv/bin/python -m uvicorn baseline_app:app --app-dir bench --workers 1 --no-access-log
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "service": "baseline"})


app = Starlette(routes=[Route("/", hello)])
