"""GET /healthz (process up, no I/O) and GET /readyz (PostgreSQL and Redis reachable)."""

import logging

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import text

from ..api import Blueprint, ErrorEnvelopeSchema
from ..errors import ServiceUnavailable
from ..extensions import db
from ..queues import redis_connection

log = logging.getLogger(__name__)
blp = Blueprint("health", __name__, description="Probes for the platform and operators")


class ReadinessSchema(ma.Schema):
    database = ma.fields.String(required=True, metadata={"example": "ok"})
    redis = ma.fields.String(required=True, metadata={"example": "ok"})


class LivenessSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"example": "ok"})


@blp.route("/healthz")
class Liveness(MethodView):
    @blp.response(200, LivenessSchema)
    def get(self):
        """The process is up (no I/O)"""
        return {"status": "ok"}


def _check(name: str, probe) -> str:
    try:
        probe()
        return "ok"
    except Exception as exc:  # any failure means "not ready"; the reason goes to the log only
        log.warning("readiness check failed", extra={"check": name, "error": type(exc).__name__})
        return "unreachable"


@blp.route("/readyz")
class Readiness(MethodView):
    @blp.response(200, ReadinessSchema)
    @blp.alt_response(503, schema=ErrorEnvelopeSchema, description="PostgreSQL or Redis is unreachable")
    def get(self):
        """PostgreSQL and Redis are reachable"""
        checks = {
            "database": _check("database", lambda: db.session.execute(text("SELECT 1"))),
            "redis": _check("redis", lambda: redis_connection().ping()),
        }
        db.session.rollback()
        down = [name for name, state in checks.items() if state != "ok"]
        if down:
            raise ServiceUnavailable(f"Not ready: {', '.join(down)} unreachable", code="NOT_READY", details=checks)
        return checks
