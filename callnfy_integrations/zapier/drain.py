"""The webhook drain: sends due deliveries until none is due or its budget is spent. `jobs.webhooks`
runs it; the sweeper and the retry wake-ups that start it are here too.

The drain is the edge of delivery's unit of work (`delivery.py` only runs statements): it claims only
what its free senders can start now, commits the claim, and commits each outcome as soon as its
attempt ends (in one transaction with the claim that refills its sender). A worker killed mid-drain
loses no finished outcome, and each unfinished claim comes back when its lease ends.
"""

from __future__ import annotations

import logging
import queue
import time
from datetime import datetime

from flask import current_app

from .. import process_flags
from ..extensions import db
from ..queues import WEBHOOKS, enqueue_at, get_queue, redis_connection
from ..timestamps import utcnow
from . import delivery

log = logging.getLogger(__name__)

DRAIN_JOB = "jobs.webhooks.send_webhooks"
POLL_SECONDS = 0.5  # with senders free and attempts in flight: how often the database is asked for due work
RING_CHECK_SECONDS = 0.02  # … and how often the doorbell is checked (a Redis DEL)
IDLE_WAIT_SECONDS = 3.0  # nothing in flight: wait this long at most for the next due retry
OTHER_QUEUES_CHECK_SECONDS = 1.0
COALESCE_SECONDS = 0.01
WAKE_KEY = "callnfy:webhooks:wake-at"


class Drain:
    """One drain job's run. Each round: record the attempts that ended, decide whether to hand over,
    claim for the free senders (or find there is nothing left to do), then wait for an attempt to end
    or the next time to look for work."""

    def __init__(self) -> None:
        self.connection = redis_connection()
        self.bell = delivery.WEBHOOKS_BELL
        self.engine = delivery.sender()
        self.budget_end = time.monotonic() + current_app.config["WEBHOOK_DRAIN_SECONDS"]
        self.finished: queue.SimpleQueue = queue.SimpleQueue()
        self.in_flight = self.attempts = 0
        self.next_claim = self.others_checked = 0.0
        self.handing_over = False

    def run(self) -> int:
        """Returns the attempts made."""
        self.bell.answer(self.connection)
        self.bell.rang(self.connection)
        outcomes: list = []
        while True:
            outcomes += self._take(block=False)  # what ended while this round began, too
            if outcomes:
                delivery.record(outcomes)
                self.in_flight -= len(outcomes)
                self.next_claim = 0.0  # a sender is free: look for work at once
            now = time.monotonic()
            self._decide_to_hand_over(now)
            if self._claiming(now):
                if not self._claim(outcomes, now):
                    break  # nothing in flight, nothing due soon
            elif outcomes:
                db.session.commit()  # each outcome is durable as soon as its attempt ends
            if self.handing_over and self.in_flight == 0:
                break
            outcomes = self._wait()
        self._after()
        return self.attempts

    # -- the steps of a round

    def _decide_to_hand_over(self, now: float) -> None:
        """Hand over (finish what is in flight, then let the worker run other jobs) when the budget is
        spent, the worker is stopping, or other queues this worker serves have jobs waiting."""
        if not self.handing_over and (now >= self.budget_end or process_flags.stopping()
                                      or (now >= self.others_checked and _other_queues_waiting())):
            self.handing_over = True
        if now >= self.others_checked:
            self.others_checked = now + OTHER_QUEUES_CHECK_SECONDS

    def _claiming(self, now: float) -> bool:
        return not self.handing_over and self.in_flight < self.engine.concurrency and (
            now >= self.next_claim or self.bell.rang(self.connection))

    def _claim(self, recorded: list, now: float) -> bool:
        """Claim for the free senders, commit, and start each attempt; False when the drain is done."""
        slots = self.engine.concurrency - self.in_flight
        claimed = _claim(slots, recorded)  # one commit: the outcomes, then the claim
        for item in claimed:  # committed: send
            self.engine.submit(item.request).add_done_callback(
                lambda future, item=item: self.finished.put(delivery.Outcome(item, future.result())))
        self.in_flight += len(claimed)
        self.attempts += len(claimed)
        if len(claimed) < slots:
            # Nothing more is claimable now (no due work, or its accounts at their limit): look again
            # when an attempt ends, the doorbell rings, or at the next poll.
            self.next_claim = now + POLL_SECONDS
        if claimed or self.in_flight:
            return True
        wait = _seconds_until_next_due()
        if wait is None or wait > IDLE_WAIT_SECONDS or now + wait > self.budget_end:
            return False
        self.next_claim = now + wait
        return True

    def _wait(self) -> list:
        """Sleep until an attempt ends or it is time to look for work again (with senders free, every
        RING_CHECK_SECONDS, to see whether the doorbell rang). Then let a few more attempts end (at
        most COALESCE_SECONDS) so one commit records them together and one claim refills their
        senders: fewer round trips per delivery."""
        timeout = 1.0 if self.handing_over or self.in_flight >= self.engine.concurrency else min(
            RING_CHECK_SECONDS, max(0.0, self.next_claim - time.monotonic()))
        outcomes = self._take(block=True, timeout=timeout)
        if outcomes and self.in_flight - len(outcomes) > 0:
            coalesce_until = time.monotonic() + COALESCE_SECONDS
            while len(outcomes) < max(1, self.engine.concurrency // 4) and len(outcomes) < self.in_flight:
                more = self._take(block=True, timeout=max(0.0, coalesce_until - time.monotonic()))
                if not more:
                    break
                outcomes.extend(more)
        return outcomes

    def _take(self, *, block: bool, timeout: float | None = None) -> list:
        items = []
        try:
            items.append(self.finished.get(block=block, timeout=timeout) if block else self.finished.get_nowait())
            while True:
                items.append(self.finished.get_nowait())
        except queue.Empty:
            pass
        return items

    def _after(self) -> None:
        """Make sure the next due delivery is sent on time: now (another drain) or at its due time."""
        due = delivery.next_due_at()
        db.session.commit()
        if due is None:
            return
        if self.handing_over or due <= utcnow():
            delivery.ring()
        else:
            schedule_wake(due)


def _claim(slots: int, recorded: list) -> list:
    """Claim and commit, in one transaction with the outcomes just recorded (one commit per round,
    not two); a claim that fails does not take those outcomes with it."""
    try:
        claimed = delivery.claim(slots)
        db.session.commit()  # the outcomes are durable, and the claim is, before anything is sent
    except Exception:
        db.session.rollback()
        if recorded:
            delivery.record(recorded)
            db.session.commit()
        raise
    return claimed


def _other_queues_waiting() -> bool:
    """Jobs wait on another queue this worker serves (a worker serving every queue must not let a
    webhook backlog hold its outbox and calendar jobs)."""
    others = [name for name in process_flags.served_queues() if name != WEBHOOKS]
    return any(get_queue(name).count for name in others)


def _seconds_until_next_due() -> float | None:
    due = delivery.next_due_at()
    db.session.commit()
    return None if due is None else max(0.0, (due - utcnow()).total_seconds())


def schedule_wake(at: datetime) -> None:
    """Run a drain at `at` (RQ's scheduler, within a second), unless one is already set for then or earlier.

    This is what makes retries fire on schedule rather than at the next sweep."""
    connection = redis_connection()
    stamp = at.timestamp()
    current = connection.get(WAKE_KEY)
    if current is not None and time.time() - 1 < float(current) <= stamp + 0.25:
        return  # an earlier (or the same) wake is still ahead
    connection.set(WAKE_KEY, repr(stamp), ex=max(1, int(stamp - time.time()) + 60))
    enqueue_at(at, DRAIN_JOB, queue=WEBHOOKS, connection=connection,
               job_timeout=delivery.drain_job_timeout(current_app.config), result_ttl=0, failure_ttl=86400)


def sweep() -> bool:
    """The safety net: wake the drain when anything is due (a lost wake-up, a lost claim's lease, a
    drain job lost with the worker that had taken it: see `Doorbell.repair`)."""
    due = delivery.due_now()
    db.session.commit()  # end the read before touching Redis
    if due:
        delivery.ring()
        try:
            delivery.WEBHOOKS_BELL.repair(redis_connection())
        except Exception:
            log.warning("could not check the webhook doorbell", exc_info=True)
    return due
