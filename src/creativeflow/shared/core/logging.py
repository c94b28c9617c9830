"""Structured JSON logging: one line per event with timestamp, level, logger, service and
the correlation id of the request being served (taken from a contextvar)."""

from __future__ import annotations

import logging
import sys
import uuid
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any

import structlog

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


def configure_logging(service_name: str, log_level: str = "INFO") -> None:
    """Route stdlib and structlog records through one JSON renderer on stderr.

    Existing root handlers are replaced, so calling it twice (tests, reloads) is harmless.
    """

    def add_service(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        event_dict.setdefault("service", service_name)
        return event_dict

    shared_processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        add_service,
        _add_request_context,
    ]
    structlog.configure(
        processors=[
            *shared_processors,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(default=_json_default),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(log_level.upper())
    # uvicorn's own access log would duplicate our per-request line.
    logging.getLogger("uvicorn.access").handlers.clear()
    logging.getLogger("uvicorn.access").propagate = False
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)  # type: ignore[no-any-return]
