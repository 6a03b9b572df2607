"""`make run`: embedded services when no URLs are set, migrate, then web + worker + scheduler via honcho,
with the Google and Microsoft sandboxes standing in for providers that have no credentials.

Every way out — Ctrl-C, SIGTERM or SIGHUP (a closed terminal), a process that fails to start, an error
while starting — goes through one `finally` that stops honcho (and so every process it started) and
then the embedded PostgreSQL and Redis.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: Procfile.dev, instance/
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
HONCHO_GRACE_SECONDS = 15  # honcho itself SIGKILLs its processes 5 s after asking them to stop
READY_TIMEOUT_SECONDS = 60
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def main() -> int:
    from . import embedded

    honcho: subprocess.Popen | None = None
    # SIGTERM and SIGHUP take Ctrl-C's way out; by default they would end this process on the spot,
    # skipping the `finally` below and leaving honcho, its processes and the embedded servers running.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        env, sandboxes = _environment()
        banner, host = _prepare_services(env, sandboxes)
        processes = ["web", "worker", "webhooks", "scheduler", *sandboxes]
        honcho = subprocess.Popen([sys.executable, "-m", "honcho", "start", "-f", str(ROOT / "Procfile.dev"),
                                   "-d", str(ROOT), "-p", env["PORT"], *processes], env=env, cwd=ROOT)
        if _wait_until_serving(f"http://{host}:{env['PORT']}/healthz", honcho):
            print(banner, flush=True)  # last, so the token is the newest thing on the screen
        return honcho.wait()
    except KeyboardInterrupt:
        return 130
    finally:
        for signum in STOP_SIGNALS:  # we are stopping: a second Ctrl-C must not cut the clean-up short
            signal.signal(signum, signal.SIG_IGN)
        print("\n  stopping the processes and the embedded servers…", flush=True)
        if honcho is not None:
            _stop(honcho)
        embedded.stop_all()


def _interrupt(signum: int, frame) -> None:
    raise KeyboardInterrupt


def _environment() -> tuple[dict[str, str], dict[str, str]]:
    """The processes' environment, and the sandboxes standing in for a provider without credentials:
    Procfile.dev entry -> the sandbox's URL."""
    env = dict(os.environ)
    env.setdefault("APP_ENV", "development")
    env.setdefault("SECRET_KEY", secrets.token_hex(32))  # one per dev run, shared by its processes
    env.setdefault("PORT", "5000")
    env.setdefault("WEB_CONCURRENCY", "2")
    base = f"http://localhost:{env['PORT']}"
    env.setdefault("PUBLIC_API_URL", base)  # the OAuth callbacks and the webhook URL follow PORT
    # The OAuth callbacks end on FRONTEND_URL/settings/integrations: the console serves that path.
    env.setdefault("FRONTEND_URL", f"{base}/dev/integrations")
    # The Procfile's commands (gunicorn, flask) live next to this interpreter, in the virtualenv.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    sandboxes = {}
    if not env.get("GOOGLE_CLIENT_ID"):
        # No Google credentials: the local Google sandbox stands in, so Connect works in a browser.
        from .google_sandbox import CLIENT_ID, CLIENT_SECRET

        sandbox = sandboxes["sandbox"] = f"http://127.0.0.1:{env.setdefault('SANDBOX_PORT', '5099')}"
        env.update(GOOGLE_CLIENT_ID=CLIENT_ID, GOOGLE_CLIENT_SECRET=CLIENT_SECRET,
                   GOOGLE_AUTHORIZE_URL=f"{sandbox}/o/oauth2/v2/auth", GOOGLE_TOKEN_URL=f"{sandbox}/token",
                   GOOGLE_USERINFO_URL=f"{sandbox}/v1/userinfo", GOOGLE_REVOKE_URL=f"{sandbox}/revoke",
                   GOOGLE_CALENDAR_API_URL=f"{sandbox}/calendar/v3/")
    if not env.get("MICROSOFT_CLIENT_ID"):
        # No Microsoft credentials: the local Microsoft sandbox stands in for Entra ID and Graph.
        from .microsoft_sandbox import CLIENT_ID, CLIENT_SECRET

        port = env.setdefault("MICROSOFT_SANDBOX_PORT", "5098")
        sandbox = sandboxes["microsoft-sandbox"] = f"http://127.0.0.1:{port}"
        env.update(MICROSOFT_CLIENT_ID=CLIENT_ID, MICROSOFT_CLIENT_SECRET=CLIENT_SECRET, MICROSOFT_TENANT="common",
                   MICROSOFT_AUTHORITY_URL=sandbox, MICROSOFT_GRAPH_URL=f"{sandbox}/v1.0")
    return env, sandboxes


def _prepare_services(env: dict[str, str], sandboxes: dict[str, str]) -> tuple[str, str]:
    """Start the embedded servers (when no URLs are set) and migrate; return the banner to print and
    an address the web process answers on."""
    from .. import create_app
    from ..auth import DEV_USER_ID, create_dev_token
    from ..config import load_config
    from . import embedded

    instance = Path(env.get("INSTANCE_DIR") or ROOT / "instance")
    with _signals_held():  # pgserver interrupted half-way forgets the server it started
        if not env.get("DATABASE_URL"):
            print("starting embedded PostgreSQL under", instance / "postgres", flush=True)
            env["DATABASE_URL"] = embedded.start_postgres(instance / "postgres")
        if not env.get("REDIS_URL"):
            print("starting embedded Redis under", instance / "redis", flush=True)
            env["REDIS_URL"] = embedded.start_redis(instance / "redis")

    from flask_migrate import upgrade

    config = load_config(env)
    app = create_app(config)
    with app.app_context():
        upgrade()
        token = create_dev_token(DEV_USER_ID)
        app.extensions["sqlalchemy"].engine.dispose()  # the children open their own connections

    base, host = config["PUBLIC_API_URL"], config["BIND_HOST"]
    console = f"{base}/dev/integrations" if config["DEV_CONSOLE"] else "off (DEV_CONSOLE is off)"
    listening = f"{host}:{env['PORT']}" + ("" if host in LOOPBACK else
                                           "  (BIND_HOST: reachable from other machines, console and all)")
    banner = f"""
  Callnfy Integrations (development)
  API        {base}
  Listening  {listening}
  Docs       {base}/docs
  Console    {console}
  Dev JWT    {token}
  Try        curl -H "Authorization: Bearer {token}" {base}/integrations/status
  Google     {_provider(sandboxes.get("sandbox"), "real Google (GOOGLE_CLIENT_ID is set)")}
  Microsoft  {_provider(sandboxes.get("microsoft-sandbox"), "real Microsoft (MICROSOFT_CLIENT_ID is set)")}
"""
    answers_on = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # a wildcard includes loopback
    return banner, f"[{answers_on}]" if ":" in answers_on else answers_on


def _provider(sandbox: str | None, otherwise: str) -> str:
    return f"sandbox at {sandbox}" if sandbox else otherwise


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP until the block is done, then act on them."""
    received: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: received.append(signum))
                for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        raise KeyboardInterrupt


def _wait_until_serving(url: str, honcho: subprocess.Popen) -> bool:
    """Poll the web process until it answers; False when honcho stopped first (a process failed)."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while honcho.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except OSError:
            if time.monotonic() > deadline:
                return True  # slow, not broken: print the banner anyway
            time.sleep(0.2)
    return False


def _stop(honcho: subprocess.Popen) -> None:
    """Ask honcho to stop its processes (it may already be doing so after Ctrl-C); kill it if it hangs."""
    if honcho.poll() is None:
        honcho.send_signal(signal.SIGTERM)
    try:
        honcho.wait(timeout=HONCHO_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        honcho.kill()
        honcho.wait()


if __name__ == "__main__":
    sys.exit(main())
