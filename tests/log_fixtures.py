"""Fixtures for reading log lines as they leave the process: `lines` (the configured JSON handler's
output, parsed) and `logger_at` (one logger's level lowered for a test)."""

from __future__ import annotations

import io
import json
import logging

import pytest

from callnfy_integrations.logs import configure_logging


def _root_handler() -> logging.Handler:
    root = logging.getLogger()
    configure_logging(logging.getLevelName(root.level))  # idempotent: the process's one handler
    handlers = [h for h in root.handlers if h.name == "callnfy-json"]
    assert len(handlers) == 1
    return handlers[0]


class Lines:
    """What the configured handler wrote, one parsed JSON object per line."""

    def __init__(self, buffer: io.StringIO):
        self.buffer = buffer

    def all(self) -> list[dict]:
        text = self.buffer.getvalue()
        assert text.endswith("\n") or not text
        return [json.loads(line) for line in text.splitlines()]

    def only(self) -> dict:
        lines = self.all()
        assert len(lines) == 1, lines
        return lines[0]

    def with_message(self, message: str) -> dict:
        found = [line for line in self.all() if line["message"] == message]
        assert len(found) == 1, self.all()
        return found[0]


@pytest.fixture
def lines():
    """The real stdout handler, its stream swapped for a buffer for the test's duration."""
    handler = _root_handler()
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield Lines(buffer)
    finally:
        handler.setStream(previous)


@pytest.fixture
def logger_at():
    """Lower one logger's level for the test (the suite's root level is WARNING)."""
    saved = []

    def lower(name: str, level: int = logging.DEBUG) -> logging.Logger:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(level)
        return logger

    yield lower
    for logger, level in reversed(saved):
        logger.setLevel(level)
