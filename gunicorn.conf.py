"""Gunicorn settings of the web dyno; the bench serves its ceiling app with this same file.

Workers come from WEB_CONCURRENCY (Heroku sets it per dyno size), read by gunicorn itself. The bind
address is BIND_HOST:PORT from the app's configuration: gunicorn alone would bind 0.0.0.0:$PORT (every
interface) whenever PORT is set, `make run` included. A `--bind` on the command line (the benches) wins.
"""

import sys

# Fail fast, as the dyno manager sees it: gunicorn's master respawns workers that exit at import, so
# a web dyno missing SECRET_KEY would look up while serving nothing. The master reads this file
# first: a configuration the app cannot run with stops it here, with the app's own message.
_target = next((arg for arg in sys.argv[1:] if arg.endswith(":app")), "wsgi:app")
if _target == "wsgi:app":  # not for the bench's ceiling app, which serves with these same settings
    from callnfy_integrations.config import ConfigError, load_config

    try:
        _config = load_config()
    except ConfigError as exc:
        sys.exit(f"callnfy-integrations: configuration error: {exc}")
    _host = _config["BIND_HOST"]
    bind = [f"[{_host}]:{_config['PORT']}" if ":" in _host else f"{_host}:{_config['PORT']}"]

wsgi_app = "wsgi:app"
worker_class = "gthread"  # threads overlap the I/O waits on PostgreSQL and Redis
threads = 4  # 4 per process: enough to overlap I/O; more only adds GIL contention and tail latency
timeout = 30
graceful_timeout = 25  # Heroku sends SIGKILL 30 s after SIGTERM
keepalive = 5
control_socket_disable = True  # not used on a dyno; several local servers would fight over it


def post_worker_init(worker):
    """Freeze the loaded app's objects out of the garbage collector's scans.

    Everything imported at start-up lives for the whole process; without this, every full
    collection walks all of it again (the larger the app, the longer the pause under load).
    """
    import gc

    gc.freeze()
