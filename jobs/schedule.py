"""The periodic jobs the scheduler process enqueues, and how often."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from rq.cron import CronScheduler

from callnfy_integrations.google.safety_sync import tick_seconds as safety_sync_tick_seconds
from callnfy_integrations.microsoft.sweeps import safety_tick_seconds as microsoft_safety_tick_seconds
from callnfy_integrations.queues import CALENDAR, DEFAULT, WEBHOOKS, redis_connection
from jobs.events import sweep_outbox
from jobs.google import safety_sync, sweep_google_sync, sweep_two_way
from jobs.maintenance import prune_retention, record_heartbeat
from jobs.microsoft import safety_sync as microsoft_safety_sync
from jobs.microsoft import sweep_subscriptions
from jobs.webhooks import sweep_webhooks


def register_periodic_jobs(scheduler: CronScheduler, config: Mapping[str, Any]) -> None:
    scheduler.register(record_heartbeat, queue_name=DEFAULT, interval=config["SCHEDULER_HEARTBEAT_SECONDS"],
                       result_ttl=0)
    scheduler.register(sweep_outbox, queue_name=DEFAULT, interval=config["OUTBOX_SWEEP_SECONDS"], result_ttl=0)
    scheduler.register(sweep_webhooks, queue_name=WEBHOOKS, interval=config["WEBHOOK_SWEEP_SECONDS"], result_ttl=0)
    scheduler.register(prune_retention, queue_name=DEFAULT, interval=config["RETENTION_SWEEP_SECONDS"],
                       result_ttl=0, job_timeout=600)
    scheduler.register(sweep_two_way, queue_name=CALENDAR, interval=config["GOOGLE_CHANNEL_SWEEP_SECONDS"],
                       result_ttl=0)
    scheduler.register(safety_sync, queue_name=CALENDAR, interval=safety_sync_tick_seconds(config), result_ttl=0)
    scheduler.register(sweep_google_sync, queue_name=CALENDAR, interval=config["GOOGLE_SYNC_SWEEP_SECONDS"],
                       result_ttl=0)
    scheduler.register(sweep_subscriptions, queue_name=CALENDAR,
                       interval=config["MICROSOFT_SUBSCRIPTION_SWEEP_SECONDS"], result_ttl=0)
    scheduler.register(microsoft_safety_sync, queue_name=CALENDAR, interval=microsoft_safety_tick_seconds(config),
                       result_ttl=0)


def build_scheduler(app: Flask) -> CronScheduler:
    """The `flask scheduler` process: RQ's CronScheduler with every periodic job registered."""
    scheduler = CronScheduler(connection=redis_connection(app), logging_level=app.config["RQ_LOG_LEVEL"])
    register_periodic_jobs(scheduler, app.config)
    return scheduler
