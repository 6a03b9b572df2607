"""A doorbell: ids pushed onto a Redis list, and one drain job enqueued only while none is pending.

One RQ job costs several Redis round trips and milliseconds of worker CPU; ringing per item and
draining in batches lets one job serve hundreds of items. Redis holds only the doorbell: the rows
in PostgreSQL are the truth, and each area's sweeper rings again for items still due.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from redis import Redis

log = logging.getLogger(__name__)

FLAG_TTL = 300  # a lost drain job (Redis restart, crash) only delays the next one this long


@dataclass(frozen=True)
class Doorbell:
    name: str
    job: str  # dotted path of the drain job, e.g. "jobs.events.drain_outbox"
    queue: str

    @property
    def ready_key(self) -> str:
        return f"callnfy:{self.name}:ready"

    @property
    def flag_key(self) -> str:
        return f"callnfy:{self.name}:drain-scheduled"

    def ring(self, ids: list, connection: Redis) -> None:
        """Queue these ids for the drain; enqueue the drain job unless one is already waiting."""
        if not ids:
            return
        with connection.pipeline(transaction=False) as pipe:
            pipe.rpush(self.ready_key, *[str(i) for i in ids])
            pipe.set(self.flag_key, 1, nx=True, ex=FLAG_TTL)
            _, newly_scheduled = pipe.execute()
        if newly_scheduled:
            self._enqueue(connection)

    def _enqueue(self, connection: Redis) -> None:
        from .queues import enqueue

        enqueue(self.job, queue=self.queue, connection=connection, result_ttl=0, failure_ttl=86400)

    def drain(self, connection: Redis, handle: Callable[[list[str]], int], *, batch: int = 100,
              budget_seconds: float = 10.0) -> int:
        """Pop ids in batches and pass each (deduplicated) batch to `handle`, for at most the budget."""
        # Cleared before popping: an id pushed from now on is either popped below or rings anew.
        connection.delete(self.flag_key)
        deadline = time.monotonic() + budget_seconds
        handled = 0
        while True:
            raw = connection.lpop(self.ready_key, batch)
            if not raw:
                return handled
            ids = list(dict.fromkeys(item.decode() if isinstance(item, bytes) else item for item in raw))
            handled += handle(ids)
            if time.monotonic() > deadline:
                # A long list: hand over to a fresh job so other queues' work interleaves.
                if connection.set(self.flag_key, 1, nx=True, ex=FLAG_TTL):
                    self._enqueue(connection)
                return handled
