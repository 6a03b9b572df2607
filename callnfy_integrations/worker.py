"""The RQ worker and the periodic-job scheduler, both run inside the Flask app."""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask
from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.cron import CronScheduler
from rq.job import Job
from rq.queue import Queue

from .queues import ALL_QUEUES, get_queue, redis_connection

log = logging.getLogger(__name__)

_served_queues: tuple[str, ...] = ()
_stopping = threading.Event()

# How often a worker whose RQ scheduler is not running tries to take over the scheduler lock.
SCHEDULER_TAKEOVER_SECONDS = 5.0


def stopping() -> bool:
    """True once this process's worker was asked to stop (SIGTERM: Heroku's restart, or Ctrl-C).
    Long jobs check it between steps, hand the rest over, and return well inside the 30 s grace."""
    return _stopping.is_set()


def served_queues() -> tuple[str, ...]:
    """The queues this process's worker listens on (empty outside a worker)."""
    return _served_queues


class AppWorker(SimpleWorker):
    """Runs jobs in the worker process itself (no fork per job), each inside a fresh app context.

    RQ's default worker forks a child per job: ~16 ms of CPU and a re-import of the job modules
    every time (~15 webhook-like jobs/s). Running in-process keeps imports, the SQLAlchemy pool and
    keep-alive HTTP sessions warm across jobs (~150 jobs/s). The price is isolation: a job that
    leaks memory or crashes the interpreter takes the worker down, and the dyno manager restarts it;
    job timeouts still apply (SIGALRM in this process).
    """

    app: Flask
    _next_takeover = 0.0
    _burst = False

    def work(self, burst: bool = False, **kwargs):
        self._burst = burst  # a burst worker runs no scheduler process, and takes none over
        return super().work(burst=burst, **kwargs)

    def heartbeat(self, timeout=None, pipeline=None):
        super().heartbeat(timeout, pipeline)
        if pipeline is None:  # the worker's own loop (between jobs, and every dequeue timeout)
            self._take_over_scheduler()

    def _take_over_scheduler(self) -> None:
        """Start RQ's scheduler here if it runs nowhere (the worker running it was killed).

        One worker's scheduler child holds a lock per queue and moves delayed jobs (retries with a
        delay, calendar backoffs, debounced two-way syncs, webhook wake-ups) to their queue. RQ
        lets the other workers try to take a dead holder's lock over only in their maintenance,
        every 10 minutes, and a worker started while the lock was still held (its 61 s TTL) waits
        as long: after a SIGKILL no delayed job would move for up to 10 minutes — a two-way
        calendar's debounced sync among them, its pending flag absorbing every notification
        meanwhile. So every few seconds a worker without a running scheduler asks for the locks
        (one Redis script per queue); the first to find them free starts the scheduler.
        """
        scheduler = self.scheduler
        if scheduler is None or self._burst or _stopping.is_set() or time.monotonic() < self._next_takeover:
            return
        self._next_takeover = time.monotonic() + SCHEDULER_TAKEOVER_SECONDS
        if scheduler._process is not None and scheduler._process.is_alive():
            return
        try:
            scheduler.acquire_locks(auto_start=True)
        except RedisError:
            log.warning("could not take over RQ's scheduler; will try again", exc_info=True)

    def request_stop(self, signum, frame):
        _stopping.set()  # the running job sees it; RQ lets it finish, then the worker exits
        super().request_stop(signum, frame)

    def execute_job(self, job: Job, queue: Queue) -> None:
        import time

        from flask import g

        from .request_log import log_job

        # A fresh app context per job: the SQLAlchemy session is removed at its teardown.
        started = time.perf_counter()
        with self.app.app_context():
            g.request_id = (job.meta or {}).get("request_id")  # the enqueuing request's, on every log line
            try:
                super().execute_job(job, queue)
            finally:
                log_job(job, queue.name, started, job.get_status(refresh=False) or "unknown")


def build_worker(app: Flask, queues: tuple[str, ...] = ALL_QUEUES, *, name: str | None = None) -> AppWorker:
    global _served_queues
    _served_queues = tuple(queues)
    connection = redis_connection(app)
    worker_queues = [get_queue(q, connection=connection) for q in queues]
    # No job descriptions in the log: they carry the job's arguments (ids, and token ciphertexts).
    worker = AppWorker(worker_queues, connection=connection, name=name, log_job_description=False)
    worker.app = app
    return worker


def build_scheduler(app: Flask) -> CronScheduler:
    from jobs.schedule import register_periodic_jobs

    scheduler = CronScheduler(connection=redis_connection(app), logging_level=app.config["RQ_LOG_LEVEL"])
    register_periodic_jobs(scheduler, app.config)
    return scheduler
