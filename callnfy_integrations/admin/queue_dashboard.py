"""rq-dashboard at /admin/rq: basic auth, its state-changing actions only from its own origin, and
one view adapted to rq 3 (`job_info_for_rq3`).

rq-dashboard ships no authentication (its docs leave that to the host app), so every request under
the prefix passes `guard_queue_dashboard` first:

* ADMIN_USERNAME or ADMIN_PASSWORD unset: the 404 envelope, the same as any unknown URL.
* wrong or missing credentials: 401 with a Basic challenge; both values compared in constant time.
  Wrong credentials count against the client address (ADMIN_AUTH_FAILURE_LIMIT); once that window is
  full, every request from the address is a 429 until it ends, right password or not.
* CSRF: a browser replays cached basic credentials on any request to the host, whoever caused it.
  An unsafe request (any method but GET/HEAD, and rq-dashboard's requeue-all, which also answers
  GET) must name the dashboard's own origin in Origin, or, without Origin, in Referer; anything
  else, including neither header, is a 403. A request whose Origin is another site is a 403 whatever
  its method: app-wide CORS trusts FRONTEND_URL with credentials, and the SPA has no business
  reading the dashboard.
"""

from __future__ import annotations

import hmac
import html
import json
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, request
from rq.job import Job
from werkzeug.exceptions import NotFound

from ..errors import ApiError, Forbidden, Unauthorized
from ..limiters import FailureLimit

URL_PREFIX = "/admin/rq"
SAFE_METHODS = ("GET", "HEAD")
# rq-dashboard routes that change state even when reached by GET.
UNSAFE_ENDPOINTS = ("rq_dashboard.requeue_all",)
CHALLENGE = 'Basic realm="Callnfy queue dashboard", charset="UTF-8"'
_DEFAULT_PORTS = {"http": 80, "https": 443}


class TooManyFailedSignIns(ApiError):
    status = 429
    code = "TOO_MANY_REQUESTS"
    message = "Too many failed sign-ins; try again later"


FAILED_SIGN_INS = FailureLimit("admin-auth-failures", "ADMIN_AUTH_FAILURE_LIMIT", TooManyFailedSignIns)


def register_queue_dashboard(app: Flask) -> None:
    """Mount rq-dashboard on the app's Redis, at URL_PREFIX, behind the guard."""
    import rq_dashboard

    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", app.config["REDIS_URL"])
    rq_dashboard.web.setup_rq_connection(app)  # the blueprint reads app.redis_conn
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)
    app.view_functions["rq_dashboard.job_info"] = rq_dashboard.web.jsonify(job_info_for_rq3)
    app.before_request(guard_queue_dashboard)


def job_info_for_rq3(instance_number: int, job_id: str) -> dict[str, Any]:
    """rq-dashboard 0.9's job_info (the JSON behind a job's page) for rq 3, where `Job.dependency_ids`
    are str: 0.9 decodes them as bytes, so any job with a dependency was a 500.

    Its strings come back HTML-escaped: the job page inserts them as HTML, unescaped (`<%= %>`), and an
    exception message or a return value can carry a third party's text; script there would run in the
    dashboard's origin, past the origin check."""
    from rq_dashboard.web import config as dashboard_config
    from rq_dashboard.web import format_job_description, serialize_date

    connection = current_app.redis_conn
    job = Job.fetch(job_id, serializer=dashboard_config.serializer, connection=connection)
    latest_result = job.latest_result()
    encoder = current_app.config.get("RQ_DASHBOARD_JSON_ENCODER", json.JSONEncoder)
    info = dict(
        id=job.id,
        created_at=serialize_date(job.created_at),
        enqueued_at=serialize_date(job.enqueued_at),
        started_at=serialize_date(job.started_at),
        ended_at=serialize_date(job.ended_at),
        origin=job.origin,
        status=job.get_status(),
        result=job.return_value(),
        exc_info=latest_result.exc_string if latest_result else None,
        description=format_job_description(job),
        metadata=json.dumps(job.get_meta(), cls=encoder),
    )
    dependency_ids = job.dependency_ids
    if dependency_ids:
        info["depends_on"] = dependency_ids
        info["depends_on_status"] = ["active" if Job.exists(dep_id, connection=connection) else "expired"
                                     for dep_id in dependency_ids]
    return _html_escaped(info)


def _html_escaped(value: Any) -> Any:
    if isinstance(value, str):
        return html.escape(value)
    if isinstance(value, dict):
        return {_html_escaped(k): _html_escaped(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_html_escaped(v) for v in value]
    return value


def _under_prefix(path: str) -> bool:
    return path == URL_PREFIX or path.startswith(URL_PREFIX + "/")


def guard_queue_dashboard() -> None:
    if not _under_prefix(request.path):
        return
    username, password = current_app.config.get("ADMIN_USERNAME"), current_app.config.get("ADMIN_PASSWORD")
    if not (username and password):
        raise NotFound()
    address = request.remote_addr or "unknown"
    FAILED_SIGN_INS.ensure_allowed(address)
    if not _credentials_match(username, password):
        if request.authorization is not None:  # a guess; a browser's first, bare request is not one
            FAILED_SIGN_INS.record_failure(address)
        raise Unauthorized("Operator credentials required", headers={"WWW-Authenticate": CHALLENGE})
    origin = request.headers.get("Origin")
    if origin is not None and not _same_origin(origin):
        raise Forbidden("Cross-origin requests to the queue dashboard are refused")
    unsafe = request.method not in SAFE_METHODS or request.endpoint in UNSAFE_ENDPOINTS
    if unsafe and not _same_origin(origin if origin is not None else request.headers.get("Referer", "")):
        raise Forbidden("Queue dashboard actions must come from the dashboard's own pages")


def _credentials_match(username: str, password: str) -> bool:
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return False
    # Both comparisons run whatever the first answers; bytes, because compare_digest refuses non-ASCII str.
    user_ok = hmac.compare_digest((auth.username or "").encode(), username.encode())
    password_ok = hmac.compare_digest((auth.password or "").encode(), password.encode())
    return user_ok and password_ok


def _origin_of(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:  # a malformed port
        return None
    if not parts.scheme or not parts.hostname or port is None:
        return None  # includes the opaque origin "null"
    return parts.scheme.lower(), parts.hostname.lower(), port


def _same_origin(url: str) -> bool:
    """Is `url` on this request's own scheme, host and port (the origin the dashboard was served from)?"""
    theirs = _origin_of(url)
    return theirs is not None and theirs == _origin_of(request.host_url)
