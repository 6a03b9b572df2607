"""Error reporting to Sentry when SENTRY_DSN is set (Flask and RQ integrations), scrubbed like the logs.

What never leaves: request bodies, query strings (OAuth codes and states), cookies (the OAuth
binder), the Authorization, X-Callnfy-Key and Google channel-token headers, frame local variables
(tokens pass through them), and any value under a key that names a secret. The same denylist
applies to breadcrumbs.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

SECRET_KEYS = ["authorization", "cookie", "set-cookie", "x-callnfy-key", "x-goog-channel-token", "api_key",
               "apikey", "access_token", "refresh_token", "id_token", "token", "code", "state", "binder",
               "secret", "password", "client_secret", "code_verifier", "callnfy_google_oauth"]


def _scrub(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    request = event.get("request") or {}
    for key in ("data", "query_string", "cookies"):
        request.pop(key, None)
    headers = request.get("headers")
    if isinstance(headers, dict):
        request["headers"] = {name: ("[Filtered]" if name.lower() in SECRET_KEYS else value)
                              for name, value in headers.items()}
    if request.get("url"):
        request["url"] = request["url"].split("?", 1)[0]
    return event


def init_monitoring(app: Flask) -> bool:
    """Start Sentry for this process (web, worker, scheduler alike); True when it was started."""
    dsn = app.config.get("SENTRY_DSN")
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.rq import RqIntegration
    from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

    sentry_sdk.init(
        dsn=dsn, environment=app.config["APP_ENV"], integrations=[FlaskIntegration(), RqIntegration()],
        include_local_variables=False, max_request_body_size="never",  # and no PII: the default
        event_scrubber=EventScrubber(denylist=sorted(set(DEFAULT_DENYLIST) | set(SECRET_KEYS)), recursive=True),
        before_send=_scrub, traces_sample_rate=0.0)
    return True
