"""Leases: Redis locks held for as long as their holder runs, and only seconds longer."""

from __future__ import annotations

import threading

from redis.exceptions import LockError, RedisError

from .queues import redis_connection

LOCK_LEASE_SECONDS = 15  # how long a lock outlives a holder that was killed (it is renewed while held)


class Lease:
    """A Redis lock held for as long as its holder runs, and at most LOCK_LEASE_SECONDS longer.

    The lock's TTL is short and a thread renews it every third of that while it is held. A TTL
    sized for the longest run instead (minutes: several Calendar calls with a 10 s timeout each)
    outlives a SIGKILLed worker by as long, and every push or sync of that appointment or calendar
    would meanwhile wait behind the dead holder, holding a worker while it waits.
    """

    def __init__(self, name: str, *, wait: float):
        # Not thread-local: the renewing thread presents the holder's token.
        self.lock = redis_connection().lock(name, timeout=LOCK_LEASE_SECONDS, blocking_timeout=wait,
                                            thread_local=False)
        self._released = threading.Event()

    def acquire(self) -> bool:
        try:
            acquired = self.lock.acquire()
        except RedisError:
            return False
        if acquired:
            threading.Thread(target=self._renew, name="lock-lease", daemon=True).start()
        return acquired

    def _renew(self) -> None:
        while not self._released.wait(LOCK_LEASE_SECONDS / 3):
            try:
                self.lock.reacquire()
            except (LockError, RedisError):  # lost (Redis flushed): the next holder takes a fresh one
                return

    def release(self) -> None:
        self._released.set()
        try:
            self.lock.release()
        except (LockError, RedisError):  # expired, or Redis was flushed meanwhile: nothing to release
            pass

