"""RQ queues, the Redis connection, and the one way work is put on a queue."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, current_app
from redis import Redis
from rq import Queue
from rq.job import Job

WEBHOOKS = "webhooks"
CALENDAR = "calendar"
DEFAULT = "default"
# Priority order of a worker serving every queue: the outbox (dispatch, heartbeat) is short and
# feeds the others, so it goes first; a webhook drain runs for up to WEBHOOK_DRAIN_SECONDS, so it
# goes last and hands over early whenever the other queues have jobs waiting. In production the
# Procfile runs webhooks in their own process (`webhooks`), so a backlog there delays nothing else.
ALL_QUEUES = (DEFAULT, CALENDAR, WEBHOOKS)

_EXTENSION = "callnfy_redis"


def init_redis(app: Flask) -> None:
    """Create the app's Redis client; connections are opened lazily, on first use."""
    app.extensions[_EXTENSION] = Redis.from_url(
        app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=5, health_check_interval=30,
    )


def redis_connection(app: Flask | None = None) -> Redis:
    return (app or current_app).extensions[_EXTENSION]


def get_queue(name: str = DEFAULT, *, connection: Redis | None = None) -> Queue:
    if name not in ALL_QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=connection or redis_connection())


def enqueue(func: Callable[..., Any] | str, *args: Any, queue: str = DEFAULT, connection: Redis | None = None,
            **options: Any) -> Job:
    """Enqueue `func(*args)` (a function or its dotted path) on a named queue; `options` are RQ's.
    The current request's id travels in the job's meta (its log lines carry it)."""
    return get_queue(queue, connection=connection).enqueue_call(func, args=args, **_with_request_id(options))


def _with_request_id(options: dict[str, Any]) -> dict[str, Any]:
    from flask import g, has_app_context

    request_id = g.get("request_id") if has_app_context() else None
    if request_id:
        options = {**options, "meta": {**(options.get("meta") or {}), "request_id": request_id}}
    return options


def not_before(moment: datetime) -> datetime:
    """`moment` rounded up to a whole second. RQ's scheduled registry keeps whole seconds, rounding
    *down* (calendar.timegm), so a job due at 10.7 s could run at 10.0: up to a second early."""
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment


def enqueue_at(moment: datetime, func: Callable[..., Any] | str, *args: Any, queue: str = DEFAULT,
               connection: Redis | None = None, **options: Any) -> Job:
    """Enqueue at `moment`, never before it: the job waits in the scheduled registry until a
    worker's scheduler (every `flask worker` runs one, polling each second) moves it to the queue."""
    return get_queue(queue, connection=connection).enqueue_at(not_before(moment), func, *args,
                                                              **_with_request_id(options))


def enqueue_in(delay: timedelta, func: Callable[..., Any] | str, *args: Any, queue: str = DEFAULT,
               connection: Redis | None = None, **options: Any) -> Job:
    """Enqueue after `delay` (never sooner; see `enqueue_at`)."""
    return enqueue_at(datetime.now(UTC) + delay, func, *args, queue=queue, connection=connection,
                      **options)


def cancel_user_jobs(queue_name: str, user_id, *, connection: Redis | None = None) -> int:
    """Cancel the queued jobs of one user (jobs carry `meta["user_id"]`); returns how many."""
    queue = get_queue(queue_name, connection=connection)
    cancelled = 0
    for job in Job.fetch_many(queue.get_job_ids(), connection=queue.connection):
        if job is not None and job.meta.get("user_id") == str(user_id):
            job.cancel()
            cancelled += 1
    return cancelled
