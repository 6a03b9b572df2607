"""A doorbell: ids waiting in a Redis set, and one drain job enqueued only while none is pending.

One RQ job costs several Redis round trips and milliseconds of worker CPU; ringing per item and
draining in batches lets one job serve hundreds of items. The ids wait in a sorted set scored by
when they first rang: ringing an id that is already waiting adds nothing (a sweep that rings
thousands of due ids twice does not double the work), and the drain pops the oldest first.
Redis holds only the doorbell: the rows in PostgreSQL are the truth, and each area's sweeper
rings again for items still due.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Optional

from redis import Redis

log = logging.getLogger(__name__)

FLAG_TTL = 300  # a lost drain job (Redis restart, crash) only delays the next one this long


def _stopping() -> bool:
    from .worker import stopping

    return stopping()


@dataclass(frozen=True)
class Doorbell:
    name: str
    job: str  # dotted path of the drain job, e.g. "jobs.events.drain_outbox"
    queue: str
    job_timeout: Optional[Callable[[], int]] = None  # RQ's job_timeout for the drain job, when it needs one

    @property
    def ready_key(self) -> str:
        return f"callnfy:{self.name}:waiting"  # a sorted set (was a list under :ready)

    @property
    def flag_key(self) -> str:
        return f"callnfy:{self.name}:drain-scheduled"

    def ring(self, ids: list, connection: Redis) -> None:
        """Queue these ids for the drain; enqueue the drain job unless one is already waiting."""
        if not ids:
            return
        now = time.time()
        with connection.pipeline(transaction=False) as pipe:
            pipe.zadd(self.ready_key, {str(i): now for i in ids}, nx=True)  # nx: keep the first ring's place
            pipe.set(self.flag_key, 1, nx=True, ex=FLAG_TTL)
            _, newly_scheduled = pipe.execute()
        if newly_scheduled:
            self._enqueue(connection)

    @property
    def rang_key(self) -> str:
        return f"callnfy:{self.name}:rang"

    def wake(self, connection: Redis) -> None:
        """For drains that find their own work: tell a running drain (`rang`), and enqueue the drain
        job unless one is already waiting."""
        with connection.pipeline(transaction=False) as pipe:
            pipe.set(self.rang_key, 1, ex=FLAG_TTL)
            pipe.set(self.flag_key, 1, nx=True, ex=FLAG_TTL)
            _, newly_scheduled = pipe.execute()
        if newly_scheduled:
            self._enqueue(connection)

    def rang(self, connection: Redis) -> bool:
        """True once per `wake` since the last call: a running drain looks for new work at once."""
        return bool(connection.delete(self.rang_key))

    def answer(self, connection: Redis) -> None:
        """Called by a drain job as it starts: a ring from now on enqueues the next one."""
        connection.delete(self.flag_key)

    def waiting(self, connection: Redis) -> list[str]:
        """The ids waiting, oldest first."""
        return [item.decode() for item in connection.zrange(self.ready_key, 0, -1)]

    def _enqueue(self, connection: Redis) -> None:
        from .queues import enqueue

        options = {"timeout": self.job_timeout()} if self.job_timeout else {}
        enqueue(self.job, queue=self.queue, connection=connection, result_ttl=0, failure_ttl=86400, **options)

    def drain(self, connection: Redis, handle: Callable[[list[str]], int], *, batch: int = 100,
              budget_seconds: float = 10.0) -> int:
        """Pop ids in batches and pass each (deduplicated) batch to `handle`, for at most the budget."""
        # Cleared before popping: an id pushed from now on is either popped below or rings anew.
        self.answer(connection)
        deadline = time.monotonic() + budget_seconds
        handled = 0
        while True:
            popped = connection.zpopmin(self.ready_key, batch)
            if not popped:
                return handled
            handled += handle([member.decode() if isinstance(member, bytes) else member for member, _ in popped])
            if time.monotonic() > deadline or _stopping():
                # A long list: hand over to a fresh job so other queues' work interleaves.
                if connection.set(self.flag_key, 1, nx=True, ex=FLAG_TTL):
                    self._enqueue(connection)
                return handled
