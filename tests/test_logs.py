"""Log lines as they leave the process: one JSON object per line, every `extra={…}` field kept.

Everything here reads the *formatted* line (the configured handler writing to a buffer, or a real
process's stdout), never caplog's records.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from flask import g

from callnfy_integrations import create_app
from callnfy_integrations.events.models import Event
from callnfy_integrations.extensions import db
from tests.factories import make_user
from tests.support import REPO_ROOT, run_flask

ISO_UTC_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
RECORD_ATTRIBUTES = {
    "args", "asctime", "created", "exc_info", "exc_text", "filename", "funcName", "levelname", "levelno",
    "lineno", "module", "msecs", "msg", "name", "pathname", "process", "processName", "relativeCreated",
    "stack_info", "taskName", "thread", "threadName",
}


@pytest.fixture
def log(logger_at):
    return logger_at("tests.logs")


class Opaque:
    def __str__(self):
        return "opaque-thing"


def test_line_keeps_its_keys_in_order(lines, log):
    log.info("hello %s, %d", "world", 3)
    line = lines.only()
    assert list(line)[:4] == ["time", "level", "logger", "message"]
    assert ISO_UTC_MS.match(line["time"]), line["time"]
    logged_at = datetime.strptime(line["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - logged_at) < timedelta(seconds=5)  # UTC, not local time
    assert line["level"] == "INFO" and line["logger"] == "tests.logs" and line["message"] == "hello world, 3"
    assert "request_id" not in line and "exception" not in line  # outside a request, no request id


def test_every_extra_field_is_a_top_level_key(lines, log):
    event_id = uuid.uuid4()
    when = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    log.warning("with context", extra={
        "user_id": "u-1", "count": 7, "ratio": 0.5, "ok": True, "none": None, "events": ["a", "b"],
        "nested": {"k": [1, 2]}, "event_id": event_id, "when": when, "thing": Opaque(),
    })
    line = lines.only()
    assert line["user_id"] == "u-1"
    assert line["count"] == 7 and line["ratio"] == 0.5 and line["ok"] is True and line["none"] is None
    assert line["events"] == ["a", "b"] and line["nested"] == {"k": [1, 2]}
    assert line["event_id"] == str(event_id)  # not JSON: rendered with str()
    assert line["thing"] == "opaque-thing"
    assert line["when"] == "2026-03-04T05:06:07+00:00"
    assert line["level"] == "WARNING" and line["message"] == "with context"


def test_record_attributes_do_not_leak(lines, log):
    log.info("plain %s", "args", extra={"order_id": 5})
    line = lines.only()
    assert set(line) == {"time", "level", "logger", "message", "order_id"}
    assert not RECORD_ATTRIBUTES & set(line)


def test_an_extra_named_like_a_line_key_does_not_overwrite_it(lines, log):
    log.info("clash", extra={"level": "mine", "time": "then", "logger": "me"})
    line = lines.only()
    assert line["level"] == "INFO" and ISO_UTC_MS.match(line["time"]) and line["logger"] == "tests.logs"
    assert line["extra_level"] == "mine" and line["extra_time"] == "then" and line["extra_logger"] == "me"


def test_exception_carries_the_formatted_traceback(lines, log):
    try:
        {}["missing"]
    except KeyError:
        log.exception("lookup failed", extra={"key": "missing"})
    line = lines.only()
    assert line["level"] == "ERROR" and line["message"] == "lookup failed" and line["key"] == "missing"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert "KeyError: 'missing'" in line["exception"]
    assert "exc_info" not in line and "exc_text" not in line


def test_request_id_from_extra(lines, log):
    log.error("tagged", extra={"request_id": "req-123"})
    assert lines.only()["request_id"] == "req-123"


def test_request_id_from_g_in_an_app_context(app, lines, log):
    with app.test_request_context("/"):
        g.request_id = "from-g"
        log.warning("inside")
    assert lines.only()["request_id"] == "from-g"


# A real request through the app: its before_request hook sets g.request_id from X-Request-ID.
@pytest.fixture(scope="module")
def probe_app(config, app):
    application = create_app(config)

    def note():
        logging.getLogger("tests.logs").warning("noted", extra={"widget": 42})
        return {"ok": True}

    def explode():
        raise RuntimeError("kaboom-detail")

    application.add_url_rule("/log-probe/note", "log_probe_note", note)
    application.add_url_rule("/log-probe/explode", "log_probe_explode", explode)
    return application


def test_a_request_tags_its_lines_with_its_request_id(probe_app, lines):
    response = probe_app.test_client().get("/log-probe/note", headers={"X-Request-ID": "req-from-header"})
    assert response.status_code == 200
    line = lines.with_message("noted")
    assert line["request_id"] == "req-from-header" and line["widget"] == 42


def test_an_unhandled_error_logs_its_request_id_and_traceback(probe_app, lines):
    response = probe_app.test_client().get("/log-probe/explode", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert "kaboom-detail" not in response.get_data(as_text=True)
    line = lines.with_message("unhandled error")  # callnfy_integrations.errors.handle_unexpected
    assert line["level"] == "ERROR" and line["logger"] == "callnfy_integrations.errors"
    assert line["request_id"] == "req-500"
    assert "RuntimeError: kaboom-detail" in line["exception"]


def due_event(user_id: uuid.UUID) -> Event:
    """An undispatched event whose dispatch is overdue, of a type no handler listens to."""
    make_user(user_id)
    event = Event(user_id=user_id, type="test.logs", payload={},
                  next_attempt_at=datetime.now(UTC) - timedelta(minutes=5))
    db.session.add(event)
    db.session.commit()
    return event


def test_a_call_site_keeps_its_extras(app, lines, logger_at, user_id):
    from callnfy_integrations.events.dispatch import sweep_due_events

    logger_at("callnfy_integrations.events.dispatch", logging.INFO)
    with app.app_context():
        due_event(user_id)
        assert sweep_due_events() == 1
        db.session.remove()
    line = lines.with_message("outbox sweep re-enqueued events")
    assert line["logger"] == "callnfy_integrations.events.dispatch"
    assert line["count"] == 1


LOGGING_SCRIPT = """
import logging, uuid
from callnfy_integrations.logs import configure_logging
configure_logging("INFO")
configure_logging("INFO")  # a second call adds no second handler
log = logging.getLogger("script")
log.info("from a process", extra={"dst_ip": "203.0.113.9", "attempt": 2, "ids": [1, 2],
                                  "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678")})
try:
    1 / 0
except ZeroDivisionError:
    log.exception("it failed", extra={"job": "sweep"})
logging.getLogger("pgserver").info("start-up chatter is quiet")
"""


@pytest.mark.processes
def test_a_process_writes_json_lines_on_stdout():
    result = subprocess.run([sys.executable, "-c", LOGGING_SCRIPT], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    first, second = [json.loads(line) for line in result.stdout.splitlines()]
    assert first["message"] == "from a process" and first["logger"] == "script" and first["level"] == "INFO"
    assert first["dst_ip"] == "203.0.113.9" and first["attempt"] == 2 and first["ids"] == [1, 2]
    assert first["uuid"] == "12345678-1234-5678-1234-567812345678"
    assert not RECORD_ATTRIBUTES & set(first)
    assert second["job"] == "sweep" and "ZeroDivisionError: division by zero" in second["exception"]


@pytest.mark.processes
def test_a_worker_process_logs_json_lines_with_extras(app, process_env, user_id):
    from callnfy_integrations.queues import DEFAULT, enqueue
    from jobs.events import sweep_outbox

    with app.app_context():
        due_event(user_id)
        enqueue(sweep_outbox, queue=DEFAULT)
        db.session.remove()
    worker = run_flask(process_env, "worker", "--burst")
    output, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, output
    parsed = [json.loads(line) for line in output.splitlines()]  # every line: stderr is merged in
    assert parsed, output
    sweep = [line for line in parsed if line["message"] == "outbox sweep re-enqueued events"]
    assert len(sweep) == 1, output
    assert sweep[0]["count"] == 1 and sweep[0]["logger"] == "callnfy_integrations.events.dispatch"
    assert all(ISO_UTC_MS.match(line["time"]) and not RECORD_ATTRIBUTES & set(line) for line in parsed)
