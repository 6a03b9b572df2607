"""Helpers the tests (and bench/) import: scratch databases, the app's configuration, real `flask`
processes that never outlive their test, and `wait_for`. Fixtures live in conftest.py and the fixture
modules it registers; this module defines none."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
from psycopg2 import sql
from redis import Redis
from sqlalchemy.engine import make_url

from callnfy_integrations.config import load_config, normalize_database_url

REPO_ROOT = Path(__file__).resolve().parent.parent


def admin_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(normalize_database_url(url))
    if database:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(server_url: str, name: str) -> str:
    conn = psycopg2.connect(admin_dsn(server_url))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn.close()
    return make_url(normalize_database_url(server_url)).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    conn = psycopg2.connect(admin_dsn(server_url))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    conn.close()


def make_config(database_url: str, redis_url: str, **overrides) -> dict:
    environ = {"APP_ENV": "testing", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
               "PUBLIC_API_URL": "https://api.callnfy.test", "FRONTEND_URL": "https://app.callnfy.test",
               "LOG_LEVEL": "WARNING"}
    environ.update({k: v for k, v in overrides.items() if v is not None})
    return load_config(environ)


_STARTED: list[subprocess.Popen] = []


def start_process(argv: list[str], **kwargs) -> subprocess.Popen:
    """A process of the test's, in its own process group, run from the repository; whatever of it is
    still running when the test ends (passed or failed) is killed, group and all."""
    kwargs.setdefault("start_new_session", True)
    kwargs.setdefault("cwd", REPO_ROOT)
    process = subprocess.Popen(argv, **kwargs)
    _STARTED.append(process)
    return process


def run_flask(env: dict, *args: str, **kwargs) -> subprocess.Popen:
    """A real `flask` process (a worker's RQ scheduler is a child process), its output in one pipe;
    killed with its group when the test ends, like every `start_process`."""
    return start_process([sys.executable, "-m", "flask", *args], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, **kwargs)


def kill_started() -> None:
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


class RedisClaim:
    """A test run's claim on the Redis database it flushes, so that two runs never wipe each other.

    Each run has a PostgreSQL database of its own, but Redis is the one named by TEST_REDIS_URL (or an
    embedded one). The run claims it with a key that lasts CLAIM_SECONDS and is renewed after every
    flush; a second run given the same database stops at once, naming the owner, instead of flushing
    under the first. A claim whose run died on this machine (its process is gone) is taken over; an
    aborted run's keys are flushed before the new run starts."""

    KEY = "pytest:run-owner"
    CLAIM_SECONDS = 600

    def __init__(self, url: str):
        self.client = Redis.from_url(url)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"

    def take(self) -> str | None:
        """Claim the database and flush it; or the other live run's name, and nothing touched."""
        if not self.client.set(self.KEY, self.owner, nx=True, ex=self.CLAIM_SECONDS):
            other = (self.client.get(self.KEY) or b"").decode()
            if other and self._alive(other):
                return other
        self.client.flushdb()  # whatever an aborted run left: queued jobs, locks, doorbells
        self.renew()
        return None

    def renew(self) -> None:
        """After every flush (the suite's, or a test's own): the claim is a key like any other."""
        self.client.set(self.KEY, self.owner, ex=self.CLAIM_SECONDS)

    def release(self) -> None:
        if self.client.get(self.KEY) == self.owner.encode():
            self.client.delete(self.KEY)
        self.client.close()

    @staticmethod
    def _alive(owner: str) -> bool:
        host, _, rest = owner.partition(":")
        if host != socket.gethostname():
            return True  # another machine's run: its claim expires if it died
        try:
            os.kill(int(rest.partition(":")[0]), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, ValueError):
            return True
        return True
