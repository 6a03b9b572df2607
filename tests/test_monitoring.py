"""SENTRY_DSN turns on error reporting, scrubbed: a real sentry-sdk sending to a loopback ingest."""

from __future__ import annotations

import gzip
import zlib
from secrets import token_hex

import pytest

from callnfy_integrations import create_app
from tests.loopback import QuietHandler, start
from tests.support import make_config


@pytest.fixture
def ingest():
    received: list[bytes] = []

    class Handler(QuietHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            elif encoding == "br":
                import brotli

                body = brotli.decompress(body)
            received.append(body)
            self.send_response(200)
            self.end_headers()

    server = start(Handler)
    yield f"http://public@127.0.0.1:{server.server_port}/1", received
    server.shutdown()


def test_an_unhandled_error_reaches_sentry_without_any_secret(database_url, servers, ingest, app):
    import sentry_sdk

    dsn, received = ingest
    monitored = create_app(make_config(database_url, servers["redis"], SENTRY_DSN=dsn))
    # Made at run time: Sentry sends the source lines around the failure, and a literal there would
    # be found in them.
    secret = {name: f"{name}-{token_hex(12)}" for name in ("code", "state", "jwt", "binder", "local")}
    secret.update(header_key="czp_" + token_hex(20), body_key="czp_" + token_hex(20))

    @monitored.post("/boom")
    def boom():
        token_in_a_local = secret["local"]  # noqa: F841 - frame locals must not be sent
        raise RuntimeError("the failure Sentry should see")

    try:
        response = monitored.test_client().post(
            f"/boom?code={secret['code']}&state={secret['state']}", json={"apiKey": secret["body_key"]},
            headers={"Authorization": f"Bearer {secret['jwt']}", "X-Callnfy-Key": secret["header_key"],
                     "Cookie": f"callnfy_google_oauth={secret['binder']}"})
        assert response.status_code == 500
        sentry_sdk.flush(timeout=10)
    finally:
        sentry_sdk.init()  # no DSN: reporting off again for the rest of the suite
    sent = b"".join(received).decode("utf-8", "replace")
    assert "the failure Sentry should see" in sent and "RuntimeError" in sent
    for name, value in secret.items():
        leaked = value in sent
        assert not leaked, f"the {name} reached Sentry"

def test_without_a_dsn_nothing_is_started(database_url, servers, app):
    from callnfy_integrations.monitoring import init_monitoring

    plain = create_app(make_config(database_url, servers["redis"]))
    assert init_monitoring(plain) is False
