"""The integrations console at /dev/integrations: served in development only, the 404 envelope elsewhere."""

import json
import re

import jwt
import pytest

from callnfy_integrations import create_app
from callnfy_integrations.auth import DEV_USER_ID
from callnfy_integrations.config import DEV_JWT_SECRET_KEY, ConfigError, load_config
from tests.google_fixtures import google_settings
from tests.microsoft_fixtures import microsoft_settings
from tests.support import make_config
from tests.test_config import PRODUCTION_SECRETS

CONSOLE_PATHS = ["/dev/integrations", "/dev/integrations/settings/integrations",
                 "/dev/integrations/static/console.js"]
_CONFIG = re.compile(r'<script id="console-config" type="application/json">(.*?)</script>', re.DOTALL)


def console_config(html: str) -> dict:
    return json.loads(_CONFIG.search(html).group(1))


@pytest.fixture(scope="module")
def console_app(database_url, servers, app):
    return create_app(make_config(database_url, servers["redis"], DEV_CONSOLE="1",
                                  PUBLIC_API_URL="http://localhost:5000"))


def assert_not_found_envelope(response):
    assert response.status_code == 404
    assert response.json == {"success": False, "error": {"code": "NOT_FOUND", "message": "Resource not found"}}


@pytest.mark.parametrize("path", CONSOLE_PATHS)
def test_console_is_not_found_in_testing(client, path):
    assert_not_found_envelope(client.get(path))


@pytest.mark.parametrize("path", CONSOLE_PATHS)
def test_console_is_not_found_in_production(database_url, servers, path):
    production = create_app(make_config(database_url, servers["redis"], **{
        **PRODUCTION_SECRETS, "APP_ENV": "production", "DATABASE_URL": database_url, "REDIS_URL": servers["redis"]}))
    assert production.config["DEV_CONSOLE"] is False
    assert_not_found_envelope(production.test_client().get(path))


def test_development_turns_the_console_on_and_production_refuses_it():
    assert load_config({"APP_ENV": "development"})["DEV_CONSOLE"] is True
    assert load_config({"APP_ENV": "development", "DEV_CONSOLE": "0"})["DEV_CONSOLE"] is False
    assert load_config({"APP_ENV": "testing"})["DEV_CONSOLE"] is False
    with pytest.raises(ConfigError, match="DEV_CONSOLE"):
        load_config({**PRODUCTION_SECRETS, "DEV_CONSOLE": "1"})


def test_production_app_refuses_a_config_with_the_console_on(database_url, servers):
    config = make_config(database_url, servers["redis"], **{
        **PRODUCTION_SECRETS, "APP_ENV": "production", "DATABASE_URL": database_url, "REDIS_URL": servers["redis"]})
    with pytest.raises(ConfigError, match="DEV_CONSOLE"):
        create_app({**config, "DEV_CONSOLE": True})


@pytest.mark.parametrize("environ, level", [
    ({"APP_ENV": "development"}, "WARNING"),
    ({"APP_ENV": "development", "LOG_LEVEL": "debug"}, "DEBUG"),
    ({"APP_ENV": "development", "RQ_LOG_LEVEL": "info"}, "INFO"),
    ({"APP_ENV": "testing"}, "INFO"),
    ({**PRODUCTION_SECRETS, "LOG_LEVEL": "WARNING"}, "WARNING"),
])
def test_rq_narrates_jobs_only_outside_development_or_at_debug(environ, level):
    assert load_config(environ)["RQ_LOG_LEVEL"] == level


@pytest.mark.parametrize("path", ["/dev/integrations", "/dev/integrations/settings/integrations?success=true"])
def test_console_page_carries_a_development_token_and_is_never_cached(console_app, path):
    response = console_app.test_client().get(path)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    config = console_config(response.get_data(as_text=True))
    claims = jwt.decode(config["jwt"], DEV_JWT_SECRET_KEY, algorithms=["HS256"])
    assert claims["sub"] == str(DEV_USER_ID) == config["userId"]
    assert 0 < claims["exp"] - claims["iat"] <= 12 * 3600
    assert config["publicApiUrl"] == "http://localhost:5000"
    assert config["sandboxUrl"] is None  # the app is not pointed at the Google sandbox
    assert config["microsoftSandboxUrl"] is None  # nor at the Microsoft sandbox


def test_console_names_the_sandboxes_the_app_talks_to(database_url, servers, sandbox, ms_sandbox, app):
    app = create_app(make_config(database_url, servers["redis"], DEV_CONSOLE="1", **google_settings(sandbox),
                                 **microsoft_settings(ms_sandbox)))
    config = console_config(app.test_client().get("/dev/integrations").get_data(as_text=True))
    assert (config["sandboxUrl"], config["microsoftSandboxUrl"]) == (sandbox.url, ms_sandbox.url)


def test_console_token_works_on_the_public_api(console_app):
    client = console_app.test_client()
    token = console_config(client.get("/dev/integrations").get_data(as_text=True))["jwt"]
    response = client.get("/integrations/status", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json["data"]["googleCalendar"] == {"connected": False}
    assert response.json["data"]["microsoftCalendar"] == {"connected": False}


def test_console_assets_are_served(console_app):
    client = console_app.test_client()
    for name, mimetype in (("console.js", "text/javascript"), ("console.css", "text/css")):
        response = client.get(f"/dev/integrations/static/{name}")
        assert (response.status_code, response.mimetype) == (200, mimetype)
        response.close()
