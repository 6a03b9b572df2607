"""Webhook deliveries for the benches: the loopback HTTPS receiver, accounts subscribed to it, and pending
deliveries written straight to the database (no doorbell rings, so the bench decides when the drain runs)."""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import trustme
from harness import free_port, migrate, scratch_environment, start, stop


class Receiver:
    """bench/https_receiver.py in its own process, with a trustme certificate for `localhost`."""

    def __init__(self):
        work = Path(tempfile.mkdtemp(prefix="callnfy-bench-"))
        ca = trustme.CA()
        self.ca_bundle = str(work / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_bundle)
        cert = ca.issue_cert("localhost")
        self.cert, self.key = str(work / "cert.pem"), str(work / "key.pem")
        cert.cert_chain_pems[0].write_to_path(self.cert)
        cert.private_key_pem.write_to_path(self.key)
        self.port = free_port()
        self.hook_url = f"https://localhost:{self.port}/hook"
        self.stall_url = f"https://localhost:{self.port}/stall"

    def settings(self) -> tuple[dict, dict]:
        """(environment, config) overrides that let the app send to this receiver."""
        return ({"WEBHOOK_ALLOWED_HOSTS": "localhost", "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
                 "WEBHOOK_CA_BUNDLE": self.ca_bundle, "OUTBOX_GRACE_SECONDS": "60"},
                {"WEBHOOK_ALLOWED_HOSTS": ["localhost"], "WEBHOOK_ALLOW_PRIVATE_NETWORKS": True,
                 "WEBHOOK_CA_BUNDLE": self.ca_bundle})

    def start(self, redis_url: str, env: dict):
        process = start([sys.executable, "bench/https_receiver.py", str(self.port), self.cert, self.key, redis_url],
                        env)
        time.sleep(1.0)
        return process


@contextmanager
def receiver_app(receiver: Receiver):
    """A scratch environment whose app sends to `receiver`, started: yields (app, config, env, processes);
    every process in `processes` (the receiver's first) is stopped on the way out."""
    from callnfy_integrations import create_app

    with scratch_environment() as (config, env):
        env_overrides, config_overrides = receiver.settings()
        env.update(env_overrides)
        config.update(config_overrides)
        app = create_app(config)
        migrate(app)
        processes = []
        try:
            processes.append(receiver.start(config["REDIS_URL"], env))
            yield app, config, env, processes
        finally:
            stop(processes)


def account(url: str) -> uuid.UUID:
    """A user with a Zapier key and one `call.received` subscription to `url` (committed)."""
    from callnfy_integrations.extensions import db
    from callnfy_integrations.zapier import service as zapier

    user_id = uuid.uuid4()
    zapier.generate_key(user_id)
    zapier.subscribe(user_id, url, "call.received")
    db.session.commit()  # services only flush: this script is the edge
    return user_id


def pending_deliveries(users: list[uuid.UUID], per_user: int, connection) -> None:
    """`per_user` call.received events per user and their pending deliveries, written directly."""
    from sqlalchemy import text

    from callnfy_integrations.calls.service import record_call
    from callnfy_integrations.events.outbox import OUTBOX
    from callnfy_integrations.extensions import db

    for user_id in users:
        for _ in range(per_user):
            record_call(user_id, customer_phone="+14155550123", duration=60)
    # Dispatched in the transaction that records them: the doorbell their commit rings finds nothing
    # to do (a worker's outbox drain racing these statements deadlocked, or sent some early).
    db.session.flush()
    db.session.execute(text("""
        INSERT INTO webhook_deliveries (id, user_id, event_id, subscription_id, hook_url)
        SELECT gen_random_uuid(), e.user_id, e.id, s.id, s.hook_url
        FROM events e JOIN zapier_subscriptions s ON s.user_id = e.user_id
        WHERE e.dispatched_at IS NULL"""))
    db.session.execute(text("UPDATE events SET dispatched_at = now() WHERE dispatched_at IS NULL"))
    db.session.commit()
    connection.delete(OUTBOX.ready_key, OUTBOX.flag_key)


def delivered() -> int:
    """Deliveries the database shows delivered."""
    from sqlalchemy import text

    from callnfy_integrations.extensions import db

    count = db.session.scalar(text("SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'"))
    db.session.commit()
    return count


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
