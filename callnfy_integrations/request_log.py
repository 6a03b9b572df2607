"""One JSON line per request and per job, and the request id carried into the jobs a request enqueues.

Request lines: method, route (the URL rule, never the query string: OAuth codes and states travel
there), status, duration in ms, request id, user id (when a JWT was verified). Job lines: job id,
function, queue, duration in ms, outcome, and the request id of the request that enqueued it.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, g, request

log = logging.getLogger("callnfy_integrations.requests")
job_log = logging.getLogger("callnfy_integrations.jobs")


def _user_id() -> str | None:
    """The caller's id when this request verified a JWT (see auth.authenticate), or the REST hooks' key."""
    user_id = g.get("user_id") or g.get("zapier_user_id")
    return str(user_id) if user_id else None


def register_request_log(app: Flask) -> None:
    @app.before_request
    def start_clock() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def log_request(response):
        started = g.get("request_started")
        if started is not None and request.path not in ("/healthz", "/livez"):
            rule = request.url_rule.rule if request.url_rule is not None else None
            log.info("request", extra={
                "method": request.method, "route": rule or "<no route>", "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1), "user_id": _user_id()})
        return response


# Periodic housekeeping: a line every few seconds that says nothing; DEBUG unless it failed.
QUIET_JOBS = frozenset({"jobs.events.sweep_outbox", "jobs.webhooks.sweep_webhooks", "jobs.google.sweep_google_sync",
                        "jobs.maintenance.record_heartbeat", "jobs.google.sweep_two_way", "jobs.google.safety_sync",
                        "jobs.maintenance.prune_retention", "jobs.microsoft.sweep_subscriptions",
                        "jobs.microsoft.safety_sync"})


def log_job(job, queue_name: str, started: float, outcome: str) -> None:
    level = logging.DEBUG if job.func_name in QUIET_JOBS and outcome == "finished" else logging.INFO
    job_log.log(level, "job", extra={
        "job_id": job.id, "function": job.func_name, "queue": queue_name, "outcome": outcome,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        "request_id": (job.meta or {}).get("request_id")})
