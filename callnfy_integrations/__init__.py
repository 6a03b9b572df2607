"""Callnfy Integrations: Google Calendar and Zapier for Callnfy accounts."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, g, request, send_from_directory
from werkzeug.exceptions import UnsupportedMediaType

from .config import ConfigError, load_config

__all__ = ["create_app", "ConfigError"]

PACKAGE_ROOT = Path(__file__).resolve().parent
MIGRATIONS_DIR = PACKAGE_ROOT.parent / "migrations"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from `config` (tests) or from the environment (everything else)."""
    settings = dict(load_config() if config is None else config)
    app = Flask(__name__, instance_path=settings.get("INSTANCE_DIR") or str(PACKAGE_ROOT.parent / "instance"))
    app.config.update(settings)
    app.json.sort_keys = False  # keep the envelope's order: success first

    from .logs import configure_logging

    configure_logging(app.config["LOG_LEVEL"], app.config.get("RQ_LOG_LEVEL"))
    _attach_embedded_services(app)

    from . import models, transactions  # noqa: F401  (every table; the after-commit hooks)
    from .admin.queue_dashboard import register_queue_dashboard
    from .api import Api, refuse_unknown_query_parameters
    from .cli import register_commands
    from .errors import register_error_handlers
    from .extensions import cors, db, jwt, migrate
    from .queues import init_redis

    _configure_autocommit_bind(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    jwt.init_app(app)
    # Credentials: the SPA calls Google connect with credentials: 'include' to receive the binder cookie.
    cors.init_app(app, origins=app.config["CORS_ORIGINS"], supports_credentials=True,
                  expose_headers=["X-Pagination", "X-Request-ID"])
    init_redis(app)
    _trust_proxies(app)
    api = Api(app)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    api.spec.components.security_scheme("zapierKey", {"type": "apiKey", "in": "header", "name": "X-Callnfy-Key"})
    _register_blueprints(api)
    register_error_handlers(app)
    _register_request_hooks(app)
    refuse_unknown_query_parameters(app, api.spec.to_dict())
    register_queue_dashboard(app)  # after the request id: its 401/403/404 carry one
    _register_docs_assets(app)
    if app.config.get("DEV_CONSOLE"):  # development only: otherwise /dev/integrations is the 404 envelope
        from .dev.console.views import register_dev_console

        register_dev_console(app)
    register_commands(app)
    from .monitoring import init_monitoring

    init_monitoring(app)
    return app


def _attach_embedded_services(app: Flask) -> None:
    """Outside production, a missing DATABASE_URL / REDIS_URL means the embedded servers."""
    if app.config["SQLALCHEMY_DATABASE_URI"] and app.config["REDIS_URL"]:
        return
    if app.config["APP_ENV"] == "production":  # load_config refuses this; keep the guard local too
        raise ConfigError("DATABASE_URL and REDIS_URL are required in production")
    from .dev.embedded import start_postgres, start_redis

    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        app.config["SQLALCHEMY_DATABASE_URI"] = start_postgres(os.path.join(app.instance_path, "postgres"))
    if not app.config["REDIS_URL"]:
        app.config["REDIS_URL"] = start_redis(os.path.join(app.instance_path, "redis"))


def _configure_autocommit_bind(app: Flask) -> None:
    """A second engine on the same database whose connections stay in autocommit, for hot
    single-statement reads: no BEGIN/ROLLBACK round trips, and no per-checkout isolation toggling
    (psycopg2 spends ~70 µs of CPU on each switch)."""
    from .extensions import AUTOCOMMIT_BIND

    options = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
    app.config["SQLALCHEMY_BINDS"] = {
        AUTOCOMMIT_BIND: {**options, "url": app.config["SQLALCHEMY_DATABASE_URI"], "isolation_level": "AUTOCOMMIT"},
    }


def _trust_proxies(app: Flask) -> None:
    """Behind Heroku's router the client address is the last X-Forwarded-For entry."""
    count = app.config["TRUSTED_PROXY_COUNT"]
    if count:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)


def _register_blueprints(api) -> None:
    from .appointments.views import blp as appointments_blp
    from .availability.views import blp as availability_blp
    from .calls.views import blp as calls_blp
    from .google import busy, revocation, sync, two_way  # noqa: F401  (outbox handlers, the sync-mode hook, busy)
    from .google.push import blp as google_push_blp
    from .google.views import blp as google_blp
    from .health.views import blp as health_blp
    from .integrations.views import blp as integrations_blp
    from .microsoft import busy as microsoft_busy  # noqa: F401  (registers the busy provider)
    from .microsoft import sync as microsoft_sync  # noqa: F401  (registers the Outlook push adapter)
    from .microsoft.notifications import blp as microsoft_notifications_blp
    from .microsoft.views import blp as microsoft_blp
    from .zapier import delivery  # noqa: F401  (registers the outbox handler that creates deliveries)
    from .zapier.v1.views import blp as zapier_v1_blp
    from .zapier.views import hooks_blp, keys_blp

    for blueprint in (health_blp, integrations_blp, google_blp, microsoft_blp, appointments_blp, calls_blp, keys_blp,
                      hooks_blp, google_push_blp, microsoft_notifications_blp, availability_blp, zapier_v1_blp):
        api.register_blueprint(blueprint)
    from .zapier.schemas import document_hook_urls

    document_hook_urls(api.spec, api.config["WEBHOOK_ALLOWED_HOSTS"])


def _register_request_hooks(app: Flask) -> None:
    @app.before_request
    def assign_request_id() -> None:
        supplied = request.headers.get("X-Request-ID", "")
        # fullmatch: `$` would also match before a trailing newline, echoed into the response header.
        g.request_id = supplied if _REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex

    @app.before_request
    def require_json_bodies() -> None:
        # A body we would parse must be JSON; anything else is refused before a view sees it.
        if request.method in ("POST", "PUT", "PATCH") and (request.content_length or request.headers.get(
                "Transfer-Encoding")):
            if not request.is_json:
                raise UnsupportedMediaType()
            from .api import refuse_deep_json

            body = request.get_data(cache=True)
            if request.content_length is None and request.max_content_length is not None:
                # A chunked body is read up to the limit, then silently cut off there; a byte more
                # means it was too large (Werkzeug raises 413 on reading past the limit).
                request.stream.read(1)
            refuse_deep_json(body)

    @app.after_request
    def echo_request_id(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response

    from .request_log import register_request_log
    from .security_headers import register_security_headers

    register_request_log(app)
    register_security_headers(app)


def _register_docs_assets(app: Flask) -> None:
    """Serve Swagger UI's assets from the installed package: /docs works offline, no CDN."""
    import swagger_ui_bundle

    @app.get("/docs/assets/<path:filename>")
    def swagger_ui_asset(filename: str):
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)
