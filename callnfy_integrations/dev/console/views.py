"""`/dev/integrations`: a page that plays the settings screen through the public API (development only).

Registered only when `DEV_CONSOLE` is on (APP_ENV=development; config.py refuses it in production):
otherwise the path is an unknown route, the 404 envelope. The page is rendered with a development JWT
of the development user, the same user as the token `make run` prints. Google's and Microsoft's callbacks
land on `FRONTEND_URL/settings/integrations`, so with FRONTEND_URL pointing here (`make run` does) the
console serves that path too and a Connect round trip ends back on it.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Flask, current_app, make_response, render_template

from ...auth import DEV_USER_ID, create_dev_token
from ...config import ConfigError

blp = Blueprint("devconsole", __name__, url_prefix="/dev/integrations", template_folder="templates",
                static_folder="static")


def register_dev_console(app: Flask) -> None:
    if app.config["APP_ENV"] == "production":  # load_config refuses this; keep the guard local too
        raise ConfigError("DEV_CONSOLE: the development console is not available in production")
    app.register_blueprint(blp)


@blp.get("")
@blp.get("/settings/integrations")
def console():
    """The console page, with the development user's token in it: never cached."""

    try:
        token, token_error = create_dev_token(DEV_USER_ID, timedelta(hours=12)), None
    except RuntimeError as exc:  # JWT_ALGORITHM=RS256: this service cannot sign a token
        token, token_error = None, str(exc)
    page = render_template("devconsole/console.html", console={
        "jwt": token, "tokenError": token_error, "userId": str(DEV_USER_ID),
        "publicApiUrl": current_app.config["PUBLIC_API_URL"], "sandboxUrl": _sandbox_url(),
        "microsoftSandboxUrl": _microsoft_sandbox_url()})
    response = make_response(page)
    response.headers["Cache-Control"] = "no-store"
    return response


def _sandbox_url() -> str | None:
    """The Google sandbox's base URL when the app talks to it (the dev run without GOOGLE_CLIENT_ID)."""
    from ..google_sandbox import CLIENT_ID

    config = current_app.config
    if config["GOOGLE_CLIENT_ID"] != CLIENT_ID:
        return None
    return config["GOOGLE_AUTHORIZE_URL"].rsplit("/o/oauth2/", 1)[0]


def _microsoft_sandbox_url() -> str | None:
    """The Microsoft sandbox's base URL when the app talks to it (the dev run without MICROSOFT_CLIENT_ID)."""
    from ..microsoft_sandbox import CLIENT_ID

    config = current_app.config
    return config["MICROSOFT_AUTHORITY_URL"] if config["MICROSOFT_CLIENT_ID"] == CLIENT_ID else None
