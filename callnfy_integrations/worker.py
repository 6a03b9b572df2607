"""The RQ worker and the periodic-job scheduler, both run inside the Flask app."""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime

from flask import Flask
from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.job import Job
from rq.queue import Queue
from rq.scheduler import RQScheduler
from rq.scripts import ACQUIRE_OR_REFRESH_LOCK_SCRIPT, acquire_or_refresh_lock
from rq.utils import now

from . import process_flags
from .queues import ALL_QUEUES, get_queue, redis_connection

log = logging.getLogger(__name__)

# How long RQ's scheduler lock of a queue outlives its holder's last renewal (RQ's own: 61 s). The
# holder renews it every second; a killed holder's queues are taken over within this plus a second.
SCHEDULER_LEASE_SECONDS = 8
# How often a worker checks that its scheduler process is alive (and starts it again if not).
SCHEDULER_CHECK_SECONDS = 2.0


class LeasedScheduler(RQScheduler):
    """RQ's scheduler (it moves delayed jobs to their queue when due) on a short, renewed lease.

    RQ's scheduler holds a lock per queue that lives 61 s past its last renewal, and only a
    scheduler that holds it moves that queue's delayed jobs (retries with a delay, calendar
    backoffs, debounced two-way syncs, webhook wake-ups). RQ asks for a dead holder's lock again
    only every 10 minutes, and a worker that started while the lock was held starts no scheduler:
    after a SIGKILL, delayed jobs stood still for a minute or more. Here every worker runs this
    scheduler process, holding locks or not: the holder renews its locks every second with a
    SCHEDULER_LEASE_SECONDS lease, and the others ask for the free ones every second, so a killed
    holder's queues move again within the lease and a second, whatever the workers' main loops are
    busy with. Two schedulers overlap only if a holder stalls longer than the lease; a job may then
    be enqueued twice, which jobs here absorb (they are idempotent).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._parent_pid = os.getpid()  # the worker; checked by the forked scheduler process

    @property
    def should_reacquire_locks(self) -> bool:
        return self._queue_names != self.acquired_locks  # ask for the missing ones on every loop

    def acquire_locks(self, auto_start: bool = False) -> set[str]:
        """RQ's, with the short lease."""
        successful = {name for name in self._queue_names if acquire_or_refresh_lock(
            self.connection, self.get_locking_key(name), self.name, SCHEDULER_LEASE_SECONDS) != "taken"}
        newly = successful - self._acquired_locks
        if newly:
            self.log.info("Acquired scheduler lock for %s", ", ".join(sorted(newly)))
        self._scheduled_job_registries = []
        self._acquired_locks = successful
        self.lock_acquisition_time = datetime.now()
        if successful and auto_start and (not self._process or not self._process.is_alive()):
            self.start()
        return successful

    def heartbeat(self) -> None:
        """RQ's, with the short lease: refresh the locks held; drop one another scheduler took. The
        whole record is written (not only the heartbeat's time): after a Redis flush it says again
        which process this is."""
        self.last_heartbeat = now()
        names = sorted(self._acquired_locks)
        script = self.connection.register_script(ACQUIRE_OR_REFRESH_LOCK_SCRIPT)
        with self.connection.pipeline() as pipeline:
            pipeline.hset(self.key, mapping=self.to_dict())
            pipeline.expire(self.key, self.interval + 60)
            for name in names:
                script(keys=[self.get_locking_key(name)], args=[self.name, SCHEDULER_LEASE_SECONDS], client=pipeline)
            results = pipeline.execute()
        lost = {name for name, outcome in zip(names, results[2:], strict=True) if outcome == 0}
        if lost:
            self.log.warning("Scheduler locks for %s were taken over by another scheduler", ", ".join(sorted(lost)))
            self._acquired_locks -= lost
            self._scheduled_job_registries = []

    def work(self) -> None:
        """RQ's loop, which survives Redis errors (a flush, a failover) and ends with its worker."""
        self._install_signal_handlers()
        self.register_birth()
        while not self._stop_requested and os.getppid() == self._parent_pid:
            try:
                if self.should_reacquire_locks:
                    self.acquire_locks()
                self.heartbeat()
                self.enqueue_scheduled_jobs()
            except RedisError:
                self.log.warning("scheduler: Redis unavailable; trying again", exc_info=True)
            time.sleep(self.interval)
        # Stopped, or the worker died (SIGKILL): release the locks at once rather than let them expire.
        try:
            self.stop()
        except RedisError:
            pass


class AppWorker(SimpleWorker):
    """Runs jobs in the worker process itself (no fork per job), each inside a fresh app context.

    RQ's default worker forks a child per job: ~16 ms of CPU and a re-import of the job modules
    every time (~15 webhook-like jobs/s). Running in-process keeps imports, the SQLAlchemy pool and
    keep-alive HTTP sessions warm across jobs (~150 jobs/s). The price is isolation: a job that
    leaks memory or crashes the interpreter takes the worker down, and the dyno manager restarts it;
    job timeouts still apply (SIGALRM in this process).
    """

    app: Flask
    _next_check = 0.0
    _burst = False

    def work(self, burst: bool = False, **kwargs):
        self._burst = burst  # a burst worker runs no scheduler process
        process_flags.serving(tuple(queue.name for queue in self.queues))
        try:
            return super().work(burst=burst, **kwargs)
        finally:
            process_flags.done_serving()

    def heartbeat(self, timeout=None, pipeline=None):
        super().heartbeat(timeout, pipeline)
        if pipeline is None:  # the worker's own loop (between jobs, and every dequeue timeout)
            self._check_scheduler()

    def _start_scheduler(self, burst: bool = False, logging_level: str | None = "INFO",
                         date_format: str = DEFAULT_LOGGING_DATE_FORMAT, log_format: str = DEFAULT_LOGGING_FORMAT):
        """RQ's, with `LeasedScheduler`, whose process starts even when another worker holds the locks."""
        self.scheduler = LeasedScheduler(
            self.queues, connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format, log_format=log_format, serializer=self.serializer)
        self.scheduler.acquire_locks()
        if not burst:
            self.scheduler.start()
        elif self.scheduler.acquired_locks:  # a burst worker moves what is due once, and lets go
            try:
                self.scheduler.register_birth()
                self.scheduler.enqueue_scheduled_jobs()
            finally:
                self.scheduler.release_locks()
                self.scheduler.register_death()

    def _check_scheduler(self) -> None:
        """Start this worker's scheduler process again if it died (it is forked; a crash ends it)."""
        scheduler = self.scheduler
        if scheduler is None or self._burst or process_flags.stopping() or time.monotonic() < self._next_check:
            return
        self._next_check = time.monotonic() + SCHEDULER_CHECK_SECONDS
        if scheduler._process is None or not scheduler._process.is_alive():
            log.warning("RQ's scheduler process was not running; starting it again")
            scheduler.start()

    def request_stop(self, signum, frame):
        process_flags.request_stop()  # the running job sees it; RQ lets it finish, then the worker exits
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
    connection = redis_connection(app)
    worker_queues = [get_queue(q, connection=connection) for q in queues]
    # No job descriptions in the log: they carry the job's arguments (ids, and token ciphertexts).
    worker = AppWorker(worker_queues, connection=connection, name=name, log_job_description=False)
    worker.app = app
    return worker
