"""How many attempts each account may have in flight: the base, or more while its receiver answers fast.

One account's in-flight limit (WEBHOOK_ACCOUNT_CONCURRENCY, 4) is what keeps its slow or stalled
receiver from holding the senders every other account needs; but with a receiver that answers in a
few milliseconds it also caps that account at a fraction of what one worker can send. So an account
starts at the base and earns one more attempt in flight for each attempt answered 2xx within
WEBHOOK_FAST_ANSWER_SECONDS (doubling per round of answers, like TCP's slow start), up to
WEBHOOK_ACCOUNT_CONCURRENCY_MAX — at most half a worker's senders. Any other outcome (a slow answer,
an error, a deadline) puts it back at the base, and so does an attempt of it still in flight past
the fast threshold (the claim checks that across every worker): a receiver that starts stalling
holds at most the raised limit's senders for one deadline, then the base. The claim gives every
account its base slots before any account's extra ones.

The pace is kept per worker process, in memory: a worker that starts (or forgets an account idle for
a minute) begins at the base and learns again within a round or two of answers.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict

FORGET_AFTER_SECONDS = 60.0
REMEMBERED_ACCOUNTS = 10_000


class Pace:
    def __init__(self, *, base: int, maximum: int, fast_seconds: float):
        self.base = base
        self.maximum = max(base, maximum)
        self.fast_seconds = fast_seconds
        self._raised: OrderedDict[uuid.UUID, tuple[int, float]] = OrderedDict()  # account -> (limit, seen)
        self._lock = threading.Lock()

    def raised(self) -> dict[uuid.UUID, int]:
        """The accounts allowed more than the base, and their limits."""
        forget_before = time.monotonic() - FORGET_AFTER_SECONDS
        with self._lock:
            while self._raised and next(iter(self._raised.values()))[1] < forget_before:
                self._raised.popitem(last=False)
            return {user_id: limit for user_id, (limit, _) in self._raised.items()}

    def observe(self, user_id: uuid.UUID, *, delivered: bool, seconds: float) -> None:
        """One attempt of this account ended: delivered or not, after `seconds`."""
        with self._lock:
            if not (delivered and seconds <= self.fast_seconds):
                self._raised.pop(user_id, None)
                return
            limit, _ = self._raised.pop(user_id, (self.base, 0.0))
            if self.maximum > self.base:
                self._raised[user_id] = (min(self.maximum, limit + 1), time.monotonic())
                if len(self._raised) > REMEMBERED_ACCOUNTS:
                    self._raised.popitem(last=False)
