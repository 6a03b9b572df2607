"""Flask CLI commands: `flask worker`, `flask scheduler`, `flask dev-token`, `flask rotate-encryption-key`,
and the operators' `flask deliveries replay`, `flask google resync|renew-channels`, `flask outbox sweep`,
`flask worker-health`. Commands own their transaction: the services they call only flush."""

from __future__ import annotations

import uuid

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from .auth import DEV_USER_ID, create_dev_token
from .queues import ALL_QUEUES


@click.command("worker")
@click.option("--queue", "queues", multiple=True, type=click.Choice(ALL_QUEUES),
              help="Queue to listen on (repeatable); default: all, in priority order.")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--name", default=None, help="Worker name (default: generated).")
def worker_command(queues: tuple[str, ...], burst: bool, name: str | None) -> None:
    """Run an RQ worker inside the app; SIGTERM finishes the current job, then exits.

    Each worker also runs RQ's scheduler (one holds the lock per queue at a time): it moves jobs
    whose delay is over (retries with an interval, backoffs) from the scheduled registry back to
    their queue. Without it a delayed retry would never run.
    """
    from .worker import build_worker

    worker = build_worker(current_app._get_current_object(), queues or ALL_QUEUES, name=name)
    worker.work(burst=burst, logging_level=current_app.config["RQ_LOG_LEVEL"], with_scheduler=True)


@click.command("scheduler")
def scheduler_command() -> None:
    """Enqueue the periodic jobs on time (one scheduler process per deployment); SIGTERM stops it."""
    from jobs.schedule import build_scheduler

    build_scheduler(current_app._get_current_object()).start()


@click.command("dev-token")
@click.argument("user_id", required=False)
@click.option("--days", default=30, show_default=True, help="Lifetime of the token.")
def dev_token_command(user_id: str | None, days: int) -> None:
    """Print a development JWT for USER_ID (default: a fixed development user)."""
    from datetime import timedelta

    if current_app.config["APP_ENV"] == "production":
        raise click.ClickException("dev-token is not available in production")
    uid = uuid.UUID(user_id) if user_id else DEV_USER_ID
    click.echo(create_dev_token(uid, timedelta(days=days)))


@click.command("rotate-encryption-key")
@click.option("--check", is_flag=True, help="Change nothing: count what an old key still encrypts; exit 1 if any.")
def rotate_encryption_key_command(check: bool) -> None:
    """Re-encrypt every stored secret with the first key of ENCRYPTION_KEYS: the integrations' tokens
    and API keys, and the Google tokens of revocations still to run (`google.disconnected` events;
    their jobs hold only the event's id, so nothing in Redis needs an old key).

    Rotation: prepend the new key to ENCRYPTION_KEYS (old keys stay, so everything still decrypts),
    deploy it to every process, run this; drop the old key only once it (or `--check`) reports that
    nothing stored uses an old key.
    """
    from .extensions import db
    from .google import revocation
    from .integrations.service import old_key_secrets, rotate_encryption

    if not check:
        rotated, pending = rotate_encryption(), revocation.rotate_pending()
        db.session.commit()  # all or nothing: a failure part-way leaves every secret as it was
        click.echo(f"re-encrypted {rotated} secrets with the current key")
        click.echo(f"re-encrypted {pending} tokens of pending Google revocations with the current key")
    remaining = old_key_secrets() + revocation.pending_on_old_keys()
    db.session.commit()
    if remaining:
        # After a rotation: written meanwhile by a process that still encrypts with the old key.
        click.echo(f"{remaining} stored secrets still use an old key: keep the old keys in ENCRYPTION_KEYS"
                   + ("" if check else ", deploy the new first key to every process and run this again"), err=True)
        raise SystemExit(1)
    click.echo("nothing stored uses an old key: the old keys can be dropped from ENCRYPTION_KEYS")


def register_commands(app: Flask) -> None:
    for command in (worker_command, scheduler_command, dev_token_command, rotate_encryption_key_command,
                    deliveries_group, google_group, outbox_group, worker_health_command):
        app.cli.add_command(command)


# -- operations ------------------------------------------------------------------------------------

deliveries_group = AppGroup("deliveries", help="Webhook deliveries to Zapier.")
google_group = AppGroup("google", help="Google Calendar sync.")
outbox_group = AppGroup("outbox", help="The event outbox.")


def _iso(value: str | None):
    if value is None:
        return None
    from datetime import datetime

    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"not an ISO-8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise click.BadParameter("give a time zone (e.g. 2026-11-01T00:00:00Z)")
    return parsed


def _uuid(value: str | None, name: str = "USER_ID"):
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise click.BadParameter(f"{name} must be a UUID") from None


@deliveries_group.command("replay")
@click.option("--dead", "dead", is_flag=True, required=True, help="Replay dead deliveries (required: say it).")
@click.option("--since", default=None, help="Only deliveries created at or after this ISO-8601 time.")
@click.option("--user", "user", default=None, help="Only this account (user UUID).")
def replay_command(dead: bool, since: str | None, user: str | None) -> None:
    """Send dead deliveries again, from the start of the retry schedule."""
    from .extensions import db
    from .zapier.delivery import dead_deliveries, send_again

    ids = dead_deliveries(since=_iso(since), user_id=_uuid(user))
    replayed = send_again(ids)
    db.session.commit()
    click.echo(f"replaying {replayed} dead deliveries")


@google_group.command("resync")
@click.argument("user_id")
def resync_command(user_id: str) -> None:
    """Push every upcoming appointment of USER_ID again; in two-way mode also take a fresh baseline."""
    from .extensions import db
    from .google import sync, two_way
    from .integrations.models import TWO_WAY

    owner = _uuid(user_id)
    integration = sync.connected_integration(owner)
    if integration is None:
        raise click.ClickException("this user has no healthy Google Calendar connection")
    pushed = sync.request_backfill(owner, every_upcoming=True)
    if integration.sync_mode == TWO_WAY:
        two_way.request_start(integration)
    db.session.commit()
    click.echo(f"re-pushing {pushed} appointments" + ("; taking a fresh two-way baseline"
                                                       if integration.sync_mode == TWO_WAY else ""))


@google_group.command("renew-channels")
@click.option("--all", "renew_all", is_flag=True, help="Every two-way channel, not only those ending within a day.")
def renew_channels_command(renew_all: bool) -> None:
    """Renew two-way push channels now (new channel first, then the old one stopped)."""
    from jobs.google import renew_channel

    from .extensions import db
    from .google import two_way

    ids = two_way.two_way_integrations(with_token=False) if renew_all else two_way.channels_to_renew()
    db.session.commit()
    for integration_id in ids:
        click.echo(f"{integration_id}: {renew_channel(str(integration_id))}")
    click.echo(f"{len(ids)} channels")


@outbox_group.command("sweep")
def outbox_sweep_command() -> None:
    """Request dispatch of every due, undispatched event now."""
    from .events.dispatch import sweep_due_events

    click.echo(f"re-enqueued {sweep_due_events()} events")


@click.command("worker-health")
def worker_health_command() -> None:
    """Exit 1 unless a worker ran the scheduler's heartbeat within three periods (a dyno health check)."""
    from datetime import datetime

    from jobs.maintenance import HEARTBEAT_KEY

    from .queues import redis_connection
    from .timestamps import utcnow

    period = current_app.config["SCHEDULER_HEARTBEAT_SECONDS"]
    raw = redis_connection().get(HEARTBEAT_KEY)
    if raw is None:
        click.echo("unhealthy: no heartbeat recorded", err=True)
        raise SystemExit(1)
    age = (utcnow() - datetime.fromisoformat(raw.decode().replace("Z", "+00:00"))).total_seconds()
    if age > 3 * period:
        click.echo(f"unhealthy: the last heartbeat is {age:.0f} s old (limit {3 * period} s)", err=True)
        raise SystemExit(1)
    click.echo(f"healthy: the last heartbeat is {age:.0f} s old")
