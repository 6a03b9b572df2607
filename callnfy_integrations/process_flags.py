"""Process-wide flags of a worker process: asked to stop, and the queues it serves.

Tiny and without imports of its own on purpose: long jobs and the doorbell check these between steps,
and importing the worker for them would tie the domain to the worker (and the worker to the jobs).
"""

from __future__ import annotations

import threading

_stopping = threading.Event()
_served: tuple[str, ...] = ()


def stopping() -> bool:
    """True once this process's worker was asked to stop (SIGTERM: Heroku's restart, or Ctrl-C).
    Long jobs check it between steps, hand the rest over, and return well inside the 30 s grace."""
    return _stopping.is_set()


def request_stop() -> None:
    _stopping.set()


def served_queues() -> tuple[str, ...]:
    """The queues this process's worker listens on (empty outside a worker's run)."""
    return _served


def serving(queues: tuple[str, ...]) -> None:
    """A worker starts its run (the flags of an earlier run in this process are forgotten)."""
    global _served
    _served = tuple(queues)
    _stopping.clear()


def done_serving() -> None:
    global _served
    _served = ()
