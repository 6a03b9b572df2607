"""Service configuration: the only module that reads the environment (docs/operations.md lists every setting)."""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

APP_ENVS = ("production", "development", "testing")
REQUIRED_IN_PRODUCTION = ("SECRET_KEY", "JWT_SECRET_KEY", "ENCRYPTION_KEYS", "DATABASE_URL", "REDIS_URL",
                          "PUBLIC_API_URL", "FRONTEND_URL")
# Their localhost defaults would mean, in production: credentialed CORS for localhost, OAuth redirects
# to localhost, and no Secure cookie or HSTS (both follow the scheme). So: set, and https.
HTTPS_IN_PRODUCTION = ("PUBLIC_API_URL", "FRONTEND_URL")

# Development-only values: published here on purpose, refused in production.
DEV_JWT_SECRET_KEY = "callnfy-dev-jwt-secret-change-me"
DEV_ENCRYPTION_KEY = base64.b64encode(b"callnfy-dev-encryption-key-32b!!").decode()

GOOGLE_ENDPOINTS = {
    "GOOGLE_AUTHORIZE_URL": "https://accounts.google.com/o/oauth2/v2/auth",
    "GOOGLE_TOKEN_URL": "https://oauth2.googleapis.com/token",
    "GOOGLE_USERINFO_URL": "https://openidconnect.googleapis.com/v1/userinfo",
    "GOOGLE_REVOKE_URL": "https://oauth2.googleapis.com/revoke",
    "GOOGLE_CALENDAR_API_URL": "https://www.googleapis.com/calendar/v3/",
}

MICROSOFT_ENDPOINTS = {
    "MICROSOFT_AUTHORITY_URL": "https://login.microsoftonline.com",
    "MICROSOFT_GRAPH_URL": "https://graph.microsoft.com/v1.0",
}


class ConfigError(RuntimeError):
    """The environment does not describe a runnable service; the message says what to fix."""


def _flag(value: str | None, default: bool = False) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def normalize_database_url(url: str | None) -> str | None:
    """Pin the psycopg2 driver: Heroku hands out postgres://, and SQLAlchemy 2.1 maps a bare
    postgresql:// to psycopg 3, which this service does not ship."""
    if not url:
        return None
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def _redis_url(url: str | None, cert_reqs: str) -> str | None:
    """REDIS_SSL_CERT_REQS=none, for a rediss:// URL: accept a self-signed server certificate (Heroku's
    Redis presents one; the connection is still encrypted). Written into the URL, so every client of it
    (RQ, the limiters, the queue dashboard) connects the same way."""
    if not url or cert_reqs == "required" or not url.startswith("rediss://") or "ssl_cert_reqs=" in url:
        return url
    return url + ("&" if "?" in url else "?") + "ssl_cert_reqs=none"


def _https_url(name: str, url: str) -> None:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed [IPv6 bracket
        host = None
    if not host or parts.scheme != "https":
        raise ConfigError(f"{name}: production needs an https:// URL (got {url!r})")


_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")


def _encryption_keys(raw: str) -> list[bytes]:
    """Each key is 32 bytes, written in base64 (44 characters) or as 64 hex digits (what Heroku's
    app.json `secret` generator makes). The two cannot be confused: base64 of 32 bytes is never 64 long."""
    keys = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        if _HEX_KEY.fullmatch(part):
            keys.append(bytes.fromhex(part))
            continue
        try:
            key = base64.b64decode(part, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError("ENCRYPTION_KEYS: each key must be base64 (or 64 hex digits)") from None
        if len(key) != 32:
            raise ConfigError("ENCRYPTION_KEYS: each key must decode to 32 bytes")
        keys.append(key)
    if not keys:
        raise ConfigError("ENCRYPTION_KEYS: at least one key is required")
    return keys


def _whole_seconds(name: str, raw: str) -> list[int]:
    try:
        values = [int(p) for p in raw.split(",") if p.strip()]
    except ValueError:
        raise ConfigError(f"{name}: comma-separated whole seconds expected") from None
    if not values or any(v < 0 for v in values):
        raise ConfigError(f"{name}: at least one non-negative delay expected")
    return values


def _rate(get: Callable[..., str], name: str, default: str) -> str:
    """A `limits` rate ("20 per minute"), checked at start-up rather than at the first failure."""
    from limits import parse

    raw = get(name, default)
    try:
        parse(raw)
    except ValueError:
        raise ConfigError(f"{name}: a rate like '20 per minute' expected") from None
    return raw


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{name}: one of {', '.join(allowed)} (got {value!r})")
    return value


def _positive(get: Callable[..., str], name: str, default: str, kind: type = float) -> Any:
    try:
        value = kind(get(name, default))
    except ValueError:
        raise ConfigError(f"{name}: a {'whole ' if kind is int else ''}number expected") from None
    if value <= 0:
        raise ConfigError(f"{name}: must be greater than zero")
    return value


MICROSOFT_SUBSCRIPTION_MAX_MINUTES = 4230  # Graph's limit for subscriptions to Outlook events


def _subscription_minutes(get: Callable[..., str]) -> int:
    minutes = _positive(get, "MICROSOFT_SUBSCRIPTION_MINUTES", "4200", int)
    if minutes >= MICROSOFT_SUBSCRIPTION_MAX_MINUTES:
        raise ConfigError(f"MICROSOFT_SUBSCRIPTION_MINUTES: must be below {MICROSOFT_SUBSCRIPTION_MAX_MINUTES} "
                          f"(Graph's limit for Outlook event subscriptions; got {minutes})")
    return minutes


def load_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config from an environment mapping; raise ConfigError when it cannot run."""
    env = dict(os.environ if environ is None else environ)
    get = lambda name, default=None: (env.get(name) or "").strip() or default  # noqa: E731

    app_env = get("APP_ENV", "production")
    if app_env not in APP_ENVS:
        raise ConfigError(f"APP_ENV must be one of {', '.join(APP_ENVS)} (got {app_env!r})")
    production = app_env == "production"

    if production:
        missing = [name for name in REQUIRED_IN_PRODUCTION if not get(name)]
        if missing:
            raise ConfigError("missing required environment variables: " + ", ".join(missing))

    algorithm = get("JWT_ALGORITHM", "HS256")
    if algorithm not in ("HS256", "RS256"):
        raise ConfigError("JWT_ALGORITHM must be HS256 or RS256")
    public_key = get("JWT_PUBLIC_KEY")
    if algorithm == "RS256" and not public_key:
        raise ConfigError("JWT_PUBLIC_KEY is required when JWT_ALGORITHM is RS256")

    public_api_url = get("PUBLIC_API_URL", "http://localhost:5000").rstrip("/")
    frontend_url = get("FRONTEND_URL", "http://localhost:3000").rstrip("/")
    if production:
        for name, url in zip(HTTPS_IN_PRODUCTION, (public_api_url, frontend_url), strict=True):
            _https_url(name, url)
    log_level = get("LOG_LEVEL", "INFO").upper()
    # The console at /dev/integrations hands its page a development JWT: never in production.
    dev_console = _flag(get("DEV_CONSOLE"), default=app_env == "development")
    if dev_console and production:
        raise ConfigError("DEV_CONSOLE: the development console is not available in production")
    # Hook URLs on loopback/private networks exist for tests; in production they would be an SSRF hole.
    allow_private_hooks = _flag(get("WEBHOOK_ALLOW_PRIVATE_NETWORKS"))
    if allow_private_hooks and production:
        raise ConfigError("WEBHOOK_ALLOW_PRIVATE_NETWORKS: private-network hook URLs are not allowed in production")

    config: dict[str, Any] = {
        "APP_ENV": app_env,
        "TESTING": app_env == "testing",
        "SECRET_KEY": get("SECRET_KEY") or secrets.token_hex(32),
        "LOG_LEVEL": log_level,
        # RQ narrates every job at INFO (4-5 lines per 5 s sweep that found nothing); in development
        # that buries the dev run's banner, so RQ's own loggers say only warnings unless LOG_LEVEL=DEBUG.
        "RQ_LOG_LEVEL": get("RQ_LOG_LEVEL", "WARNING" if app_env == "development" and log_level != "DEBUG"
                            else log_level).upper(),
        "DEV_CONSOLE": dev_console,
        "PORT": int(get("PORT", "5000")),
        # The web process's interface (gunicorn.conf.py). Heroku's router reaches a dyno from outside it,
        # so production listens on every interface; anywhere else (`make run`, whose console hands out
        # JWTs) only this machine can connect unless BIND_HOST says otherwise (e.g. 0.0.0.0).
        "BIND_HOST": get("BIND_HOST", "0.0.0.0" if production else "127.0.0.1"),
        "INSTANCE_DIR": get("INSTANCE_DIR"),
        # Database
        "SQLALCHEMY_DATABASE_URI": normalize_database_url(get("DATABASE_URL")),
        "SQLALCHEMY_ENGINE_OPTIONS": {
            # Per engine and process; two engines (transactional + autocommit reads) per process.
            "pool_size": int(get("DATABASE_POOL_SIZE", "4")),
            "max_overflow": int(get("DATABASE_MAX_OVERFLOW", "4")),
            "pool_recycle": 300,
            "connect_args": {"connect_timeout": 5, "application_name": "callnfy-integrations"},
        },
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        # `flask db upgrade` gives up on a lock it waited this long for (migrations/env.py).
        "MIGRATION_LOCK_TIMEOUT_SECONDS": _positive(get, "MIGRATION_LOCK_TIMEOUT_SECONDS", "5"),
        "REDIS_URL": _redis_url(get("REDIS_URL"), _choice(
            "REDIS_SSL_CERT_REQS", get("REDIS_SSL_CERT_REQS", "required"), ("required", "none"))),
        # Auth: tokens come from Callnfy's auth service; this service only verifies them.
        "JWT_SECRET_KEY": get("JWT_SECRET_KEY", DEV_JWT_SECRET_KEY),
        "JWT_ALGORITHM": algorithm,
        "JWT_DECODE_ALGORITHMS": [algorithm],
        "JWT_PUBLIC_KEY": public_key,
        "JWT_TOKEN_LOCATION": ["headers"],
        "JWT_DECODE_LEEWAY": 30,
        # When set, a token must carry this `aud` / `iss` (flask-jwt-extended's names for them).
        "JWT_DECODE_AUDIENCE": get("JWT_AUDIENCE"),
        "JWT_DECODE_ISSUER": get("JWT_ISSUER"),
        "ENCRYPTION_KEYS": _encryption_keys(get("ENCRYPTION_KEYS", DEV_ENCRYPTION_KEY)),
        # URLs
        "PUBLIC_API_URL": public_api_url,
        "FRONTEND_URL": frontend_url,
        "CORS_ORIGINS": [frontend_url],
        # Google
        "GOOGLE_CLIENT_ID": get("GOOGLE_CLIENT_ID"),
        "GOOGLE_CLIENT_SECRET": get("GOOGLE_CLIENT_SECRET"),
        **{name: get(name, default) for name, default in GOOGLE_ENDPOINTS.items()},
        # Microsoft 365: the identity platform v2 at {authority}/{tenant}/oauth2/v2.0/…, and Graph.
        "MICROSOFT_CLIENT_ID": get("MICROSOFT_CLIENT_ID"),
        "MICROSOFT_CLIENT_SECRET": get("MICROSOFT_CLIENT_SECRET"),
        "MICROSOFT_TENANT": get("MICROSOFT_TENANT", "common"),
        **{name: get(name, default).rstrip("/") for name, default in MICROSOFT_ENDPOINTS.items()},
        # Microsoft two-way sync: a subscription lives this long (Graph allows at most 4,230 minutes for
        # Outlook events; a little less leaves room for clocks that disagree) and is renewed (PATCH) by a
        # sweep this often once within a day of its end; a safety sync of every two-way calendar this often.
        "MICROSOFT_SUBSCRIPTION_MINUTES": _subscription_minutes(get),
        "MICROSOFT_SUBSCRIPTION_SWEEP_SECONDS": _positive(get, "MICROSOFT_SUBSCRIPTION_SWEEP_SECONDS", "3600", int),
        "MICROSOFT_SAFETY_SYNC_SECONDS": _positive(get, "MICROSOFT_SAFETY_SYNC_SECONDS", "10800", int),
        # The delta follows a calendar view: from a day before the baseline to this many days after it.
        "MICROSOFT_DELTA_WINDOW_DAYS": _positive(get, "MICROSOFT_DELTA_WINDOW_DAYS", "365", int),
        "MICROSOFT_DELTA_PAGE_SIZE": _positive(get, "MICROSOFT_DELTA_PAGE_SIZE", "50", int),
        "MICROSOFT_IMPORT_MAX_PER_SYNC": _positive(get, "MICROSOFT_IMPORT_MAX_PER_SYNC", "100", int),
        "MICROSOFT_SYNC_DEBOUNCE_SECONDS": float(get("MICROSOFT_SYNC_DEBOUNCE_SECONDS", "1")),
        "MICROSOFT_NOTIFICATION_RATE_LIMIT": _rate(get, "MICROSOFT_NOTIFICATION_RATE_LIMIT", "6000 per minute"),
        # Calendar sync: Google's per-user quota is 600 requests/minute; stay well under it.
        "GOOGLE_USER_RATE_LIMIT": get("GOOGLE_USER_RATE_LIMIT", "5 per second"),
        "GOOGLE_RETRY_BASE_SECONDS": float(get("GOOGLE_RETRY_BASE_SECONDS", "2")),  # backoff: base × 2^n, ±20 %
        "GOOGLE_RETRY_MAX_SECONDS": float(get("GOOGLE_RETRY_MAX_SECONDS", "900")),
        "GOOGLE_SYNC_SWEEP_SECONDS": int(get("GOOGLE_SYNC_SWEEP_SECONDS", "30")),
        "GOOGLE_SYNC_GRACE_SECONDS": int(get("GOOGLE_SYNC_GRACE_SECONDS", "60")),
        "GOOGLE_BACKFILL_DAYS": int(get("GOOGLE_BACKFILL_DAYS", "90")),
        # Two-way sync: renew channels ending within a day (checked this often); a safety sync of every
        # two-way calendar this often (Google does not guarantee notifications); notifications per address.
        "GOOGLE_CHANNEL_SWEEP_SECONDS": _positive(get, "GOOGLE_CHANNEL_SWEEP_SECONDS", "3600", int),
        "GOOGLE_SAFETY_SYNC_SECONDS": _positive(get, "GOOGLE_SAFETY_SYNC_SECONDS", "10800", int),
        # The safety sync is spread over that interval (each calendar at its own moment): the sweep
        # runs this often and requests at most this many syncs per run (or twice its steady share),
        # so it never puts every calendar's sync ahead of the one-way pushes on the calendar queue.
        "GOOGLE_SAFETY_SYNC_TICK_SECONDS": _positive(get, "GOOGLE_SAFETY_SYNC_TICK_SECONDS", "60", int),
        "GOOGLE_SAFETY_SYNC_MAX_PER_TICK": _positive(get, "GOOGLE_SAFETY_SYNC_MAX_PER_TICK", "20", int),
        "GOOGLE_PUSH_RATE_LIMIT": get("GOOGLE_PUSH_RATE_LIMIT", "6000 per minute"),
        "GOOGLE_SYNC_DEBOUNCE_SECONDS": float(get("GOOGLE_SYNC_DEBOUNCE_SECONDS", "1")),
        # At most this many appointments created from Google events by one two-way sync; the rest are
        # skipped, logged and reported in the connection's syncError (a flood of events stays a flood).
        # Availability: a one-way calendar's busy copy older than this is read again when asked about;
        # a read reaches this many days ahead.
        "AVAILABILITY_MAX_AGE_SECONDS": _positive(get, "AVAILABILITY_MAX_AGE_SECONDS", "60", int),
        "AVAILABILITY_HORIZON_DAYS": _positive(get, "AVAILABILITY_HORIZON_DAYS", "62", int),
        "GOOGLE_IMPORT_MAX_PER_SYNC": _positive(get, "GOOGLE_IMPORT_MAX_PER_SYNC", "100", int),
        # Revoking at Google after a disconnect: RQ retries at these delays (~27 h in all).
        "GOOGLE_REVOKE_RETRY_SECONDS": _whole_seconds(
            "GOOGLE_REVOKE_RETRY_SECONDS",
            get("GOOGLE_REVOKE_RETRY_SECONDS", "10,30,60,300,900,3600,7200,14400,28800,43200")),
        # Webhooks
        "WEBHOOK_ALLOWED_HOSTS": [
            h.strip().lower() for h in get("WEBHOOK_ALLOWED_HOSTS", "hooks.zapier.com").split(",") if h.strip()
        ],
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": allow_private_hooks,
        "WEBHOOK_RETRY_SCHEDULE": _whole_seconds(
            "WEBHOOK_RETRY_SCHEDULE", get("WEBHOOK_RETRY_SCHEDULE", "5,300,1800,7200,18000,36000,36000")
        ),
        "WEBHOOK_SWEEP_SECONDS": int(get("WEBHOOK_SWEEP_SECONDS", "5")),
        # Sender threads per worker (started as needed; waiting on the network, not the CPU): enough
        # that a fast account may use half while every other account keeps the rest.
        "WEBHOOK_CONCURRENCY": int(get("WEBHOOK_CONCURRENCY", "64")),
        # Attempts in flight per account, across all workers: one account's stalled receiver
        # holds at most this many senders while every other account keeps flowing.
        "WEBHOOK_ACCOUNT_CONCURRENCY": _positive(get, "WEBHOOK_ACCOUNT_CONCURRENCY", "4", int),
        # … and up to this many (at most half of WEBHOOK_CONCURRENCY) while the account's receiver
        # answers 2xx within WEBHOOK_FAST_ANSWER_SECONDS; one slow answer, error or deadline, or an
        # attempt in flight longer than that, puts it back at WEBHOOK_ACCOUNT_CONCURRENCY.
        "WEBHOOK_ACCOUNT_CONCURRENCY_MAX": _positive(get, "WEBHOOK_ACCOUNT_CONCURRENCY_MAX", "32", int),
        "WEBHOOK_FAST_ANSWER_SECONDS": _positive(get, "WEBHOOK_FAST_ANSWER_SECONDS", "0.25"),
        # The hard total deadline of one attempt: connect + TLS + send + the whole answer.
        "WEBHOOK_ATTEMPT_TIMEOUT": _positive(get, "WEBHOOK_ATTEMPT_TIMEOUT", "15"),
        # How long one drain job sends before handing over to a fresh job.
        "WEBHOOK_DRAIN_SECONDS": _positive(get, "WEBHOOK_DRAIN_SECONDS", "30"),
        "ZAPIER_MAX_SUBSCRIPTIONS": _positive(get, "ZAPIER_MAX_SUBSCRIPTIONS", "50", int),
        "WEBHOOK_DISABLE_AFTER_DAYS": _positive(get, "WEBHOOK_DISABLE_AFTER_DAYS", "5"),
        # Retention of finished deliveries, their attempts and dispatched events.
        "RETENTION_DAYS": _positive(get, "RETENTION_DAYS", "30"),
        "RETENTION_SWEEP_SECONDS": _positive(get, "RETENTION_SWEEP_SECONDS", "3600", int),
        # Rows of each kind one retention statement deletes (each batch its own short transaction).
        "RETENTION_BATCH_SIZE": _positive(get, "RETENTION_BATCH_SIZE", "1000", int),
        "WEBHOOK_CA_BUNDLE": get("WEBHOOK_CA_BUNDLE"),  # extra CA bundle for hook URLs (tests, private CAs)
        # Failed credential checks, per client address: Zapier keys per (address, account) and, higher
        # (Zapier's addresses are shared by tenants), per address; the queue dashboard's basic auth.
        "ZAPIER_AUTH_FAILURE_LIMIT": _rate(get, "ZAPIER_AUTH_FAILURE_LIMIT", "20 per minute"),
        "ZAPIER_AUTH_ADDRESS_FAILURE_LIMIT": _rate(get, "ZAPIER_AUTH_ADDRESS_FAILURE_LIMIT", "100 per minute"),
        "ADMIN_AUTH_FAILURE_LIMIT": _rate(get, "ADMIN_AUTH_FAILURE_LIMIT", "10 per minute"),
        "TRUSTED_PROXY_COUNT": int(get("TRUSTED_PROXY_COUNT", "1" if production else "0")),
        # Operations
        "SENTRY_DSN": get("SENTRY_DSN"),  # errors to Sentry (scrubbed, see monitoring.py); unset: off
        "ADMIN_USERNAME": get("ADMIN_USERNAME"),
        "ADMIN_PASSWORD": get("ADMIN_PASSWORD"),
        "SCHEDULER_HEARTBEAT_SECONDS": int(get("SCHEDULER_HEARTBEAT_SECONDS", "60")),
        # Outbox: how often the sweeper runs, and how long a committed event waits for its own
        # dispatch job before the sweeper assumes the job was lost. The sweep is one indexed UPDATE;
        # every 5 s, events lost with a Redis that came back empty are rung again within seconds.
        "OUTBOX_SWEEP_SECONDS": _positive(get, "OUTBOX_SWEEP_SECONDS", "5", int),
        "OUTBOX_GRACE_SECONDS": int(get("OUTBOX_GRACE_SECONDS", "60")),
        # Domain
        "DEFAULT_PHONE_REGION": get("DEFAULT_PHONE_REGION", "GB"),
        # HTTP
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "JSON_SORT_KEYS": False,
        "PROPAGATE_EXCEPTIONS": False,
        # OpenAPI (flask-smorest)
        "API_TITLE": "Callnfy Integrations",
        "API_VERSION": "1.0.0",
        "OPENAPI_VERSION": "3.0.3",
        "API_SPEC_OPTIONS": {"info": {"description": (
            "Every body is an envelope: {success, data} or {success, error: {code, message, details}}. "
            "Strings must not contain NUL (U+0000), which PostgreSQL cannot store: such a request is a 400. "
            "The authenticated operations refuse query parameters they do not list.")}},
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "/docs",
        "OPENAPI_SWAGGER_UI_URL": "/docs/assets/",  # served from the swagger-ui-bundle package
    }
    return config
