"""Configuration: read once from the environment; production refuses to start without secrets."""

import subprocess
import sys

import pytest

from callnfy_integrations.config import ConfigError, load_config
from tests.conftest import REPO_ROOT

PRODUCTION_SECRETS = {"SECRET_KEY": "s", "JWT_SECRET_KEY": "j", "DATABASE_URL": "postgres://u@h/d",
                      "REDIS_URL": "redis://h:6379/0",
                      "ENCRYPTION_KEYS": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}


def test_production_is_the_default_and_names_every_missing_secret():
    with pytest.raises(ConfigError) as excinfo:
        load_config({})
    message = str(excinfo.value)
    for name in ("SECRET_KEY", "JWT_SECRET_KEY", "ENCRYPTION_KEYS", "DATABASE_URL", "REDIS_URL"):
        assert name in message
    assert "\n" not in message


def test_production_with_secrets_loads_and_rewrites_postgres_scheme():
    config = load_config(PRODUCTION_SECRETS)
    assert config["APP_ENV"] == "production"
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg2://u@h/d"
    assert config["ENCRYPTION_KEYS"] == [b"0123456789abcdef0123456789abcdef"]


@pytest.mark.parametrize("override, fragment", [
    ({"ENCRYPTION_KEYS": "not-base64!"}, "ENCRYPTION_KEYS"),
    ({"ENCRYPTION_KEYS": "c2hvcnQ="}, "32 bytes"),
    ({"JWT_ALGORITHM": "RS256"}, "JWT_PUBLIC_KEY"),
    ({"JWT_ALGORITHM": "none"}, "JWT_ALGORITHM"),
    ({"WEBHOOK_RETRY_SCHEDULE": "5,soon"}, "WEBHOOK_RETRY_SCHEDULE"),
    ({"APP_ENV": "staging"}, "APP_ENV"),
])
def test_invalid_values_are_refused_with_their_name(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config({**PRODUCTION_SECRETS, **override})


def test_encryption_keys_first_encrypts_all_decrypt():
    keys = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=,YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY="
    config = load_config({**PRODUCTION_SECRETS, "ENCRYPTION_KEYS": keys})
    assert [len(k) for k in config["ENCRYPTION_KEYS"]] == [32, 32]


def _clean_env(**extra):
    import os

    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH")}
    return {**keep, **extra}


@pytest.mark.parametrize("command", [
    [sys.executable, "-c", "import wsgi"],
    [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
    [sys.executable, "-m", "flask", "--app", "wsgi", "scheduler"],
])
def test_processes_refuse_to_start_in_production_without_secrets(command):
    result = subprocess.run(command, cwd=REPO_ROOT, env=_clean_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "SECRET_KEY" in lines[0] and "ENCRYPTION_KEYS" in lines[0] and "JWT_SECRET_KEY" in lines[0]
