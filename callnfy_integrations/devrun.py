"""`make run`: embedded services when no URLs are set, migrate, then web + worker + scheduler via honcho."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    from . import embedded
    from .cli import DEV_USER_ID

    env = dict(os.environ)
    env.setdefault("APP_ENV", "development")
    env.setdefault("SECRET_KEY", secrets.token_hex(32))  # one per dev run, shared by its processes
    env.setdefault("PORT", "5000")
    env.setdefault("WEB_CONCURRENCY", "2")
    # The Procfile's commands (gunicorn, flask) live next to this interpreter, in the virtualenv.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    processes = ["web", "worker", "webhooks", "scheduler"]
    if not env.get("GOOGLE_CLIENT_ID"):
        # No Google credentials: the local Google sandbox stands in, so Connect works in a browser.
        from .google_sandbox import CLIENT_ID, CLIENT_SECRET

        sandbox = f"http://127.0.0.1:{env.setdefault('SANDBOX_PORT', '5099')}"
        env.update(GOOGLE_CLIENT_ID=CLIENT_ID, GOOGLE_CLIENT_SECRET=CLIENT_SECRET,
                   GOOGLE_AUTHORIZE_URL=f"{sandbox}/o/oauth2/v2/auth", GOOGLE_TOKEN_URL=f"{sandbox}/token",
                   GOOGLE_USERINFO_URL=f"{sandbox}/v1/userinfo", GOOGLE_REVOKE_URL=f"{sandbox}/revoke",
                   GOOGLE_CALENDAR_API_URL=f"{sandbox}/calendar/v3/")
        processes.append("sandbox")
    instance = Path(env.get("INSTANCE_DIR") or ROOT / "instance")
    if not env.get("DATABASE_URL"):
        print("starting embedded PostgreSQL under", instance / "postgres", flush=True)
        env["DATABASE_URL"] = embedded.start_postgres(instance / "postgres")
    if not env.get("REDIS_URL"):
        print("starting embedded Redis under", instance / "redis", flush=True)
        env["REDIS_URL"] = embedded.start_redis(instance / "redis")

    try:
        from flask_migrate import upgrade

        from . import create_app
        from .auth import create_dev_token
        from .config import load_config

        app = create_app(load_config(env))
        with app.app_context():
            upgrade()
            token = create_dev_token(DEV_USER_ID)
            app.extensions["sqlalchemy"].engine.dispose()  # the children open their own connections

        base = f"http://localhost:{env['PORT']}"
        print(f"""
  Callnfy Integrations (development)
  API        {base}
  Docs       {base}/docs
  Dev JWT    {token}
  Try        curl -H "Authorization: Bearer {token}" {base}/integrations/status
  Google     {"sandbox at " + env["GOOGLE_AUTHORIZE_URL"].rsplit("/o/", 1)[0] if "sandbox" in processes
              else "real Google (GOOGLE_CLIENT_ID is set)"}
""", flush=True)
        honcho = [sys.executable, "-m", "honcho", "start", "-f", str(ROOT / "Procfile.dev"), "-d", str(ROOT),
                  "-p", env["PORT"], *processes]
        process = subprocess.Popen(honcho, env=env, cwd=ROOT)
        try:
            return process.wait()
        except KeyboardInterrupt:
            # Ctrl-C reaches honcho too (same process group); give it time to stop its children.
            process.send_signal(signal.SIGINT)
            try:
                return process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                return process.wait()
    finally:
        embedded.stop_all()


if __name__ == "__main__":
    sys.exit(main())
