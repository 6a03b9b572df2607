"""Flask CLI commands: `flask worker`, `flask scheduler`, `flask dev-token`, `flask rotate-encryption-key`."""

from __future__ import annotations

import uuid

import click
from flask import Flask, current_app

from .auth import create_dev_token
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
    worker.work(burst=burst, logging_level=current_app.config["LOG_LEVEL"], with_scheduler=True)


@click.command("scheduler")
def scheduler_command() -> None:
    """Enqueue the periodic jobs on time (one scheduler process per deployment); SIGTERM stops it."""
    from .worker import build_scheduler

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
def rotate_encryption_key_command() -> None:
    """Re-encrypt every stored secret with the first key of ENCRYPTION_KEYS.

    Rotation: prepend the new key to ENCRYPTION_KEYS (old keys stay, so everything still decrypts),
    deploy, run this, then drop the old key.
    """
    from .extensions import db
    from .integrations.service import rotate_encryption

    rotated = rotate_encryption()
    db.session.commit()  # all or nothing: a failure part-way leaves every secret as it was
    click.echo(f"re-encrypted {rotated} secrets with the current key")


DEV_USER_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


def register_commands(app: Flask) -> None:
    for command in (worker_command, scheduler_command, dev_token_command, rotate_encryption_key_command):
        app.cli.add_command(command)
