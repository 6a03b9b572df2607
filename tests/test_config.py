"""Configuration: read once from the environment; production refuses to start without secrets."""

import subprocess
import sys
import uuid

import pytest

from callnfy_integrations.config import ConfigError, load_config
from callnfy_integrations.crypto import DecryptionError, SecretBox
from tests.support import REPO_ROOT

PRODUCTION_SECRETS = {"SECRET_KEY": "s", "JWT_SECRET_KEY": "j", "DATABASE_URL": "postgres://u@h/d",
                      "REDIS_URL": "redis://h:6379/0",
                      "ENCRYPTION_KEYS": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
                      "PUBLIC_API_URL": "https://integrations.callnfy.com", "FRONTEND_URL": "https://app.callnfy.com"}


def test_production_is_the_default_and_names_every_missing_secret():
    with pytest.raises(ConfigError) as excinfo:
        load_config({})
    message = str(excinfo.value)
    for name in ("SECRET_KEY", "JWT_SECRET_KEY", "ENCRYPTION_KEYS", "DATABASE_URL", "REDIS_URL", "PUBLIC_API_URL",
                 "FRONTEND_URL"):
        assert name in message
    assert "\n" not in message


@pytest.mark.parametrize("missing", ["PUBLIC_API_URL", "FRONTEND_URL"])
def test_production_requires_the_public_urls_instead_of_falling_back_to_localhost(missing):
    with pytest.raises(ConfigError, match=f"missing required environment variables: {missing}$"):
        load_config({k: v for k, v in PRODUCTION_SECRETS.items() if k != missing})


@pytest.mark.parametrize("name", ["PUBLIC_API_URL", "FRONTEND_URL"])
@pytest.mark.parametrize("url", ["http://integrations.callnfy.com", "integrations.callnfy.com", "https://",
                                 "ftp://integrations.callnfy.com", "https://[::1"])
def test_production_requires_https_public_urls_naming_the_setting(name, url):
    with pytest.raises(ConfigError) as excinfo:
        load_config({**PRODUCTION_SECRETS, name: url})
    assert str(excinfo.value).startswith(f"{name}: production needs an https:// URL")


def test_production_with_https_urls_gets_https_cors_origin_and_callback():
    config = load_config({**PRODUCTION_SECRETS, "FRONTEND_URL": "https://app.callnfy.com/"})
    assert config["CORS_ORIGINS"] == ["https://app.callnfy.com"]
    assert config["PUBLIC_API_URL"] == "https://integrations.callnfy.com"


def test_development_and_testing_keep_the_localhost_defaults():
    for app_env in ("development", "testing"):
        config = load_config({"APP_ENV": app_env})
        assert (config["PUBLIC_API_URL"], config["FRONTEND_URL"]) == ("http://localhost:5000", "http://localhost:3000")


def test_production_with_secrets_loads_and_rewrites_postgres_scheme():
    config = load_config(PRODUCTION_SECRETS)
    assert config["APP_ENV"] == "production"
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg2://u@h/d"
    assert config["ENCRYPTION_KEYS"] == [b"0123456789abcdef0123456789abcdef"]


@pytest.mark.parametrize("override, fragment", [
    ({"ENCRYPTION_KEYS": "not-base64!"}, "ENCRYPTION_KEYS"),
    ({"ENCRYPTION_KEYS": "c2hvcnQ="}, "32 bytes"),
    ({"ENCRYPTION_KEYS": "ab" * 30}, "32 bytes"),  # 60 hex digits: not a hex key; as base64, 45 bytes
    ({"JWT_ALGORITHM": "RS256"}, "JWT_PUBLIC_KEY"),
    ({"JWT_ALGORITHM": "none"}, "JWT_ALGORITHM"),
    ({"WEBHOOK_RETRY_SCHEDULE": "5,soon"}, "WEBHOOK_RETRY_SCHEDULE"),
    ({"APP_ENV": "staging"}, "APP_ENV"),
    ({"ADMIN_AUTH_FAILURE_LIMIT": "lots"}, "ADMIN_AUTH_FAILURE_LIMIT"),
    ({"ZAPIER_AUTH_ADDRESS_FAILURE_LIMIT": "100 a minute"}, "ZAPIER_AUTH_ADDRESS_FAILURE_LIMIT"),
])
def test_invalid_values_are_refused_with_their_name(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config({**PRODUCTION_SECRETS, **override})


def test_an_encryption_key_may_be_64_hex_digits_as_herokus_secret_generator_makes_them():
    hex_key = "0f" * 32
    keys = f"{hex_key},{PRODUCTION_SECRETS['ENCRYPTION_KEYS']}"
    config = load_config({**PRODUCTION_SECRETS, "ENCRYPTION_KEYS": keys})
    assert config["ENCRYPTION_KEYS"] == [b"\x0f" * 32, b"0123456789abcdef0123456789abcdef"]


def test_encryption_keys_first_encrypts_all_decrypt():
    keys = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=,YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY="
    config = load_config({**PRODUCTION_SECRETS, "ENCRYPTION_KEYS": keys})
    assert [len(k) for k in config["ENCRYPTION_KEYS"]] == [32, 32]
    first, second = config["ENCRYPTION_KEYS"]
    box, owner = SecretBox(config["ENCRYPTION_KEYS"]), {"user_id": uuid.uuid4(), "field": "refresh_token"}
    sealed = box.encrypt("a refresh token", **owner)
    assert SecretBox([first]).decrypt(sealed, **owner) == "a refresh token"  # the first key encrypts …
    with pytest.raises(DecryptionError):
        SecretBox([second]).decrypt(sealed, **owner)
    older = SecretBox([second]).encrypt("an older token", **owner)
    assert box.decrypt(older, **owner) == "an older token"  # … and every key decrypts
    assert box.is_current(sealed) and not box.is_current(older)


def _clean_env(**extra):
    import os

    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH")}
    return {**keep, **extra}


@pytest.mark.processes
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


@pytest.mark.processes
@pytest.mark.parametrize("command", [
    [sys.executable, "-c", "import wsgi"],
    [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
    [sys.executable, "-m", "flask", "--app", "wsgi", "scheduler"],
])
def test_processes_refuse_to_start_in_production_with_an_http_public_url(command):
    env = _clean_env(**{**PRODUCTION_SECRETS, "PUBLIC_API_URL": "http://integrations.callnfy.com"})
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["callnfy-integrations: configuration error: PUBLIC_API_URL: production needs an https:// URL "
                     "(got 'http://integrations.callnfy.com')"], result.stderr


@pytest.mark.parametrize("url, cert_reqs, expected", [
    ("rediss://:pw@redis.example.com:6380", "none", "rediss://:pw@redis.example.com:6380?ssl_cert_reqs=none"),
    ("rediss://redis.example.com:6380/1?health=1", "none", "rediss://redis.example.com:6380/1?health=1&ssl_cert_reqs=none"),
    ("rediss://redis.example.com:6380", None, "rediss://redis.example.com:6380"),  # verified by default
    ("redis://127.0.0.1:6379/0", "none", "redis://127.0.0.1:6379/0"),  # no TLS: nothing to verify
])
def test_redis_tls_certificate_checking_is_written_into_the_url(url, cert_reqs, expected):
    config = load_config({**PRODUCTION_SECRETS, "REDIS_URL": url, "REDIS_SSL_CERT_REQS": cert_reqs})
    assert config["REDIS_URL"] == expected


def test_a_redis_url_with_self_signed_certificates_allowed_reaches_redis_py_that_way():
    from redis import Redis

    config = load_config({**PRODUCTION_SECRETS, "REDIS_URL": "rediss://redis.example.com:6380",
                          "REDIS_SSL_CERT_REQS": "none"})
    kwargs = Redis.from_url(config["REDIS_URL"]).connection_pool.connection_kwargs
    assert kwargs["ssl_cert_reqs"] == "none"


def test_an_unknown_redis_certificate_rule_is_refused_with_its_name():
    with pytest.raises(ConfigError, match="REDIS_SSL_CERT_REQS"):
        load_config({**PRODUCTION_SECRETS, "REDIS_SSL_CERT_REQS": "maybe"})

