"""Security headers: every response, and a strict CSP on HTML pages that still render in a browser."""

from __future__ import annotations

import pytest

from callnfy_integrations import create_app
from tests.browser import chromium
from tests.loopback import serve_wsgi
from tests.support import make_config


def test_every_response_carries_the_basic_headers_and_json_gets_no_csp(client):
    for response in (client.get("/healthz"), client.get("/integrations/status"), client.get("/openapi.json")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "Content-Security-Policy" not in response.headers
    assert "Strict-Transport-Security" in client.get("/healthz").headers  # the suite's PUBLIC_API_URL is https


def test_no_hsts_when_the_service_is_served_over_http(database_url, servers, app):
    plain = create_app(make_config(database_url, servers["redis"], PUBLIC_API_URL="http://localhost:5000"))
    assert "Strict-Transport-Security" not in plain.test_client().get("/healthz").headers


def test_html_pages_get_a_strict_csp_that_allows_only_their_own_inline_blocks(client):
    docs = client.get("/docs")
    policy = docs.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert policy.count("'sha256-") == 1  # Swagger UI's one inline script, by its hash
    assert docs.headers["X-Frame-Options"] == "DENY"


@pytest.mark.browser
def test_the_docs_page_renders_under_its_csp_in_a_real_browser(database_url, servers, app):
    served = create_app(make_config(database_url, servers["redis"]))
    server = serve_wsgi(served)
    refused = []
    try:
        with chromium() as browser:
            page = browser.new_context().new_page()
            page.on("console", lambda message: refused.append(message.text)
                    if "Content Security Policy" in message.text else None)
            page.goto(f"{server.url}/docs")
            page.wait_for_selector(".opblock", timeout=15_000)  # the operations, rendered by Swagger UI
            operations = page.locator(".opblock").count()
    finally:
        server.shutdown()
    assert operations > 20
    assert refused == []
