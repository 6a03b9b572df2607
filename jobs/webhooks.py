"""Webhook jobs: the drain that sends due deliveries, the sweeper, and the wake-up at a retry's time.

These are the edge of delivery's unit of work: `zapier.delivery` only runs statements, and the
commits here decide what survives a crash. The drain claims only what its free senders can start
now, commits the claim, and commits each outcome as soon as its attempt ends (in one transaction
with the claim that refills its sender): a worker killed mid-drain loses no finished outcome, and
each unfinished claim comes back when its lease ends.
"""

from __future__ import annotations

import logging
import queue
import time
from datetime import datetime

from flask import current_app

from callnfy_integrations import process_flags
from callnfy_integrations.extensions import db
from callnfy_integrations.queues import WEBHOOKS, enqueue_at, get_queue, redis_connection
from callnfy_integrations.timestamps import utcnow
from callnfy_integrations.zapier import delivery

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # with senders free and attempts in flight: how often the database is asked for due work
RING_CHECK_SECONDS = 0.02  # … and how often the doorbell is checked (a Redis DEL)
IDLE_WAIT_SECONDS = 3.0  # nothing in flight: wait this long at most for the next due retry
OTHER_QUEUES_CHECK_SECONDS = 1.0
COALESCE_SECONDS = 0.01
WAKE_KEY = "callnfy:webhooks:wake-at"


def send_webhooks() -> int:  # noqa: C901  (split by the thin-jobs change)
    """Send due deliveries until none is due or the drain's budget is spent; returns attempts made."""
    config = current_app.config
    connection = redis_connection()
    bell = delivery.WEBHOOKS_BELL
    bell.answer(connection)
    bell.rang(connection)
    engine = delivery.sender()
    budget_end = time.monotonic() + config["WEBHOOK_DRAIN_SECONDS"]
    finished: queue.SimpleQueue = queue.SimpleQueue()
    in_flight = attempts = 0
    next_claim = 0.0
    stopping = False
    others_checked = 0.0
    while True:
        outcomes = _take(finished, block=False)
        if outcomes:
            delivery.record(outcomes)
            in_flight -= len(outcomes)
            next_claim = 0.0  # a sender is free: look for work at once
        now = time.monotonic()
        if not stopping and (now >= budget_end or process_flags.stopping()
                             or (now >= others_checked and _other_queues_waiting())):
            stopping = True  # hand over: finish what is in flight, then let the worker run other jobs
        if now >= others_checked:
            others_checked = now + OTHER_QUEUES_CHECK_SECONDS
        claiming = not stopping and in_flight < engine.concurrency and (now >= next_claim or bell.rang(connection))
        if outcomes and not claiming:
            db.session.commit()  # each outcome is durable as soon as its attempt ends
        if claiming:
            slots = engine.concurrency - in_flight
            claimed = _claim(slots, outcomes)  # one commit: the outcomes, then the claim
            for item in claimed:  # committed: send
                engine.submit(item.request).add_done_callback(
                    lambda future, item=item: finished.put(delivery.Outcome(item, future.result())))
            in_flight += len(claimed)
            attempts += len(claimed)
            if len(claimed) < slots:
                # Nothing more is claimable now (no due work, or its accounts at their limit): look
                # again when an attempt ends, the doorbell rings, or at the next poll.
                next_claim = now + POLL_SECONDS
            if not claimed:
                if in_flight == 0:
                    wait = _seconds_until_next_due()
                    if wait is None or wait > IDLE_WAIT_SECONDS or now + wait > budget_end:
                        break
                    next_claim = now + wait
        if stopping and in_flight == 0:
            break
        # Sleep until an attempt ends or it is time to look for work again.
        # With senders free, wake every RING_CHECK_SECONDS to see whether the doorbell rang.
        timeout = 1.0 if stopping or in_flight >= engine.concurrency else min(
            RING_CHECK_SECONDS, max(0.0, next_claim - time.monotonic()))
        outcomes = _take(finished, block=True, timeout=timeout)
        if outcomes and in_flight - len(outcomes) > 0:
            # Let a few more attempts end (at most COALESCE_SECONDS) so one commit records them
            # together and one claim refills their senders: fewer round trips per delivery.
            coalesce_until = time.monotonic() + COALESCE_SECONDS
            while len(outcomes) < max(1, engine.concurrency // 4) and len(outcomes) < in_flight:
                more = _take(finished, block=True, timeout=max(0.0, coalesce_until - time.monotonic()))
                if not more:
                    break
                outcomes.extend(more)
        for outcome in outcomes:
            finished.put(outcome)
    _after_drain(stopping)
    return attempts


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


def _take(finished: queue.SimpleQueue, *, block: bool, timeout: float | None = None) -> list:
    items = []
    try:
        items.append(finished.get(block=block, timeout=timeout) if block else finished.get_nowait())
        while True:
            items.append(finished.get_nowait())
    except queue.Empty:
        pass
    return items


def _other_queues_waiting() -> bool:
    """Jobs wait on another queue this worker serves (a worker serving every queue must not let a
    webhook backlog hold its outbox and calendar jobs)."""
    others = [name for name in process_flags.served_queues() if name != WEBHOOKS]
    return any(get_queue(name).count for name in others)


def _seconds_until_next_due() -> float | None:
    due = delivery.next_due_at()
    db.session.commit()
    return None if due is None else max(0.0, (due - utcnow()).total_seconds())


def _after_drain(handed_over: bool) -> None:
    """Make sure the next due delivery is sent on time: now (another drain) or at its due time."""
    due = delivery.next_due_at()
    db.session.commit()
    if due is None:
        return
    if handed_over or due <= utcnow():
        delivery.ring()
    else:
        schedule_wake(due)


def schedule_wake(at: datetime) -> None:
    """Run a drain at `at` (RQ's scheduler, within a second), unless one is already set for then or earlier.

    This is what makes retries fire on schedule rather than at the next sweep."""
    connection = redis_connection()
    stamp = at.timestamp()
    current = connection.get(WAKE_KEY)
    if current is not None and time.time() - 1 < float(current) <= stamp + 0.25:
        return  # an earlier (or the same) wake is still ahead
    connection.set(WAKE_KEY, repr(stamp), ex=max(1, int(stamp - time.time()) + 60))
    enqueue_at(at, send_webhooks, queue=WEBHOOKS, connection=connection,
               job_timeout=delivery.drain_job_timeout(current_app.config), result_ttl=0, failure_ttl=86400)


def sweep_webhooks() -> bool:
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
