"""Every error class answers with the envelope; a 500 leaks nothing and writes nothing."""

import marshmallow as ma
import pytest
from flask.views import MethodView
from sqlalchemy import select

from callnfy_integrations import create_app
from callnfy_integrations.api import Blueprint
from callnfy_integrations.extensions import db
from callnfy_integrations.users.models import User
from callnfy_integrations.users.service import ensure_user


class ProbeSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=20))
    count = ma.fields.Integer(required=True, validate=ma.validate.Range(min=1, max=10))


probe = Blueprint("probe", __name__, url_prefix="/probe")


@probe.route("/echo")
class Echo(MethodView):
    @probe.arguments(ProbeSchema)
    @probe.response(201, ProbeSchema)
    def post(self, body):
        """Echo a validated body"""
        return body


@probe.route("/explode")
class Explode(MethodView):
    def post(self):
        """Write a row, then fail before committing"""
        import uuid

        ensure_user(uuid.uuid4())
        db.session.flush()
        raise RuntimeError("secret-internal-detail")


@pytest.fixture(scope="module")
def probe_app(app, config):
    application = create_app(config)
    application.extensions["flask-smorest"]["apis"][""]["ext_obj"].register_blueprint(probe)
    return application


@pytest.fixture
def probe_client(probe_app):
    return probe_app.test_client()


def assert_envelope(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.json
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def test_unknown_route_is_404_envelope(client):
    assert_envelope(client.get("/no/such/route"), 404, "NOT_FOUND")


def test_wrong_method_is_405_envelope_with_allow_header(client):
    response = client.post("/healthz")
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in response.headers["Allow"]


def test_valid_body_succeeds_in_envelope(probe_client):
    response = probe_client.post("/probe/echo", json={"name": "ok", "count": 3})
    assert response.status_code == 201
    assert response.json == {"success": True, "data": {"name": "ok", "count": 3}}


def test_validation_error_is_400_with_per_field_details(probe_client):
    error = assert_envelope(probe_client.post("/probe/echo", json={"name": "", "count": 99}), 400,
                            "VALIDATION_ERROR")
    assert set(error["details"]) == {"name", "count"}
    missing = assert_envelope(probe_client.post("/probe/echo", json={}), 400, "VALIDATION_ERROR")
    assert set(missing["details"]) == {"name", "count"}


def test_unknown_field_is_a_validation_error(probe_client):
    error = assert_envelope(probe_client.post("/probe/echo", json={"name": "a", "count": 1, "admin": True}), 400,
                            "VALIDATION_ERROR")
    assert "admin" in error["details"]


def test_malformed_json_is_400_envelope(probe_client):
    response = probe_client.post("/probe/echo", data='{"name": "a",', content_type="application/json")
    assert_envelope(response, 400, "MALFORMED_JSON")


def test_non_json_body_is_415_envelope(probe_client):
    response = probe_client.post("/probe/echo", data="name=a", content_type="application/x-www-form-urlencoded")
    assert_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_oversized_body_is_413_envelope(probe_client):
    body = '{"name": "' + "x" * (1024 * 1024 + 10) + '", "count": 1}'
    response = probe_client.post("/probe/echo", data=body, content_type="application/json")
    assert_envelope(response, 413, "REQUEST_ENTITY_TOO_LARGE")


def test_unhandled_exception_is_500_envelope_without_trace_or_write(probe_client, probe_app, caplog):
    response = probe_client.post("/probe/explode", headers={"X-Request-ID": "req-123"})
    error = assert_envelope(response, 500, "INTERNAL_ERROR")
    assert error["details"] == {"requestId": "req-123"}
    text = response.get_data(as_text=True)
    assert "secret-internal-detail" not in text and "Traceback" not in text
    assert response.headers["X-Request-ID"] == "req-123"
    # The flushed user row was rolled back, not committed by a later request.
    with probe_app.app_context():
        assert db.session.scalars(select(User)).all() == []
    # The failure is logged with its request id for operators.
    assert any(getattr(r, "request_id", None) == "req-123" and r.exc_info for r in caplog.records)


def test_request_id_is_generated_when_absent_or_unsafe(client):
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) == 32
    rejected = client.get("/healthz", headers={"X-Request-ID": "bad id <script>"})
    assert rejected.headers["X-Request-ID"] != "bad id <script>"
