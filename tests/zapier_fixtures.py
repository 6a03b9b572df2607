"""Fixtures for Zapier tests: an app that may deliver to loopback, HTTPS receivers, a subscribed account."""

from __future__ import annotations

import uuid

import pytest
import trustme

from callnfy_integrations import create_app
from callnfy_integrations.extensions import db
from callnfy_integrations.worker import build_worker
from tests.factories import auth_headers
from tests.receiver import Receiver
from tests.support import make_config


@pytest.fixture(scope="session")
def ca():
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_bundle(ca, tmp_path_factory):
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def hooks_config(database_url, servers, ca_bundle, **overrides):
    settings = {"WEBHOOK_ALLOWED_HOSTS": "localhost", "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
                "WEBHOOK_CA_BUNDLE": ca_bundle, "WEBHOOK_RETRY_SCHEDULE": "0,0,0", "OUTBOX_GRACE_SECONDS": "0",
                "ZAPIER_AUTH_FAILURE_LIMIT": "1000 per minute"}
    settings.update(overrides)
    return make_config(database_url, servers["redis"], **settings)


@pytest.fixture(scope="module")
def hooks_app(database_url, servers, ca_bundle, app):
    return create_app(hooks_config(database_url, servers, ca_bundle))


@pytest.fixture
def hctx(hooks_app):
    with hooks_app.app_context():
        yield hooks_app
        db.session.remove()


@pytest.fixture
def receiver(ca):
    server = Receiver(ca)
    yield server
    server.close()


class Account:
    """A Callnfy user with a Zapier key, driving the API as the SPA and Zapier would."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()
        self.user_id = uuid.uuid4()
        self.headers = auth_headers(self.user_id)
        self.api_key = self.client.post("/integrations/zapier/generate-key", headers=self.headers).json["data"][
            "apiKey"]

    def hook(self, method, path="", **kwargs):
        headers = {"X-Callnfy-Key": self.api_key, **kwargs.pop("headers", {})}
        return getattr(self.client, method)(f"/webhooks/zapier/{self.user_id}{path}", headers=headers, **kwargs)

    def subscribe(self, url, event="appointment.created"):
        response = self.hook("post", "/subscriptions", json={"hookUrl": url, "event": event})
        assert response.status_code in (200, 201), response.json
        return response.json["data"]

    def book(self, **overrides):
        from tests.factories import appointment_body

        response = self.client.post("/appointments", json=appointment_body(**overrides), headers=self.headers)
        assert response.status_code == 201, response.json
        return response.json["data"]


@pytest.fixture
def account(hooks_app, hctx):
    return Account(hooks_app)


def run_worker(app):
    """A real RQ worker, in this process, until every queue is empty."""
    build_worker(app).work(burst=True)
