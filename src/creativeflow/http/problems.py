"""RFC 9457 problem+json for every error the platform returns.

Shape: {"type", "title", "status", "detail", "code", "correlation_id", "errors": [{"field",
"message"}]} plus any structured `data` of the exception. No stack trace ever reaches a client.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from creativeflow.shared.core.context import correlation_id_var
from creativeflow.shared.core.exceptions import BaseAPIException
from creativeflow.shared.core.logging import get_logger

PROBLEM_MEDIA_TYPE = "application/problem+json"
_log = get_logger("creativeflow.http")

_CODE_BY_STATUS = {
    400: "BAD_REQUEST",
    401: "NOT_AUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """The body of every error response (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable UPPER_SNAKE error name clients may switch on")
    correlation_id: str | None = None
    errors: list[FieldError] = Field(default_factory=list)


def problem_response(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    title: str | None = None,
    errors: list[dict[str, str]] | None = None,
    data: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = dict(data or {})
    body.update(
        type="about:blank",
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        code=code or _CODE_BY_STATUS.get(status, "ERROR"),
        correlation_id=correlation_id_var.get(),
        errors=errors or [],
    )
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _field_name(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in location]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"} and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts) or "request"


def _field_error(err: dict[str, Any]) -> dict[str, str]:
    if err.get("type") == "json_invalid":
        # FastAPI locates a JSON syntax error at ("body", <character offset>): name the body.
        reason = (err.get("ctx") or {}).get("error")
        message = f"invalid JSON: {reason}" if reason else "invalid JSON"
        return {"field": "body", "message": message}
    return {"field": _field_name(err.get("loc", ())), "message": str(err.get("msg", "invalid"))}


async def _api_exception(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BaseAPIException)
    return problem_response(
        exc.status_code,
        exc.detail,
        code=exc.code,
        title=exc.title,
        errors=exc.errors,
        data=exc.data,
        headers=exc.headers,
    )


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_field_error(err) for err in exc.errors()]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return problem_response(422, summary or "Request validation failed", errors=errors)


async def _http_exception(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem_response(exc.status_code, detail, headers=getattr(exc, "headers", None))


async def _unhandled(_request: Request, exc: Exception) -> JSONResponse:
    _log.exception("unhandled_error", error_type=type(exc).__name__)
    return problem_response(500, "An unexpected error occurred; quote the correlation id.")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BaseAPIException, _api_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(Exception, _unhandled)


_FASTAPI_VALIDATION_REF = "#/components/schemas/HTTPValidationError"
_PROBLEM_REF = "#/components/schemas/Problem"


def install_problem_openapi(app: FastAPI) -> None:
    """FastAPI documents its own 422 body (`{"detail": [...]}`) on every route with parameters;
    the handlers above send problem+json. Rewrite the document to say what is sent."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _document_problems(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_problems(document: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in problem_schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas.setdefault("Problem", problem_schema)
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                schema = content.get("application/json", {}).get("schema", {})
                if schema.get("$ref") == _FASTAPI_VALIDATION_REF:
                    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _PROBLEM_REF}}}
    if _FASTAPI_VALIDATION_REF not in json.dumps(document.get("paths", {})):
        schemas.pop("HTTPValidationError", None)
        if "#/components/schemas/ValidationError" not in json.dumps(schemas):
            schemas.pop("ValidationError", None)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting problem+json errors of a route."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
