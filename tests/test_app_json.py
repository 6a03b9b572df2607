"""app.json tells Heroku what the service needs: it names every setting production reads, gives the
required ones a value (generated secrets, add-on URLs, or the operator's), and runs every Procfile process."""

from __future__ import annotations

import ast
import json
import re
import secrets

from callnfy_integrations.config import REQUIRED_IN_PRODUCTION, load_config
from tests.support import REPO_ROOT
from tests.test_procfile import procfile

APP = json.loads((REPO_ROOT / "app.json").read_text())
# Read by config.py, but never set on a production dyno: development and test switches, and Google's
# endpoints, which only the tests and the sandbox override.
NOT_FOR_PRODUCTION = {"INSTANCE_DIR", "DEV_CONSOLE", "WEBHOOK_ALLOW_PRIVATE_NETWORKS", "WEBHOOK_CA_BUNDLE",
                      "GOOGLE_AUTHORIZE_URL", "GOOGLE_TOKEN_URL", "GOOGLE_USERINFO_URL", "GOOGLE_REVOKE_URL",
                      "GOOGLE_CALENDAR_API_URL"}
ADD_ONS = {"DATABASE_URL": "heroku-postgresql", "REDIS_URL": "heroku-redis"}


def settings_config_reads() -> set[str]:
    """Every environment variable config.py reads: the first string argument of each call that reads one."""
    tree = ast.parse((REPO_ROOT / "callnfy_integrations" / "config.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
                node.func.id == "get" or node.func.id.startswith("_")):  # get(), _positive(get, …), _rate(…)
            strings = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if strings and re.fullmatch(r"[A-Z][A-Z0-9_]+", strings[0]):
                names.add(strings[0])
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") in ("GOOGLE_ENDPOINTS", "MICROSOFT_ENDPOINTS")
                                                  for t in node.targets):
            names |= {key.value for key in node.value.keys}
    return names


def test_app_json_describes_every_setting_production_reads():
    read = settings_config_reads()
    assert {"SECRET_KEY", "WEBHOOK_RETRY_SCHEDULE", "GOOGLE_CLIENT_ID", "REDIS_SSL_CERT_REQS"} <= read
    assert sorted(read - NOT_FOR_PRODUCTION - set(APP["env"])) == []
    assert sorted(set(APP["env"]) - read) == []  # and nothing config.py does not read
    assert all(entry["description"].strip() for entry in APP["env"].values())


def test_every_setting_production_requires_is_generated_provided_by_an_add_on_or_asked_for():
    addons = {addon["plan"] for addon in APP["addons"]}
    for name in REQUIRED_IN_PRODUCTION:
        entry = APP["env"][name]
        if name in ADD_ONS:
            assert ADD_ONS[name] in addons, name
        else:
            assert entry["required"] is True, name
    assert APP["env"]["SECRET_KEY"]["generator"] == APP["env"]["ENCRYPTION_KEYS"]["generator"] == "secret"
    assert "generator" not in APP["env"]["JWT_SECRET_KEY"]  # shared with Callnfy's auth service: given, not made


def test_a_dyno_configured_as_app_json_says_starts():
    """What Heroku would set: values, generated secrets (64 hex digits), add-on URLs, and the operator's
    answers to the required questions."""
    environ = {"DATABASE_URL": "postgres://u:p@db.example.com:5432/d",
               "REDIS_URL": "rediss://:p@redis.example.com:6380"}
    for name, entry in APP["env"].items():
        if "value" in entry:
            environ[name] = entry["value"]
        elif entry.get("generator") == "secret":
            environ[name] = secrets.token_hex(32)
        elif entry.get("required") and name not in environ:
            environ[name] = {"PUBLIC_API_URL": "https://callnfy-integrations.herokuapp.com",
                             "FRONTEND_URL": "https://app.callnfy.com"}.get(name, "operator-supplied")
    config = load_config(environ)
    assert config["APP_ENV"] == "production" and len(config["ENCRYPTION_KEYS"][0]) == 32
    assert config["REDIS_URL"].endswith("ssl_cert_reqs=none")


def test_the_formation_runs_every_procfile_process_and_release_migrates():
    processes = procfile()
    assert set(APP["formation"]) == set(processes) - {"release"}
    assert processes["release"] == "flask --app wsgi db upgrade"
    assert APP["formation"]["scheduler"]["quantity"] == 1  # exactly one scheduler


def test_python_version_file_matches_what_setup_cfg_allows():
    version = (REPO_ROOT / ".python-version").read_text().strip()
    assert version == "3.11"
    assert "python_requires = >=3.11" in (REPO_ROOT / "setup.cfg").read_text()
