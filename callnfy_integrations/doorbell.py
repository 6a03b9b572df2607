"""A doorbell: ids waiting in a Redis set, and one drain job enqueued only while none is pending.

One RQ job costs several Redis round trips and milliseconds of worker CPU; ringing per item and
draining in batches lets one job serve hundreds of items. The ids wait in a sorted set scored by
when they first rang: ringing an id that is already waiting adds nothing (a sweep that rings
thousands of due ids twice does not double the work), and the drain pops the oldest first.
Redis holds only the doorbell: the rows in PostgreSQL are the truth, and each area's sweeper
rings again for items still due — and `repair`s the doorbell when the drain job its flag promises
was lost (a worker took it off the queue and was killed before it started).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from redis import Redis

from . import process_flags

log = logging.getLogger(__name__)

# A lost drain job only delays the next one this long: Redis lost it, or a worker took it off the
# queue and was killed before it started (and cleared the flag) — until the flag expires, every ring
# and every sweep finds a drain "already waiting". Short, because a drain that is really waiting
# longer than this only gets a second one enqueued beside it (drains share their work safely).
FLAG_TTL = 30
STARTING_SECONDS = 5  # a drain clears its flag as it starts: one started longer ago that has not is dead

# Replace the flag only while it still names the lost job (a drain may have answered meanwhile).
_REPLACE_FLAG = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3])
    return 1
end
return 0
"""


@dataclass(frozen=True)
class Doorbell:
    name: str
    job: str  # dotted path of the drain job, e.g. "jobs.events.drain_outbox"
    queue: str
    job_timeout: Callable[[], int] | None = None  # RQ's job_timeout for the drain job, when it needs one

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
        job_id = uuid.uuid4().hex  # the flag names the drain job it promises (see `repair`)
        with connection.pipeline(transaction=False) as pipe:
            pipe.zadd(self.ready_key, {str(i): now for i in ids}, nx=True)  # nx: keep the first ring's place
            pipe.set(self.flag_key, job_id, nx=True, ex=FLAG_TTL)
            _, newly_scheduled = pipe.execute()
        if newly_scheduled:
            self._enqueue(connection, job_id)

    @property
    def rang_key(self) -> str:
        return f"callnfy:{self.name}:rang"

    def wake(self, connection: Redis) -> None:
        """For drains that find their own work: tell a running drain (`rang`), and enqueue the drain
        job unless one is already waiting."""
        job_id = uuid.uuid4().hex
        with connection.pipeline(transaction=False) as pipe:
            pipe.set(self.rang_key, 1, ex=FLAG_TTL)
            pipe.set(self.flag_key, job_id, nx=True, ex=FLAG_TTL)
            _, newly_scheduled = pipe.execute()
        if newly_scheduled:
            self._enqueue(connection, job_id)

    def rang(self, connection: Redis) -> bool:
        """True once per `wake` since the last call: a running drain looks for new work at once."""
        return bool(connection.delete(self.rang_key))

    def answer(self, connection: Redis) -> None:
        """Called by a drain job as it starts: a ring from now on enqueues the next one."""
        connection.delete(self.flag_key)

    def repair(self, connection: Redis) -> bool:
        """For the sweepers: enqueue the drain anew when the one the flag promises can no longer run.

        A worker that took the drain job off the queue and was killed before the job started (and
        cleared the flag) leaves the flag up with no drain coming: until it expires, every ring and
        every sweep finds a drain "already waiting". The job is fine when it still waits in its queue
        (or is scheduled), or started moments ago; otherwise another is enqueued. A job taken a moment
        ago and about to start looks lost too: it then gets a second drain beside it, which is harmless.
        True when it enqueued one."""
        promised = connection.get(self.flag_key)
        if promised is None or self._will_run(connection, promised.decode()):
            return False
        job_id = uuid.uuid4().hex
        if not connection.eval(_REPLACE_FLAG, 1, self.flag_key, promised, job_id, FLAG_TTL):
            return False
        log.warning("a drain job was lost before it started; enqueued another", extra={"doorbell": self.name})
        self._enqueue(connection, job_id)
        return True

    def _will_run(self, connection: Redis, job_id: str) -> bool:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job, JobStatus

        from .queues import get_queue

        if connection.lpos(get_queue(self.queue, connection=connection).key, job_id) is not None:
            return True  # still waiting in its queue
        try:
            job = Job.fetch(job_id, connection=connection)
        except NoSuchJobError:
            return False
        status = job.get_status(refresh=False)
        if status in (JobStatus.SCHEDULED, JobStatus.DEFERRED):
            return True
        started = job.started_at
        if status == JobStatus.STARTED and started is not None:
            started = started if started.tzinfo else started.replace(tzinfo=UTC)
            return (datetime.now(UTC) - started).total_seconds() < STARTING_SECONDS
        return False

    def waiting(self, connection: Redis) -> list[str]:
        """The ids waiting, oldest first."""
        return [item.decode() for item in connection.zrange(self.ready_key, 0, -1)]

    def _enqueue(self, connection: Redis, job_id: str) -> None:
        from .queues import enqueue

        options = {"timeout": self.job_timeout()} if self.job_timeout else {}
        enqueue(self.job, queue=self.queue, connection=connection, result_ttl=0, failure_ttl=86400, job_id=job_id,
                **options)

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
            if time.monotonic() > deadline or process_flags.stopping():
                # A long list: hand over to a fresh job so other queues' work interleaves.
                job_id = uuid.uuid4().hex
                if connection.set(self.flag_key, job_id, nx=True, ex=FLAG_TTL):
                    self._enqueue(connection, job_id)
                return handled
