"""Jobs that exercise the worker itself: operators use them to check a deployment end to end."""

from __future__ import annotations

import time

from sqlalchemy import text

from callnfy_integrations.extensions import db
from callnfy_integrations.queues import redis_connection


def record_worker_probe(probe_id: str, hold_seconds: float = 0.0) -> dict:
    """Prove a worker runs jobs inside the app: touch PostgreSQL and Redis, optionally take a while."""
    started = time.time()
    redis_connection().set(f"callnfy:probe:{probe_id}:started", started, ex=3600)
    time.sleep(hold_seconds)  # lets a test deliver SIGTERM while the job is running
    database_time = db.session.execute(text("SELECT now()")).scalar_one()
    redis_connection().set(f"callnfy:probe:{probe_id}:finished", str(database_time), ex=3600)
    return {"probe": probe_id, "database_time": str(database_time)}
