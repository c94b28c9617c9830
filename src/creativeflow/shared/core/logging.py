"""Structured JSON logging: one line per event with timestamp, level, logger, service and
the correlation id of the request being served (taken from a contextvar)."""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, FilteringBoundLogger

from creativeflow.shared.core.context import correlation_id_var, user_id_var


def _add_request_context(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    event_dict.setdefault("correlation_id", correlation_id_var.get())
    user_id = user_id_var.get()
    if user_id is not None:
        event_dict.setdefault("user_id", user_id)
    return event_dict


def _json_default(value: Any) -> Any:
    """Values json cannot encode: ids, times, paths and enums as the text people search for
    (`0190…`, not `UUID('0190…')`); anything else as its repr."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | PurePath | Enum | Decimal):
        return str(value.value) if isinstance(value, Enum) else str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return repr(value)


def _dumps(event_dict: Any, **_kwargs: Any) -> str:
    try:
        return orjson.dumps(event_dict, default=_json_default).decode()
    except TypeError:  # what orjson refuses outright (integers past 64 bits)
        return json.dumps(event_dict, default=_json_default)


class _Output:
    """Where every line goes: the configured stream (by default whatever `sys.stderr` is at
    the time), plus any added with `log_to`. Loggers hold this object, so redirecting them
    needs no reconfiguration."""

    def __init__(self) -> None:
        self.stream: TextIO | None = None
        self.copies: list[TextIO] = []

    def write(self, text: str) -> None:
        (self.stream or sys.stderr).write(text)
        for stream in self.copies:
            stream.write(text)

    def flush(self) -> None:
        (self.stream or sys.stderr).flush()
        for stream in self.copies:
            stream.flush()


@dataclass
class _Settings:
    service: str = "creativeflow"
    level: int = logging.INFO


_output = _Output()
_settings = _Settings()
_LEVELS = {**structlog.stdlib.NAME_TO_LEVEL, "fatal": logging.FATAL}


def _filter_level(_logger: Any, method: str, event_dict: EventDict) -> EventDict:
    if _LEVELS.get(method, 0) < _settings.level:
        raise structlog.DropEvent
    return event_dict


def _add_service(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    event_dict.setdefault("service", _settings.service)
    return event_dict


def _logger_field(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    name = event_dict.pop("logger_name", None)
    if name is not None:
        event_dict["logger"] = name
    return event_dict


_CONTEXT: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    _add_service,
    _add_request_context,
]
_RENDERER = structlog.processors.JSONRenderer(serializer=_dumps)

# The platform's own loggers are structlog's native ones, which render and write a line in a
# few microseconds; routing them through the stdlib `logging` machinery cost ~30 us a line,
# on every request. Everything they depend on is module state (`_settings`, `_output`), so
# they can be cached on first use and still follow `configure_logging`.
structlog.configure(
    processors=[
        _filter_level,
        _logger_field,
        *_CONTEXT,
        structlog.processors.format_exc_info,
        _RENDERER,
    ],
    # Every method live (`_filter_level` filters, so the level can change); `exception()`
    # attaches the traceback.
    wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
    logger_factory=structlog.WriteLoggerFactory(file=_output),  # type: ignore[arg-type]
    cache_logger_on_first_use=True,
)


def configure_logging(
    service_name: str, log_level: str = "INFO", stream: TextIO | None = None
) -> None:
    """Render the platform's and the libraries' (stdlib) records as the same JSON lines on
    `stream` (stderr). Calling it again (tests, reloads) replaces the previous settings."""
    _settings.service = service_name
    _settings.level = logging.getLevelName(log_level.upper())
    _output.stream = stream
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *_CONTEXT],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _RENDERER,
        ],
    )
    handler = logging.StreamHandler(_output)  # type: ignore[arg-type]
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(_settings.level)
    # uvicorn's own access log would duplicate our per-request line.
    logging.getLogger("uvicorn.access").handlers.clear()
    logging.getLogger("uvicorn.access").propagate = False
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


@contextmanager
def log_to(stream: TextIO) -> Iterator[None]:
    """Also write every log line to `stream` while inside (tests, diagnostics)."""
    _output.copies.append(stream)
    try:
        yield
    finally:
        _output.copies.remove(stream)


def get_logger(name: str) -> FilteringBoundLogger:
    # `logger` itself cannot be an initial value (structlog takes that keyword): the name
    # travels as `logger_name` and `_logger_field` renames it.
    return structlog.get_logger(logger_name=name)  # type: ignore[no-any-return]
