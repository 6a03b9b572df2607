"""One JSON line per request and per job; the request id travels from a request into its jobs."""

from __future__ import annotations

import logging
import uuid

from callnfy_integrations.worker import build_worker
from tests.factories import appointment_body, auth_headers


def test_a_request_writes_one_line_with_route_status_duration_and_user(app, app_ctx, lines, logger_at):
    logger_at("callnfy_integrations.requests", logging.INFO)
    user_id = uuid.uuid4()
    client = app.test_client()
    response = client.get("/integrations/google/callback?state=secret-state&code=secret-code",
                          headers={"X-Request-ID": "req-route-1"})
    assert response.status_code == 302
    client.get("/integrations/status", headers={**auth_headers(user_id), "X-Request-ID": "req-status-1"})
    client.get("/nowhere", headers={"X-Request-ID": "req-missing-1"})
    by_id = {line["request_id"]: line for line in lines.all() if line["message"] == "request"}
    callback = by_id["req-route-1"]
    assert (callback["method"], callback["route"], callback["status"]) == (
        "GET", "/integrations/google/callback", 302)
    assert isinstance(callback["duration_ms"], (int, float)) and callback["user_id"] is None
    assert "secret" not in str(lines.all())  # the query string (OAuth code, state) is never logged
    status = by_id["req-status-1"]
    assert (status["route"], status["status"], status["user_id"]) == ("/integrations/status", 200, str(user_id))
    assert by_id["req-missing-1"]["route"] == "<no route>" and by_id["req-missing-1"]["status"] == 404


def test_a_job_writes_one_line_and_carries_the_enqueuing_requests_id(app, app_ctx, lines, logger_at):
    logger_at("callnfy_integrations.jobs", logging.INFO)
    user_id = uuid.uuid4()
    client = app.test_client()
    booked = client.post("/appointments", json=appointment_body(),
                         headers={**auth_headers(user_id), "X-Request-ID": "req-booking-7"})
    assert booked.status_code == 201
    build_worker(app, ("default",)).work(burst=True)  # the outbox drain this request rang
    [job] = [line for line in lines.all() if line["message"] == "job"]
    assert job["function"] == "jobs.events.drain_outbox" and job["queue"] == "default"
    assert job["outcome"] == "finished" and job["request_id"] == "req-booking-7"
    assert job["job_id"] and job["duration_ms"] >= 0
