"""Log output: one JSON line per event, tracebacks without frame locals."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from responder.record.logs import configure_logging


@pytest.fixture
def json_logs() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers = handlers
    root.setLevel(level)


def test_traceback_has_no_locals(json_logs: None, capsys: pytest.CaptureFixture[str]) -> None:
    def fail(password: str) -> None:
        raise RuntimeError("boom")

    configure_logging("json", "info")
    try:
        fail("hunter2-secret")
    except RuntimeError:
        structlog.get_logger().exception("action_error")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    entry = json.loads(line)
    assert "action_error" == entry["event"]
    assert "exception" in entry
    assert "hunter2-secret" not in line


def test_library_record_is_json(json_logs: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "info")
    logging.getLogger("aiohttp.server").error("Error handling request")
    entry = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert "Error handling request" == entry["event"]
    assert "aiohttp.server" == entry["logger"]
