"""The safety sync of two-way calendars is spread over its interval: each calendar once per interval,
at its own moment, a bounded number per sweep (the calendar queue also carries one-way pushes)."""

from __future__ import annotations

import random
import uuid
from collections import Counter

import pytest

from callnfy_integrations import create_app
from callnfy_integrations.extensions import db
from callnfy_integrations.google.safety_sync import THROUGH_KEY
from callnfy_integrations.google.two_way import pending_key
from callnfy_integrations.integrations.models import ONE_WAY, TWO_WAY
from callnfy_integrations.queues import redis_connection
from jobs.google import safety_sync
from tests.factories import make_google_integration, make_user
from tests.support import make_config

INTERVAL, TICK, MAX_PER_TICK, CALENDARS = 600, 60, 5, 30
T0 = 1_800_000_000.0  # a multiple of the interval: minute k of the interval is (T0 + 60 (k-1), T0 + 60 k]


@pytest.fixture(scope="module")
def spread_app(database_url, servers, app):
    return create_app(make_config(database_url, servers["redis"], GOOGLE_SAFETY_SYNC_SECONDS=str(INTERVAL),
                                  GOOGLE_SAFETY_SYNC_TICK_SECONDS=str(TICK),
                                  GOOGLE_SAFETY_SYNC_MAX_PER_TICK=str(MAX_PER_TICK)))


@pytest.fixture
def calendars(spread_app):
    """30 two-way calendars whose moments are 20 s apart (three a minute); ids otherwise random."""
    rng = random.Random(18)
    with spread_app.app_context():
        ids = []
        for n in range(CALENDARS):
            integration = make_google_integration(make_user(), sync_mode=TWO_WAY)
            integration.id = uuid.UUID(int=rng.randrange(2 ** 100) * INTERVAL * 1000 + 500 + 20_000 * n)
            integration.sync_token = "token"
            ids.append(integration.id)
        make_google_integration(make_user(), sync_mode=ONE_WAY)  # never safety-synced
        db.session.commit()
        yield ids
        db.session.remove()


def requested(ids) -> set[uuid.UUID]:
    """The calendars whose sync was requested since the last call (as if each sync then ran)."""
    connection = redis_connection()
    found = {i for i in ids if connection.exists(pending_key(i))}
    for integration_id in found:
        connection.delete(pending_key(integration_id))
    return found


def test_each_calendar_is_synced_once_per_interval_at_its_own_moment(calendars):
    redis_connection().set(THROUGH_KEY, repr(T0))  # a sweep just ran
    per_minute = []
    for minute in range(1, INTERVAL // TICK + 1):
        count = safety_sync(now=T0 + TICK * minute)
        per_minute.append(requested(calendars))
        assert count == len(per_minute[-1])
    assert [len(r) for r in per_minute] == [3] * 10  # spread: three a minute, never all thirty at once
    assert Counter(i for r in per_minute for i in r) == Counter(calendars)  # each once per interval
    # Half a minute into the next interval: the two calendars whose moments (0.5 s, 20.5 s) have come.
    assert safety_sync(now=T0 + INTERVAL + 30) == 2
    assert requested(calendars) == {calendars[0], calendars[1]}


def test_a_sweep_with_everything_due_requests_a_bounded_share_and_leaves_the_rest_to_the_next(calendars):
    # No record of the last sweep (a fresh deployment, or Redis lost it): every calendar is due now.
    per_minute = []
    for minute in range(1, 6):
        safety_sync(now=T0 + TICK * minute)
        per_minute.append(requested(calendars))
    # At most twice the steady share (3 a minute) per sweep: the catch-up is spread as well.
    assert [len(r) for r in per_minute] == [6] * 5
    assert set().union(*per_minute) == set(calendars)  # within five sweeps, oldest moments first
    assert sum(len(r) for r in per_minute) == CALENDARS  # none twice


def test_the_scheduler_runs_the_safety_sweep_every_tick(spread_app):
    from rq.cron import CronScheduler

    from jobs.schedule import register_periodic_jobs

    scheduler = CronScheduler(connection=redis_connection(spread_app))
    register_periodic_jobs(scheduler, spread_app.config)
    jobs = {job.func_name: job.interval for job in scheduler.get_jobs()}
    assert jobs["jobs.google.safety_sync"] == TICK  # not once per interval, all calendars at once
