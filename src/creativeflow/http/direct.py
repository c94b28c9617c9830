"""Endpoints that resolve their own parameters, for the platform's hottest reads.

FastAPI's dependency solver costs ~0.3 ms a request on a route with a query model and three
dependencies (the idea list: more than its SQL, its JSON and the middleware together). A direct
endpoint takes only the `Request` and validates what it needs with the same models, raising
the same `RequestValidationError` (so the same 422 problem); `authorize` does what
`require_permission` does. What the signature no longer tells FastAPI, the route states:
`documented(...)` gives the OpenAPI parameters and security of its `openapi_extra`.

Marked `@direct`, such an endpoint is also served without FastAPI's routing layers:
`DirectDispatch`, the innermost middleware, matches the request against the direct routes
(as FastAPI mounted them: full path, methods, converters) and calls the endpoint itself,
answering its errors with the application's own exception handlers. Everything outside it
(correlation id, security headers, CORS, the request log, metrics) applies as to any route;
what it skips (exception middleware, exit stacks, the router's walk, FastAPI's request
handler) cost ~100 us of a ~430 us list. Other requests go on to the router untouched.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")
EndpointT = TypeVar("EndpointT", bound=Callable[[Request], Awaitable[Response]])

_DIRECT: set[Callable[..., Any]] = set()


def direct(endpoint: EndpointT) -> EndpointT:
    """Mark `endpoint(request) -> Response` to be called as it is (put it under the route
    decorator: the route builds its handler when it is declared)."""
    _DIRECT.add(endpoint)
    return endpoint


def is_direct(endpoint: object) -> bool:
    return endpoint in _DIRECT


@dataclass(frozen=True, slots=True)
class MountedRoute:
    """A direct route as mounted: its full path (`path_format` is also the metrics label)."""

    path_regex: re.Pattern[str]
    path_format: str
    param_convertors: dict[str, Any]
    methods: frozenset[str]
    endpoint: Callable[..., Any]


def mount_direct_routes(prefix: str, router: APIRouter) -> list[MountedRoute]:
    """The direct routes of `router` as included under `prefix`. Compiled from the router's
    own routes: asking FastAPI for every mounted route instead costs ~0.3 s an application
    (it prepares each of them), which every test paid when its application first answered."""
    mounted = []
    for route in router.routes:
        if isinstance(route, APIRoute) and is_direct(route.endpoint):
            regex, path_format, convertors = compile_path(prefix + route.path)
            methods = frozenset(route.methods or ())
            mounted.append(MountedRoute(regex, path_format, convertors, methods, route.endpoint))
    return mounted


class DirectDispatch:
    """Serves the direct endpoints of `application` before its router (see the module)."""

    def __init__(self, app: ASGIApp, *, application: FastAPI, routes: list[MountedRoute]) -> None:
        self.app = app
        self.application = application
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self.routes:
                match = route.path_regex.match(scope["path"])
                if match is not None and scope["method"] in route.methods:
                    await self._serve(route, match.groupdict(), scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _serve(
        self, route: Any, params: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        converters = route.param_convertors
        scope["path_params"] = {name: converters[name].convert(v) for name, v in params.items()}
        scope["route"] = route  # its `path_format` is the full template: the metrics label
        scope["endpoint"] = route.endpoint
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise  # unexpected: the request context answers 500, as for any route
            response = handler(request, exc)
            if inspect.isawaitable(response):
                response = await response
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> Callable[..., Any] | None:
        # What Starlette's exception middleware would pick: the closest class with a handler.
        # (A handler for `Exception` itself is the server-error handler's, outside.)
        handlers = self.application.exception_handlers
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            if cls in handlers:
                return handlers[cls]
        return None


# The security schemes of `creativeflow.http.auth` as FastAPI names them in the document.
_SECURITY: list[dict[str, list[str]]] = [{"OAuth2PasswordBearer": []}, {"APIKeyHeader": []}]


def query_model(request: Request, model: type[ModelT]) -> ModelT:
    """`model` from the query string, as FastAPI reads a `Query()` model: list fields take every
    value of their parameter, other fields the last; absent ones keep their defaults."""
    params = request.query_params
    values: dict[str, Any] = {}
    for name, is_list in _fields(model):
        if is_list:
            if listed := params.getlist(name):
                values[name] = listed
        elif (value := params.get(name)) is not None:
            values[name] = value
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise RequestValidationError(_located("query", exc)) from None


def path_value(request: Request, name: str, adapter: TypeAdapter[T]) -> T:
    try:
        return adapter.validate_python(request.path_params[name])
    except ValidationError as exc:
        raise RequestValidationError(_located("path", exc, name)) from None


def documented(
    *, path: dict[str, tuple[TypeAdapter[Any], str]], query: type[BaseModel] | None = None
) -> dict[str, Any]:
    """`openapi_extra` for a direct endpoint: its path parameters (adapter, description), the
    fields of its query model, and the security every authenticated route declares."""
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": description,
            "schema": adapter.json_schema(),
        }
        for name, (adapter, description) in path.items()
    ]
    if query is not None:
        schema = query.model_json_schema()
        definitions = schema.get("$defs", {})
        for name, field in query.model_fields.items():
            field_schema = _inline(schema["properties"][name], definitions)
            parameter = {"name": name, "in": "query", "required": False, "schema": field_schema}
            if field.description:
                parameter["description"] = field.description
            parameters.append(parameter)
    return {"parameters": parameters, "security": _SECURITY}


@cache
def _fields(model: type[BaseModel]) -> tuple[tuple[str, bool], ...]:
    """The model's fields, and whether each takes a list."""
    return tuple((name, _is_list(field.annotation)) for name, field in model.model_fields.items())


def _is_list(annotation: Any) -> bool:
    """`list[...]`, possibly in a union (`list[str] | None`)."""
    origin = get_origin(annotation)
    if origin is list:
        return True
    return origin in (Union, UnionType) and any(_is_list(arg) for arg in get_args(annotation))


def _located(where: str, exc: ValidationError, name: str | None = None) -> list[Any]:
    errors = []
    for error in exc.errors(include_url=False):
        location = (name,) if name is not None else ()
        errors.append({**error, "loc": (where, *location, *error["loc"])})
    return errors


def _inline(schema: Any, definitions: dict[str, Any]) -> Any:
    """`schema` with its `$ref`s to the model's own definitions replaced by them: a
    parameter's schema cannot point into a model's `$defs`."""
    if isinstance(schema, dict):
        reference = schema.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return _inline(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline(item, definitions) for item in schema]
    return schema


__all__ = ["DirectDispatch", "direct", "documented", "is_direct", "path_value", "query_model"]
