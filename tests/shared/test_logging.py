"""configure_logging: one JSON object per line on stderr, with the service name and the
correlation id (and user) of the request being served."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from creativeflow.shared.core.context import correlation_id_var, user_id_var
from creativeflow.shared.core.logging import configure_logging, get_logger, log_to


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    """configure_logging replaces the root handlers; give the next test back what it had."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_structlog_events_are_json_with_the_standard_fields(
    capfd: pytest.CaptureFixture[str],
) -> None:
    configure_logging("test-service", "INFO")
    get_logger("creativeflow.test").info("thing_happened", count=3)

    (line,) = _lines(capfd.readouterr().err)
    assert line["event"] == "thing_happened"
    assert line["count"] == 3
    assert line["level"] == "info"
    assert line["logger"] == "creativeflow.test"
    assert line["service"] == "test-service"
    assert line["timestamp"].endswith("Z")
    assert "correlation_id" in line


def test_the_correlation_id_comes_from_the_contextvar(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("test-service", "INFO")
    log = get_logger("creativeflow.test")
    token = correlation_id_var.set("corr-123")
    user_token = user_id_var.set("user-9")
    try:
        log.info("inside_request")
    finally:
        user_id_var.reset(user_token)
        correlation_id_var.reset(token)
    log.info("outside_request")

    inside, outside = _lines(capfd.readouterr().err)
    assert inside["correlation_id"] == "corr-123"
    assert inside["user_id"] == "user-9"
    assert outside["correlation_id"] is None
    assert "user_id" not in outside


def test_stdlib_loggers_are_rendered_the_same_way(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("test-service", "INFO")
    token = correlation_id_var.set("corr-stdlib")
    try:
        logging.getLogger("some.library").warning("plain %s message", "stdlib")
    finally:
        correlation_id_var.reset(token)

    (line,) = _lines(capfd.readouterr().err)
    assert line["event"] == "plain stdlib message"
    assert line["level"] == "warning"
    assert line["logger"] == "some.library"
    assert line["service"] == "test-service"
    assert line["correlation_id"] == "corr-stdlib"


def test_exceptions_are_one_json_line_with_the_traceback(
    capfd: pytest.CaptureFixture[str],
) -> None:
    configure_logging("test-service", "INFO")
    try:
        raise RuntimeError("kaboom")
    except RuntimeError:
        get_logger("creativeflow.test").exception("failed")

    (line,) = _lines(capfd.readouterr().err)
    assert line["level"] == "error"
    assert "RuntimeError: kaboom" in line["exception"]
    assert "Traceback" in line["exception"]


def test_the_level_filters_records(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("test-service", "warning")
    log = get_logger("creativeflow.test")
    log.info("hidden")
    log.warning("shown")
    logging.getLogger("some.library").debug("hidden too")

    lines = _lines(capfd.readouterr().err)
    assert [line["event"] for line in lines] == ["shown"]


def test_configuring_twice_does_not_duplicate_lines(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("first", "INFO")
    configure_logging("second", "INFO")
    get_logger("creativeflow.test").info("once")

    lines = _lines(capfd.readouterr().err)
    assert len(lines) == 1
    assert lines[0]["service"] == "second"
    assert len(logging.getLogger().handlers) == 1


def test_non_json_values_do_not_break_the_line(capfd: pytest.CaptureFixture[str]) -> None:
    import uuid
    from datetime import UTC, datetime

    configure_logging("test-service", "INFO")
    get_logger("creativeflow.test").info(
        "odd_values", id=uuid.UUID(int=1), at=datetime(2026, 1, 1, tzinfo=UTC), text='ü\n"x"'
    )
    (line,) = _lines(capfd.readouterr().err)
    # Ids and times as the text people search logs for, not their repr.
    assert line["id"] == "00000000-0000-0000-0000-000000000001"
    assert line["at"] == "2026-01-01T00:00:00+00:00"
    assert line["text"] == 'ü\n"x"'


_MODULE_LOGGER = get_logger("creativeflow.module")  # made at import, used after configuring


def test_loggers_made_earlier_follow_each_configuration(
    capfd: pytest.CaptureFixture[str],
) -> None:
    _MODULE_LOGGER.info("first")  # cached on first use
    configure_logging("svc-a", "INFO")
    _MODULE_LOGGER.info("second")
    configure_logging("svc-b", "ERROR")
    _MODULE_LOGGER.warning("filtered out")
    _MODULE_LOGGER.error("third")

    lines = _lines(capfd.readouterr().err)
    assert [(line["event"], line["service"]) for line in lines[-2:]] == [
        ("second", "svc-a"),
        ("third", "svc-b"),
    ]
    assert all(line["logger"] == "creativeflow.module" for line in lines)


def test_log_to_copies_every_line_while_inside(capfd: pytest.CaptureFixture[str]) -> None:
    import io

    configure_logging("test-service", "INFO")
    copy = io.StringIO()
    with log_to(copy):
        get_logger("creativeflow.test").info("kept")
        logging.getLogger("some.library").warning("kept too")
    get_logger("creativeflow.test").info("not kept")

    assert [line["event"] for line in _lines(copy.getvalue())] == ["kept", "kept too"]
    assert len(_lines(capfd.readouterr().err)) == 3
