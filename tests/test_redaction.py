"""No secret in any log line of any process: the whole flow at DEBUG — connect (binder cookie, code,
tokens), a token refresh, key generation, a webhook delivery, a calendar push — then every line the
web side and a real worker process wrote is searched for every secret the flow used."""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from callnfy_integrations import create_app
from callnfy_integrations.extensions import db
from callnfy_integrations.google.oauth import BINDER_COOKIE, CALLBACK_PATH
from tests.google_fixtures import GoogleUser, fresh_sandbox, google_settings, worker_env
from tests.support import make_config, run_flask, wait_for


@pytest.mark.processes
def test_no_secret_reaches_any_log_line_of_any_process(database_url, servers, sandbox, receiver, ca_bundle,
                                                        config, lines, app):
    hooks = {"WEBHOOK_ALLOWED_HOSTS": "localhost", "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
             "WEBHOOK_CA_BUNDLE": ca_bundle, "OUTBOX_GRACE_SECONDS": "0", "GOOGLE_SYNC_GRACE_SECONDS": "0"}
    web = create_app(make_config(database_url, servers["redis"], LOG_LEVEL="DEBUG", **hooks,
                                 **google_settings(sandbox)))
    root = logging.getLogger()
    saved_level = root.level
    root.setLevel(logging.DEBUG)
    fresh_sandbox(sandbox)
    sandbox.settings(access_token_lifetime=2)  # the push after a pause needs a refresh
    worker = None
    try:
        with web.app_context():
            user = GoogleUser(web, sandbox)
            jwt = user.headers["Authorization"].split()[1]
            auth_url = user.auth_url()
            binder = user.client.get_cookie(BINDER_COOKIE, path=CALLBACK_PATH).value
            callback = user.consent(auth_url)
            code = parse_qs(urlsplit(callback).query)["code"][0]
            assert user.callback(callback) == {"success": "true"}
            api_key = user.client.post("/integrations/zapier/generate-key", headers=user.headers).json["data"][
                "apiKey"]
            subscribed = user.client.post(f"/webhooks/zapier/{user.user_id}/subscriptions",
                                          headers={"X-Callnfy-Key": api_key},
                                          json={"hookUrl": receiver.url(), "event": "appointment.created"})
            assert subscribed.status_code == 201
            time.sleep(2.5)  # the access token expires: the push must refresh it
            appointment = user.create()
            worker = run_flask(worker_env(config, sandbox, LOG_LEVEL="DEBUG", **hooks), "worker")
            wait_for(lambda: receiver.requests, timeout=30)
            wait_for(lambda: user.appointment(appointment["id"])["googleSync"]["state"] == "synced", timeout=30)
            db.session.remove()
    finally:
        root.setLevel(saved_level)
        if worker is not None:
            worker.terminate()
        worker_output = worker.communicate(timeout=30)[0] if worker is not None else ""
    with sandbox.state.lock:
        tokens = list(sandbox.state.access_tokens) + list(sandbox.state.refresh_tokens)
    assert sandbox.calls("token:refresh_token") >= 1 and len(tokens) >= 3  # connect's pair, then a refresh
    secrets = {"jwt": jwt, "binder": binder, "code": code, "api key": api_key,
               **{f"google token {n}": token for n, token in enumerate(tokens)}}
    web_output = lines.buffer.getvalue()
    assert '"message": "request"' in web_output and '"message": "job"' in worker_output  # DEBUG was on
    assert "webhook" in worker_output.lower() and len(worker_output.splitlines()) > 20
    for name, secret in secrets.items():
        assert len(secret) >= 16, name
        # Named results: a failure says which secret leaked where, without printing the secret.
        web_leak, worker_leak = secret in web_output, secret in worker_output
        assert not web_leak, f"the {name} is in the web process's log"
        assert not worker_leak, f"the {name} is in the worker process's log"
