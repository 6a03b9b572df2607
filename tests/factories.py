"""Test data: users, integrations and tokens, written through the real models."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt

from callnfy_integrations.config import DEV_JWT_SECRET_KEY
from callnfy_integrations.crypto import secret_box
from callnfy_integrations.extensions import db
from callnfy_integrations.integrations.models import CONNECTED, GOOGLE_CALENDAR, ONE_WAY, ZAPIER, Integration
from callnfy_integrations.integrations.service import ZAPIER_API_KEY_FIELD
from callnfy_integrations.users.models import User


def token(sub: str | uuid.UUID, *, expires_in: int = 600, key: str = DEV_JWT_SECRET_KEY,
          algorithm: str = "HS256", **claims) -> str:
    now = datetime.now(UTC)
    payload = {"sub": str(sub), "exp": now + timedelta(seconds=expires_in), **claims}
    return jwt.encode(payload, key, algorithm=algorithm)


def auth_headers(user_id: uuid.UUID, **kwargs) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user_id, **kwargs)}"}


def make_user(user_id: uuid.UUID | None = None, **fields) -> User:
    user = User(id=user_id or uuid.uuid4(), **fields)
    db.session.add(user)
    db.session.commit()
    return user


def make_google_integration(user: User, *, email: str = "owner@example.com", status: str = CONNECTED,
                            sync_mode: str = ONE_WAY, last_sync_at: datetime | None = None,
                            provider: str = GOOGLE_CALENDAR) -> Integration:
    row = Integration(user_id=user.id, provider=provider, email=email, status=status,
                      sync_mode=sync_mode, last_sync_at=last_sync_at)
    db.session.add(row)
    db.session.commit()
    return row


def make_zapier_integration(user: User, api_key: str | None = None) -> tuple[Integration, str]:
    from callnfy_integrations.zapier.service import hash_key, new_api_key

    api_key = api_key or new_api_key()
    row = Integration(user_id=user.id, provider=ZAPIER,
                      api_key_hash=hash_key(api_key),
                      api_key_encrypted=secret_box().encrypt(api_key, user_id=user.id, field=ZAPIER_API_KEY_FIELD))
    db.session.add(row)
    db.session.commit()
    return row, api_key


def appointment_body(**overrides) -> dict:
    body = {"customerName": "Ann Example", "customerPhone": "+447700900123", "customerEmail": "ann@example.com",
            "scheduledAt": "2026-12-01T10:00:00.000Z", "duration": 30, "notes": "First visit"}
    body.update(overrides)
    return body


def call_body(**overrides) -> dict:
    body = {"customerName": "Bob Caller", "customerPhone": "+14155550123", "duration": 125,
            "recordingUrl": "https://recordings.callnfy.test/abc.mp3", "transcript": "Hello, I'd like to book.",
            "sentiment": "positive", "receivedAt": "2026-11-20T09:30:00.250Z"}
    body.update(overrides)
    return body


def row_counts() -> dict[str, int]:
    """Rows per domain table: tests assert a rejected request wrote nothing."""
    from sqlalchemy import text

    tables = ("users", "customers", "appointments", "calls", "events")
    with db.engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}


def next_weekday_at_ten() -> str:
    """A time inside the default working hours (Mon–Fri 09:00–17:00, Europe/London), a week ahead."""
    day = datetime.now(UTC).date() + timedelta(days=7)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return f"{day.isoformat()}T10:00:00Z"
