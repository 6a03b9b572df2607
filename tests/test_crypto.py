"""Encryption of stored secrets: AES-GCM bound to user and field, several keys, rotation."""

import base64
import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import select

from callnfy_integrations import create_app
from callnfy_integrations.crypto import DecryptionError, SecretBox
from callnfy_integrations.extensions import db
from callnfy_integrations.integrations.models import Integration
from tests.support import REPO_ROOT, make_config

OLD, NEW = os.urandom(32), os.urandom(32)


def test_round_trip_and_binding_to_user_and_field():
    box, user = SecretBox([NEW]), uuid.uuid4()
    blob = box.encrypt("secret-token", user_id=user, field="google.refresh_token")
    assert b"secret-token" not in blob
    assert box.decrypt(blob, user_id=user, field="google.refresh_token") == "secret-token"
    with pytest.raises(DecryptionError):
        box.decrypt(blob, user_id=uuid.uuid4(), field="google.refresh_token")  # copied to another user
    with pytest.raises(DecryptionError):
        box.decrypt(blob, user_id=user, field="google.access_token")  # moved to another column
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(DecryptionError):
        box.decrypt(tampered, user_id=user, field="google.refresh_token")


def test_first_key_encrypts_all_keys_decrypt():
    user = uuid.uuid4()
    old_blob = SecretBox([OLD]).encrypt("x", user_id=user, field="f")
    rotated = SecretBox([NEW, OLD])
    assert rotated.decrypt(old_blob, user_id=user, field="f") == "x"
    assert not rotated.is_current(old_blob)
    assert rotated.is_current(rotated.encrypt("x", user_id=user, field="f"))
    with pytest.raises(DecryptionError):
        SecretBox([NEW]).decrypt(old_blob, user_id=user, field="f")  # old key dropped too early


@pytest.mark.processes
def test_rotate_encryption_key_command_reencrypts_every_secret(database_url, servers, app):
    keys = lambda *ks: ",".join(base64.b64encode(k).decode() for k in ks)  # noqa: E731
    old_app = create_app(make_config(database_url, servers["redis"], ENCRYPTION_KEYS=keys(OLD)))
    client = old_app.test_client()
    from tests.factories import auth_headers

    user_ids = [uuid.uuid4() for _ in range(3)]
    api_keys = [client.post("/integrations/zapier/generate-key", headers=auth_headers(u)).json["data"]["apiKey"]
                for u in user_ids]

    env = {**os.environ, "APP_ENV": "testing", "DATABASE_URL": database_url, "REDIS_URL": servers["redis"],
           "ENCRYPTION_KEYS": keys(NEW, OLD), "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "rotate-encryption-key"],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "re-encrypted 3 secrets" in result.stdout

    new_only = create_app(make_config(database_url, servers["redis"], ENCRYPTION_KEYS=keys(NEW)))
    with new_only.app_context():
        assert all(SecretBox([NEW]).is_current(row.api_key_encrypted)
                   for row in db.session.scalars(select(Integration)))
        db.session.remove()
    new_client = new_only.test_client()
    for user_id, api_key in zip(user_ids, api_keys, strict=True):
        status = new_client.get("/integrations/status", headers=auth_headers(user_id)).json["data"]["zapier"]
        assert status["apiKey"] == api_key  # readable with the new key alone
