"""A job that only records how long it waited in the queue: the floor for commit-to-dispatch latency."""

import time

from callnfy_integrations.queues import redis_connection


def record_queue_latency(enqueued_at: float) -> None:
    redis_connection().rpush("bench:queue-latency", time.time() - enqueued_at)
