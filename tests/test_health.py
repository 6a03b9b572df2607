"""Probes: /healthz answers without I/O, /readyz names what is down."""

import pytest

from callnfy_integrations import create_app
from tests.support import make_config

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"
CLOSED_PORT_POSTGRES = "postgresql://postgres@127.0.0.1:1/nowhere"


def test_healthz_is_ok(client):
    assert client.get("/healthz").json == {"success": True, "data": {"status": "ok"}}


def test_healthz_needs_no_backing_services(servers):
    app = create_app(make_config(CLOSED_PORT_POSTGRES, CLOSED_PORT_REDIS))
    assert app.test_client().get("/healthz").status_code == 200


def test_readyz_ok_when_database_and_redis_reachable(client):
    assert client.get("/readyz").json == {"success": True, "data": {"database": "ok", "redis": "ok"}}


@pytest.mark.shows_status(("GET", "/readyz", "503"))
@pytest.mark.parametrize("database, redis, down", [
    (None, CLOSED_PORT_REDIS, {"redis"}),
    (CLOSED_PORT_POSTGRES, None, {"database"}),
    (CLOSED_PORT_POSTGRES, CLOSED_PORT_REDIS, {"database", "redis"}),
])
def test_readyz_is_503_naming_what_is_down(database_url, servers, database, redis, down):
    app = create_app(make_config(database or database_url, redis or servers["redis"]))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    error = response.json["error"]
    assert response.json["success"] is False and error["code"] == "NOT_READY"
    assert {name for name, state in error["details"].items() if state != "ok"} == down
    for name in down:
        assert name in error["message"]
