"""`make run` (callnfy_integrations.dev.run) as a real process tree with the embedded PostgreSQL and Redis:
whatever ends it — Ctrl-C, SIGTERM, a process that cannot start — nothing it started keeps running; once
it is up, the terminal stays quiet (RQ does not narrate the periodic jobs); and a provider without
credentials is its sandbox (Google's, Microsoft's)."""

from __future__ import annotations

import ast
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from callnfy_integrations.dev import microsoft_sandbox
from callnfy_integrations.dev import run as devrun
from tests.support import REPO_ROOT, wait_for

# What the developer's shell might carry that would make devrun skip the embedded servers or a sandbox.
_INHERITED = ("DATABASE_URL", "REDIS_URL", "GOOGLE_", "MICROSOFT_", "FRONTEND_URL", "PUBLIC_API_URL", "APP_ENV",
              "LOG_LEVEL", "RQ_LOG_LEVEL", "PORT", "SANDBOX_PORT", "FLASK_", "INSTANCE_DIR", "DEV_CONSOLE")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DevRun:
    """`python -m callnfy_integrations.dev.run` in its own session, as a terminal would run `make run`."""

    def __init__(self, instance: Path, *, sandbox_port: int | None = None, microsoft_sandbox_port: int | None = None):
        self.instance = instance
        self.port = free_port()
        self.microsoft_sandbox_port = microsoft_sandbox_port or free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED)}
        env.update(INSTANCE_DIR=str(instance), PORT=str(self.port), SANDBOX_PORT=str(sandbox_port or free_port()),
                   MICROSOFT_SANDBOX_PORT=str(self.microsoft_sandbox_port), WEB_CONCURRENCY="1",
                   WEBHOOK_SWEEP_SECONDS="1", PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen([sys.executable, "-m", "callnfy_integrations.dev.run"], cwd=REPO_ROOT,
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        start_new_session=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_banner(self) -> None:
        wait_for(lambda: "Dev JWT" in self.output or self.process.poll() is not None, timeout=120)
        assert "Dev JWT" in self.output, self.output

    def dev_jwt(self) -> str:
        return next(line.split()[-1] for line in self.lines if line.strip().startswith("Dev JWT"))

    def lines_after_banner(self) -> list[str]:
        return self.lines[next(i for i, line in enumerate(self.lines) if "Dev JWT" in line) + 1:]

    def ctrl_c(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)  # the terminal signals the whole foreground group

    def finish(self, timeout: float = 60) -> int:
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """After a failed test: no process tree left behind (the instance fixture stops the rest)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def survivors(instance: Path) -> list[str]:
    """Processes of this run still alive: carrying its INSTANCE_DIR (honcho and every process it runs),
    naming it in their command line (PostgreSQL's data directory) or working in it (redis-server)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            environ = (entry / "environ").read_bytes().split(b"\0")
            cwd = os.readlink(entry / "cwd")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if (entry / "stat").read_text().split(") ")[-1].startswith("Z"):
            continue  # a zombie has ended; only its parent has yet to read its status
        if str(instance) in cmdline or cwd.startswith(str(instance)) or f"INSTANCE_DIR={instance}".encode() in environ:
            found.append(f"{entry.name} {cmdline}")
    return found


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on this TCP port (from /proc/net/tcp and tcp6)."""
    import ipaddress

    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)  # the kernel prints each 32-bit word in host (little-endian) order
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(str(ipaddress.ip_address(raw)))
    return found


def gunicorn_bind(**environ: str) -> list[str]:
    """What the web process binds (gunicorn.conf.py), as gunicorn itself resolves it."""
    script = ("import sys; sys.argv = ['gunicorn', '--config', 'gunicorn.conf.py', 'wsgi:app']\n"
              "from gunicorn.app.wsgiapp import WSGIApplication; print(WSGIApplication().cfg.bind)")
    env = {"PATH": os.environ["PATH"], "PORT": "5123", **environ}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return ast.literal_eval(result.stdout)


PRODUCTION = {"APP_ENV": "production", "SECRET_KEY": "s", "JWT_SECRET_KEY": "j", "DATABASE_URL": "postgres://u@h/d",
              "REDIS_URL": "redis://h:6379/0", "ENCRYPTION_KEYS": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
              "PUBLIC_API_URL": "https://integrations.callnfy.test", "FRONTEND_URL": "https://app.callnfy.test"}


@pytest.mark.processes
@pytest.mark.parametrize("environ, bind", [
    ({"APP_ENV": "development"}, ["127.0.0.1:5123"]),  # make run
    ({"APP_ENV": "testing"}, ["127.0.0.1:5123"]),
    ({"APP_ENV": "development", "BIND_HOST": "0.0.0.0"}, ["0.0.0.0:5123"]),  # told otherwise
    ({"APP_ENV": "development", "BIND_HOST": "::1"}, ["[::1]:5123"]),
    (PRODUCTION, ["0.0.0.0:5123"]),  # Heroku's router connects from outside the dyno
])
def test_the_web_process_binds_loopback_unless_told_otherwise(environ, bind):
    assert gunicorn_bind(**environ) == bind


@pytest.fixture
def clean_environ(monkeypatch):
    """os.environ without what the developer's shell might carry (devrun reads os.environ)."""
    for name in [name for name in os.environ if name.startswith(_INHERITED)]:
        monkeypatch.delenv(name)
    return monkeypatch


def test_without_microsoft_credentials_microsoft_is_the_sandbox(clean_environ):
    clean_environ.setenv("MICROSOFT_SANDBOX_PORT", "5123")
    env, sandboxes = devrun._environment()
    sandbox = "http://127.0.0.1:5123"
    assert sandboxes == {"sandbox": "http://127.0.0.1:5099", "microsoft-sandbox": sandbox}
    assert {name: env[name] for name in env if name.startswith("MICROSOFT_")} == {
        "MICROSOFT_CLIENT_ID": microsoft_sandbox.CLIENT_ID, "MICROSOFT_CLIENT_SECRET": microsoft_sandbox.CLIENT_SECRET,
        "MICROSOFT_TENANT": "common", "MICROSOFT_AUTHORITY_URL": sandbox, "MICROSOFT_GRAPH_URL": f"{sandbox}/v1.0",
        "MICROSOFT_SANDBOX_PORT": "5123"}


def test_with_microsoft_credentials_microsoft_is_microsoft(clean_environ):
    clean_environ.setenv("MICROSOFT_CLIENT_ID", "a-real-app")
    clean_environ.setenv("MICROSOFT_CLIENT_SECRET", "its-secret")
    clean_environ.setenv("MICROSOFT_TENANT", "organizations")
    clean_environ.setenv("GOOGLE_CLIENT_ID", "a-real-google-client")
    env, sandboxes = devrun._environment()
    assert sandboxes == {}
    assert {name: env[name] for name in env if name.startswith("MICROSOFT_")} == {
        "MICROSOFT_CLIENT_ID": "a-real-app", "MICROSOFT_CLIENT_SECRET": "its-secret",
        "MICROSOFT_TENANT": "organizations"}  # the real endpoints: config.py's defaults


def embedded_postgres(instance: Path) -> list[str]:
    return [p for p in survivors(instance) if "postgres -D" in p]


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    """An instance directory whose PostgreSQL data directory exists (one initdb for the module's runs)."""
    import pgserver

    directory = tmp_path_factory.mktemp("devrun-instance")
    pgserver.get_server(directory / "postgres", cleanup_mode="stop").cleanup()
    assert embedded_postgres(directory) == []
    yield directory
    for survivor in survivors(directory):  # only after a failed test; the directory is going away
        os.kill(int(survivor.split()[0]), signal.SIGKILL)


@pytest.mark.processes
def test_ctrl_c_stops_every_process_and_the_embedded_servers_and_the_run_is_quiet(instance):
    run = DevRun(instance)
    try:
        run.wait_for_banner()
        assert embedded_postgres(instance), "the run did not start its own PostgreSQL"
        console = f"http://localhost:{run.port}/dev/integrations"
        assert f"Console    {console}" in run.output
        assert f"Microsoft  sandbox at http://127.0.0.1:{run.microsoft_sandbox_port}" in run.output
        page = requests.get(f"http://127.0.0.1:{run.port}/dev/integrations", timeout=10)
        assert page.status_code == 200 and "console-config" in page.text
        # The console hands out JWTs: nothing of this run listens beyond this machine.
        assert listening_addresses(run.port) == {"127.0.0.1"}
        assert f"Listening  127.0.0.1:{run.port}" in run.output
        assert not [line for line in run.lines_after_banner() if '"logger": "rq.' in line], run.output
        wait_for(lambda: [line for line in run.lines_after_banner()  # the page request's own log line
                          if '"message": "request"' in line and "/dev/integrations" in line], timeout=10)
        quiet_from = len(run.lines)
        time.sleep(4)  # four webhook sweeps (WEBHOOK_SWEEP_SECONDS=1) that find nothing
        assert run.lines[quiet_from:] == []
        # Microsoft's Connect goes to the sandbox the run started, whose consent page answers.
        connect = requests.post(f"http://127.0.0.1:{run.port}/integrations/microsoft/connect", timeout=10,
                                headers={"Authorization": f"Bearer {run.dev_jwt()}"})
        assert connect.status_code == 200, connect.text
        authority = f"http://127.0.0.1:{run.microsoft_sandbox_port}/common/oauth2/v2.0"
        assert connect.json()["data"]["authUrl"].startswith(f"{authority}/authorize?")
        consent = requests.get(connect.json()["data"]["authUrl"], timeout=10)
        assert consent.status_code == 200 and "Microsoft sandbox" in consent.text
        run.ctrl_c()
        returncode = run.finish()
    finally:
        run.kill()
    assert survivors(instance) == []
    assert returncode == 130


@pytest.mark.processes
def test_sigterm_stops_every_process_and_the_embedded_servers(instance):
    run = DevRun(instance)
    try:
        run.wait_for_banner()
        run.process.send_signal(signal.SIGTERM)  # to devrun alone: honcho hears it from devrun
        returncode = run.finish()
    finally:
        run.kill()
    assert survivors(instance) == []
    assert returncode == 130


@pytest.mark.processes
@pytest.mark.parametrize("busy_port", ["sandbox_port", "microsoft_sandbox_port"])
def test_a_process_that_cannot_start_stops_everything(instance, busy_port):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        run = DevRun(instance, **{busy_port: busy.getsockname()[1]})  # that sandbox cannot listen
        try:
            returncode = run.finish(timeout=120)
        finally:
            run.kill()
    assert survivors(instance) == []
    assert returncode != 0
    assert "Port" in run.output and "is in use" in run.output
    assert "Dev JWT" not in run.output  # no banner for a run that is not up


@pytest.mark.processes
def test_a_holder_that_died_does_not_keep_postgres_running(instance):
    """pgserver stops its server when the last holder lets go; a holder that died without letting go
    (SIGKILL, a closed terminal) used to stay listed, and from then on no run ever stopped PostgreSQL."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    (instance / "postgres" / ".handle_pids.json").write_text(json.dumps([gone.pid]))
    run = DevRun(instance)
    try:
        run.wait_for_banner()
        run.ctrl_c()
        returncode = run.finish()
    finally:
        run.kill()
    assert embedded_postgres(instance) == []
    assert returncode == 130
