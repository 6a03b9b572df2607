"""The Callnfy app for Zapier (`zapier-app/`), validated by Zapier's schema and run with the SDK's
`createAppTester` against a live service: this test starts the web app over HTTP and a real
`flask worker` process (PostgreSQL, Redis), gives the Node tests an account's webhook URL and key,
and a certificate the worker trusts for the loopback HTTPS server that stands in for Zapier."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest
import requests

from callnfy_integrations import create_app
from tests.factories import auth_headers
from tests.loopback import serve_wsgi
from tests.support import REPO_ROOT, make_config, run_flask

ZAPIER_APP = REPO_ROOT / "zapier-app"


def node() -> str:
    path = shutil.which("node")
    assert path, "Node.js is needed for the Zapier app's tests"
    assert (ZAPIER_APP / "node_modules" / "zapier-platform-core").is_dir(), \
        "zapier-app/node_modules is missing: `make test` installs it with `npm ci` from the lockfile"
    return path


@pytest.mark.processes
def test_the_app_definition_is_valid_by_zapiers_schema():
    result = subprocess.run([node(), "scripts/validate.js"], cwd=ZAPIER_APP, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid: 5 triggers, 4 creates, 3 searches" in result.stdout


@pytest.mark.processes
def test_the_app_passes_the_zapier_clis_structural_validation():
    """`zapier-platform validate --without-style`: the CLI's own checks, offline. (Plain `validate` also
    sends the app to Zapier's style check, a network call this machine cannot make.) The CLI needs Node
    22, which the app pins as a dev dependency when the machine's Node is older."""
    node22 = ZAPIER_APP / "node_modules" / "node" / "bin" / "node"
    cli = ZAPIER_APP / "node_modules" / ".bin" / "zapier-platform"
    assert node22.exists() and cli.exists(), "`make test` installs them with `npm ci` from the lockfile"
    result = subprocess.run([str(node22), str(cli), "validate", "--without-style"], cwd=ZAPIER_APP,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "LOGGING_ENDPOINT": "http://127.0.0.1:9/"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No structural errors found" in result.stdout, result.stdout


@pytest.mark.processes
def test_every_trigger_action_search_and_error_path_offline():
    """`npm test`: the app against recorded answers (nock), no service running."""
    env = {**os.environ, "LOGGING_ENDPOINT": "http://127.0.0.1:9/", "NODE_NO_WARNINGS": "1"}
    env.pop("CALLNFY_BASE_URL", None)
    result = subprocess.run([node(), "--test", "test/offline.test.js"], cwd=ZAPIER_APP, env=env,
                            capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "# fail 0" in output and "# pass 19" in output, output


@pytest.fixture
def live_service(database_url, servers, ca_bundle, process_env, app):
    server = serve_wsgi()
    url = server.url
    webhooks = {"WEBHOOK_ALLOWED_HOSTS": "localhost", "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
                "WEBHOOK_CA_BUNDLE": ca_bundle, "OUTBOX_GRACE_SECONDS": "0", "PUBLIC_API_URL": url}
    server.app = create_app(make_config(database_url, servers["redis"], **webhooks))
    worker = run_flask({**process_env, **webhooks, "LOG_LEVEL": "WARNING"}, "worker")
    yield url
    worker.terminate()
    worker.wait(20)
    server.shutdown()


@pytest.mark.processes
def test_the_app_against_the_live_service(live_service, ca, tmp_path):
    headers = auth_headers(uuid.uuid4())
    key = requests.post(f"{live_service}/integrations/zapier/generate-key", headers=headers, timeout=10).json()["data"]
    certificate = ca.issue_cert("localhost", "127.0.0.1")
    certificate.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    certificate.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    env = {**os.environ, "CALLNFY_API_URL": live_service, "CALLNFY_BASE_URL": live_service,
           "CALLNFY_JWT": headers["Authorization"].split()[1],
           "CALLNFY_WEBHOOK_URL": key["webhookUrl"], "CALLNFY_API_KEY": key["apiKey"],
           "RECEIVER_CERT": str(tmp_path / "cert.pem"), "RECEIVER_KEY": str(tmp_path / "key.pem"),
           # The SDK streams logs only with a token; this keeps them on loopback even if one were set.
           "LOGGING_ENDPOINT": "http://127.0.0.1:9/", "NODE_NO_WARNINGS": "1"}
    result = subprocess.run([node(), "--test", "test/live.test.js"], cwd=ZAPIER_APP, env=env, capture_output=True,
                            text=True, timeout=180)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "# pass 5" in output and "# fail 0" in output, output
