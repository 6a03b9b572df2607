"""The unit of work belongs to the edge: views, jobs (and the runs they name), dispatch and CLI commands
commit; services only flush, so any service composes inside another transaction (a savepoint, the outbox dispatch)."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from callnfy_integrations.appointments import service as appointments
from callnfy_integrations.appointments.models import Appointment
from callnfy_integrations.events.models import Event
from callnfy_integrations.extensions import db
from tests.factories import appointment_body, row_counts
from tests.support import REPO_ROOT

PACKAGE = REPO_ROOT / "callnfy_integrations"
DOMAIN_PACKAGES = ("appointments", "availability", "calendar_sync", "calls", "customers", "events", "google",
                   "integrations", "microsoft", "users", "zapier", "health")
# Not domain code: a stand-in for Google's own servers, run as its own app; the dev run's console page
# (no data of its own: it calls the public API from the browser).
NOT_DOMAIN = {"dev", "admin"}  # the sandbox; HTTP-only pages
# Dispatch opens each handler's savepoint and commits. The runs are the steps of long jobs that must
# commit between calls to Google or between webhook attempts (a page applied, an outcome recorded):
# the jobs in jobs/ only name them for RQ, and these files hold the job's unit of work.
EDGE_FILES = {PACKAGE / "events" / "dispatch.py", PACKAGE / "calendar_sync" / "push_runs.py",
              PACKAGE / "google" / "two_way_runs.py", PACKAGE / "microsoft" / "two_way_runs.py",
              PACKAGE / "microsoft" / "sweeps.py", PACKAGE / "calendar_sync" / "apply_runs.py",
              PACKAGE / "zapier" / "drain.py",
              PACKAGE / "availability" / "refresh.py"}
TRANSACTION_CALLS = {"commit", "rollback"}


def transaction_calls(source: str) -> list[tuple[int, str]]:
    """(line, name) of every `.commit(` / `.rollback(` call; comments and docstrings don't count."""
    return sorted((node.lineno, node.func.attr) for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in TRANSACTION_CALLS)


def is_edge(path: Path) -> bool:
    return path.name == "views.py" or path in EDGE_FILES


def test_every_package_is_checked_or_knowingly_exempt():
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages - NOT_DOMAIN == set(DOMAIN_PACKAGES)


@pytest.mark.parametrize("package", DOMAIN_PACKAGES)
def test_domain_code_never_commits_or_rolls_back(package):
    offenders = [f"{path.relative_to(REPO_ROOT)}:{line} .{name}()"
                 for path in sorted((PACKAGE / package).rglob("*.py")) if not is_edge(path)
                 for line, name in transaction_calls(path.read_text(encoding="utf-8"))]
    assert offenders == [], "services only flush; the view, job, dispatch or CLI command owns the transaction"


def test_the_check_counts_calls_not_words():
    source = '''"""Never commit() here."""
# db.session.rollback()
def save(session):
    session.flush()
    session.commit()
    "session.rollback()"
'''
    assert transaction_calls(source) == [(5, "commit")]


def _create(user_id, name: str) -> Appointment:
    body = appointment_body(customerName=name)
    return appointments.create_appointment(
        user_id, customer_name=body["customerName"], customer_phone=body["customerPhone"],
        scheduled_at=datetime(2026, 12, 1, 10, tzinfo=UTC), duration=30)


def test_services_compose_inside_a_savepoint_the_caller_rolls_back(app_ctx, user_id):
    kept = _create(user_id, "Kept Customer")  # the outer transaction's earlier work

    savepoint = db.session.begin_nested()
    discarded = _create(user_id, "Discarded Customer")
    appointments.update_appointment(user_id, discarded.id, {"notes": "moved", "duration": 45})
    savepoint.rollback()

    # Inside the outer transaction: only the earlier work is left.
    assert db.session.scalars(select(Appointment.id)).all() == [kept.id]
    assert [e.type for e in db.session.scalars(select(Event))] == ["appointment.created"]
    db.session.commit()

    # From another connection: committed exactly once, with nothing of the savepoint's.
    counts = row_counts()
    assert (counts["appointments"], counts["events"]) == (1, 1)
    assert db.session.get(Appointment, discarded.id) is None
    assert db.session.scalars(select(Event.payload["id"].astext)).all() == ["appt_" + kept.id.hex]


def test_work_added_inside_a_rolled_back_savepoint_is_never_run(app_ctx, user_id):
    from callnfy_integrations.events.outbox import OUTBOX
    from callnfy_integrations.queues import redis_connection

    kept = _create(user_id, "Kept Customer")
    savepoint = db.session.begin_nested()
    _create(user_id, "Discarded Customer")
    savepoint.rollback()
    db.session.commit()
    [event_id] = db.session.scalars(select(Event.id)).all()
    rung = OUTBOX.waiting(redis_connection())
    assert rung == [str(event_id)]  # the discarded event's dispatch was never requested
    assert kept.id is not None
