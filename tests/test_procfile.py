"""The Procfiles: production's processes (and `Procfile.dev`, `make run`'s, the same plus the two
sandboxes), and fail fast, as the dyno manager sees it: each Procfile process, started by the Procfile's
own command with a required secret missing, exits non-zero within seconds naming the variable
(gunicorn's master would otherwise respawn workers that die at import, and the dyno would look up)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import REPO_ROOT


def procfile(name: str = "Procfile") -> dict[str, str]:
    lines = (REPO_ROOT / name).read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_the_procfile_has_the_processes_the_readme_describes():
    assert set(procfile()) == {"web", "worker", "webhooks", "scheduler", "release"}
    assert "--queue webhooks" in procfile()["webhooks"] and "--queue webhooks" not in procfile()["worker"]


def test_the_development_procfile_runs_production_processes_and_the_two_sandboxes():
    """`make run` (dev/run.py) starts these by name, with the sandboxes' ports in the environment."""
    production, development = procfile(), procfile("Procfile.dev")
    running = set(production) - {"release"}  # make run migrates before it starts anything
    assert set(development) == running | {"sandbox", "microsoft-sandbox"}
    assert {name: development[name] for name in running} == {name: production[name] for name in running}
    assert development["sandbox"] == "python -m callnfy_integrations.dev.google_sandbox --port ${SANDBOX_PORT:-5099}"
    assert development["microsoft-sandbox"] == ("python -m callnfy_integrations.dev.microsoft_sandbox "
                                                "--port ${MICROSOFT_SANDBOX_PORT:-5098}")


SECRETS = {"SECRET_KEY": "s" * 64, "JWT_SECRET_KEY": "j" * 64,
           "ENCRYPTION_KEYS": base64.b64encode(b"k" * 32).decode(),
           "PUBLIC_API_URL": "https://integrations.callnfy.test", "FRONTEND_URL": "https://app.callnfy.test"}
CASES = [("web", "SECRET_KEY"), ("web", "JWT_SECRET_KEY"), ("web", "ENCRYPTION_KEYS"), ("worker", "SECRET_KEY"),
         ("webhooks", "ENCRYPTION_KEYS"), ("scheduler", "JWT_SECRET_KEY"), ("release", "SECRET_KEY"),
         ("web", "PUBLIC_API_URL"), ("worker", "FRONTEND_URL"), ("scheduler", "PUBLIC_API_URL")]


@pytest.mark.processes
@pytest.mark.parametrize(("process", "missing"), CASES)
def test_each_procfile_process_exits_at_once_naming_what_is_missing(process, missing, config):
    env = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
           "APP_ENV": "production", "PORT": "0", "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
           "REDIS_URL": config["REDIS_URL"], "WEB_CONCURRENCY": "1",
           **{name: value for name, value in SECRETS.items() if name != missing}}
    started = time.monotonic()
    result = subprocess.run(["bash", "-c", procfile()[process]], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert elapsed < 15, elapsed
    assert f"missing required environment variables: {missing}" in output, output
    assert "Traceback" not in output  # one line saying what is wrong, not a crash


@pytest.mark.processes
@pytest.mark.parametrize("process", ["web", "worker", "scheduler", "release"])
def test_each_procfile_process_exits_at_once_on_a_plain_http_frontend_url(process, config):
    env = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
           "APP_ENV": "production", "PORT": "0", "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
           "REDIS_URL": config["REDIS_URL"], "WEB_CONCURRENCY": "1", **SECRETS, "FRONTEND_URL": "http://localhost:3000"}
    result = subprocess.run(["bash", "-c", procfile()[process]], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "FRONTEND_URL: production needs an https:// URL" in output, output
    assert "Traceback" not in output
