"""The Google token service: refresh before expiry, one refresher across processes, rotation, invalid_grant."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, update

from callnfy_integrations.extensions import db
from callnfy_integrations.google import tokens
from callnfy_integrations.integrations.models import Integration
from callnfy_integrations.timestamps import utcnow
from tests.google_fixtures import google_settings
from tests.support import REPO_ROOT, start_process


def connected(guser):
    assert guser.connect() == {"success": "true"}
    return db.session.scalars(select(Integration).where(Integration.user_id == guser.user_id)).one()


def expire_in(row, delta):
    db.session.execute(update(Integration).where(Integration.id == row.id)
                       .values(token_expires_at=utcnow() + delta))
    db.session.commit()


def test_fresh_token_is_used_without_refreshing(guser, sandbox):
    row = connected(guser)
    assert tokens.access_token(row.id) == tokens.decrypt(row, tokens.ACCESS_FIELD)
    assert sandbox.calls("token:refresh_token") == 0


def test_token_expiring_within_five_minutes_is_refreshed_first(guser, sandbox):
    row = connected(guser)
    old = tokens.decrypt(row, tokens.ACCESS_FIELD)
    expire_in(row, timedelta(minutes=4))
    new = tokens.access_token(row.id)
    assert new != old and sandbox.calls("token:refresh_token") == 1
    db.session.expire_all()
    row = db.session.get(Integration, row.id)
    assert tokens.decrypt(row, tokens.ACCESS_FIELD) == new
    assert row.token_expires_at > utcnow() + timedelta(minutes=50)
    # The new token works at Google.
    assert requests.get(f"{sandbox.url}/v1/userinfo", headers={"Authorization": f"Bearer {new}"},
                        timeout=5).status_code == 200


def test_rotated_refresh_token_is_stored(guser, sandbox):
    row = connected(guser)
    old_refresh = tokens.decrypt(row, tokens.REFRESH_FIELD)
    sandbox.settings(rotate_refresh_tokens=True)
    expire_in(row, timedelta(seconds=-1))
    tokens.access_token(row.id)
    db.session.expire_all()
    new_refresh = tokens.decrypt(db.session.get(Integration, row.id), tokens.REFRESH_FIELD)
    assert new_refresh != old_refresh and new_refresh in sandbox.state.refresh_tokens
    assert sandbox.state.refresh_tokens[old_refresh]["revoked"] is True
    expire_in(row, timedelta(seconds=-1))
    tokens.access_token(row.id)  # the stored (new) one keeps working
    assert sandbox.calls("token:refresh_token") == 2


def test_invalid_grant_marks_the_integration_for_reauthorization(guser, sandbox):
    row = connected(guser)
    requests.post(f"{sandbox.url}/revoke", data={"token": tokens.decrypt(row, tokens.REFRESH_FIELD)}, timeout=5)
    expire_in(row, timedelta(seconds=-1))
    with pytest.raises(tokens.ReauthorizationRequired):
        tokens.access_token(row.id)
    assert guser.status() == {"connected": False, "reauthorizationRequired": True, "email": "owner@example.com"}
    with pytest.raises(tokens.ReauthorizationRequired):  # sync stops: no further calls to Google
        tokens.access_token(row.id)
    assert sandbox.calls("token:refresh_token") == 1


@pytest.mark.processes
def test_concurrent_refresh_from_two_processes_makes_one_token_call(guser, sandbox, google_app):
    row = connected(guser)
    expire_in(row, timedelta(seconds=-1))
    sandbox.reset_counts()
    sandbox.settings(token_delay=0.5)  # the refresher holds the lock while the other one arrives
    script = (
        "import sys, time, uuid, wsgi\n"
        "from callnfy_integrations.google.tokens import access_token\n"
        "from callnfy_integrations.queues import redis_connection\n"
        "with wsgi.app.app_context():\n"
        "    redis_connection().incr('test:ready')\n"
        "    while not redis_connection().get('test:go'):\n"  # start together
        "        time.sleep(0.005)\n"
        "    print(access_token(uuid.UUID(sys.argv[1])))\n"
    )
    env = {**os.environ, "APP_ENV": "testing", "DATABASE_URL": google_app.config["SQLALCHEMY_DATABASE_URI"],
           "REDIS_URL": google_app.config["REDIS_URL"], "PYTHONPATH": str(REPO_ROOT), "LOG_LEVEL": "WARNING",
           **google_settings(sandbox)}
    # Killed at the test's end if still running (a failed wait or assertion leaves none behind).
    processes = [start_process([sys.executable, "-c", script, str(row.id)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(2)]
    from callnfy_integrations.queues import redis_connection
    from tests.support import wait_for

    wait_for(lambda: int(redis_connection().get("test:ready") or 0) == 2, timeout=60)
    redis_connection().set("test:go", 1)
    outputs = [p.communicate(timeout=60) for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    first, second = (out.strip().splitlines()[-1] for out, _ in outputs)
    assert first == second  # the second process reused the first one's token
    assert sandbox.calls("token:refresh_token") == 1
