"""Zapier API keys and REST-hook subscriptions: the rules behind /integrations/zapier and /webhooks/zapier."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from ..appointments.models import Appointment
from ..appointments.payloads import appointment_payload, rescheduled_payload
from ..calls.models import Call
from ..calls.service import call_payload
from ..crypto import secret_box
from ..customers.models import Customer
from ..errors import NotFound, Unauthorized, ValidationFailed
from ..events import registry
from ..events.models import Event
from ..extensions import db
from ..integrations.models import GOOGLE_CALENDAR, ZAPIER, Integration
from ..integrations.service import ZAPIER_API_KEY_FIELD, zapier_webhook_url
from ..public_ids import EVENT, encode
from ..users.service import ensure_user
from .hook_urls import validate_hook_url
from .models import CANCELLED, KEY_REVOKED, PENDING, SUBSCRIPTION_DELETED, WebhookDelivery, ZapierSubscription

ZAPIER_EVENTS = (registry.APPOINTMENT_CREATED, registry.APPOINTMENT_RESCHEDULED, registry.APPOINTMENT_CANCELLED,
                 registry.APPOINTMENT_COMPLETED, registry.CALL_RECEIVED)
KEY_PREFIX = "czp_"
KEY_LENGTH = 40
_KEY_ALPHABET = string.ascii_letters + string.digits
SAMPLE_COUNT = 3


def new_api_key() -> str:
    return KEY_PREFIX + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(KEY_LENGTH))


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def _key_view(row: Integration) -> dict[str, Any]:
    api_key = secret_box().decrypt(row.api_key_encrypted, user_id=row.user_id, field=ZAPIER_API_KEY_FIELD)
    return {"apiKey": api_key, "webhookUrl": zapier_webhook_url(row.user_id), "createdAt": row.created_at}


def generate_key(user_id: uuid.UUID) -> dict[str, Any]:
    """The user's key, created on first call; concurrent calls converge on one key (UNIQUE(user, provider))."""
    ensure_user(user_id)
    api_key = new_api_key()
    db.session.execute(
        insert(Integration).values(
            id=uuid.uuid4(), user_id=user_id, provider=ZAPIER, api_key_hash=hash_key(api_key),
            api_key_encrypted=secret_box().encrypt(api_key, user_id=user_id, field=ZAPIER_API_KEY_FIELD),
        ).on_conflict_do_nothing(index_elements=["user_id", "provider"])
    )
    # Same transaction: ON CONFLICT waits for a concurrent inserter to commit, and this new
    # statement's snapshot (READ COMMITTED) then sees the winner's row.
    row = db.session.scalars(select(Integration).where(Integration.user_id == user_id,
                                                       Integration.provider == ZAPIER)).one()
    return _key_view(row)


def revoke_key(user_id: uuid.UUID) -> None:
    """Delete the key and its subscriptions, and cancel pending deliveries: nothing more is sent."""
    db.session.execute(
        update(WebhookDelivery).where(WebhookDelivery.user_id == user_id, WebhookDelivery.status == PENDING)
        .values(status=CANCELLED, cancel_reason=KEY_REVOKED, last_error="API key revoked")
    )
    db.session.execute(delete(ZapierSubscription).where(ZapierSubscription.user_id == user_id))
    db.session.execute(delete(Integration).where(Integration.user_id == user_id, Integration.provider == ZAPIER))


def authenticate_key(path_user_id: str, presented: str | None) -> uuid.UUID:
    """The user id when `presented` is the live key of `path_user_id`; otherwise 401, whatever failed."""
    user_id = key_owner(presented)
    if str(user_id) != path_user_id:
        raise Unauthorized()
    return user_id


def key_owner(presented: str | None) -> uuid.UUID:
    """The user whose live key `presented` is (the key alone: /zapier/v1); otherwise 401, whatever failed."""
    if not presented or not presented.startswith(KEY_PREFIX) or len(presented) != len(KEY_PREFIX) + KEY_LENGTH:
        raise Unauthorized()
    digest = hash_key(presented)
    row = db.session.execute(
        select(Integration.user_id, Integration.api_key_hash)
        .where(Integration.api_key_hash == digest, Integration.provider == ZAPIER)
    ).one_or_none()
    if row is None or not hmac.compare_digest(row.api_key_hash, digest):
        raise Unauthorized()
    return row.user_id


def account(user_id: uuid.UUID) -> dict[str, Any]:
    """What the Zapier app shows of the account its key belongs to (`GET /zapier/v1/me`)."""
    calendar_email = db.session.scalar(select(Integration.email).where(
        Integration.user_id == user_id, Integration.provider == GOOGLE_CALENDAR))
    return {"userId": str(user_id), "webhookUrl": zapier_webhook_url(user_id), "events": list(ZAPIER_EVENTS),
            "calendarEmail": calendar_email}


def subscribe(user_id: uuid.UUID, hook_url: str, event: str) -> tuple[ZapierSubscription, bool]:
    """(subscription, created): the same (hookUrl, event) again returns the existing subscription,
    enabled again if it had been disabled (Zapier re-subscribes when a user turns a Zap back on).
    At most ZAPIER_MAX_SUBSCRIPTIONS per account: 400 beyond."""
    config = current_app.config
    validate_hook_url(hook_url, allowed_hosts=config["WEBHOOK_ALLOWED_HOSTS"],
                      allow_private=config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"])
    # Subscribes of one account queue here, so two concurrent ones cannot both pass the limit.
    db.session.execute(select(Integration.id).where(Integration.user_id == user_id, Integration.provider == ZAPIER)
                       .with_for_update())
    existing = db.session.scalars(select(ZapierSubscription).where(
        ZapierSubscription.user_id == user_id, ZapierSubscription.event == event,
        ZapierSubscription.hook_url == hook_url)).one_or_none()
    if existing is not None:
        if existing.disabled_at is not None:
            existing.disabled_at = existing.disabled_reason = existing.failing_since = None
            db.session.flush()
        return existing, False
    limit = config["ZAPIER_MAX_SUBSCRIPTIONS"]
    count = db.session.scalar(select(func.count()).select_from(ZapierSubscription)
                              .where(ZapierSubscription.user_id == user_id))
    if count >= limit:
        raise ValidationFailed("Subscription limit reached", details={
            "hookUrl": [f"An account can have at most {limit} subscriptions; delete one first."]})
    created = db.session.scalars(
        insert(ZapierSubscription).values(id=uuid.uuid4(), user_id=user_id, event=event, hook_url=hook_url)
        .returning(ZapierSubscription)).one()
    return created, True


def list_subscriptions(user_id: uuid.UUID) -> list[ZapierSubscription]:
    return list(db.session.scalars(select(ZapierSubscription).where(ZapierSubscription.user_id == user_id)
                                   .order_by(ZapierSubscription.created_at)))


def unsubscribe(user_id: uuid.UUID, subscription_id: uuid.UUID | None) -> None:
    subscription = db.session.scalars(select(ZapierSubscription).where(
        ZapierSubscription.id == subscription_id, ZapierSubscription.user_id == user_id)).one_or_none() \
        if subscription_id else None
    if subscription is None:
        raise NotFound("Subscription not found")
    db.session.execute(
        update(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription.id,
                                      WebhookDelivery.status == PENDING)
        .values(status=CANCELLED, cancel_reason=SUBSCRIPTION_DELETED, last_error="subscription deleted")
    )
    db.session.delete(subscription)
    db.session.flush()


def delivery_body(event_id: uuid.UUID, event_type: str, created_at: datetime, payload: dict) -> dict[str, Any]:
    """What a webhook carries: `{id, event, timestamp, data}`; samples use the same shape."""
    from ..timestamps import format_timestamp

    return {"id": encode(EVENT, event_id), "event": event_type, "timestamp": format_timestamp(created_at),
            "data": payload}


def check_event(event: str) -> str:
    if event not in ZAPIER_EVENTS:
        raise ValidationFailed("Unknown event", details={"event": [f"Must be one of: {', '.join(ZAPIER_EVENTS)}."]})
    return event


def samples(user_id: uuid.UUID, event: str) -> list[dict[str, Any]]:
    """The user's latest real payloads of `event`, or one realistic example with the same keys."""
    check_event(event)
    rows = db.session.scalars(select(Event).where(Event.user_id == user_id, Event.type == event)
                              .order_by(Event.created_at.desc()).limit(SAMPLE_COUNT)).all()
    if rows:
        return [delivery_body(e.id, e.type, e.created_at, e.payload) for e in rows]
    return [delivery_body(uuid.UUID(int=0), event, datetime(2025, 12, 22, 10, 45, tzinfo=UTC),
                          _example_payload(event))]


def _example_payload(event: str) -> dict[str, Any]:
    # Built by the live payload builders from unsaved objects, so the shape can never drift; the
    # values are the spec's examples.
    at = datetime(2025, 12, 22, 10, 45, tzinfo=UTC)
    customer = Customer(id=uuid.UUID(int=1), name="John Doe", phone="+447700900123", email="john@example.com")
    if event == registry.CALL_RECEIVED:
        return call_payload(Call(id=uuid.UUID(int=2), customer=customer, duration=180, sentiment="positive",
                                 recording_url="https://api.callnfy.com/recordings/call_789.mp3",
                                 transcript="Full call transcript...", received_at=at))
    appointment = Appointment(id=uuid.UUID(int=3), customer=customer, scheduled_at=datetime(
        2025, 12, 23, 14, 0, tzinfo=UTC), duration=30, notes="First consultation", source="callnfy",
        status={registry.APPOINTMENT_CANCELLED: "cancelled", registry.APPOINTMENT_COMPLETED: "completed"}.get(
            event, "scheduled"),
        cancelled_at=at, cancel_reason="Customer requested cancellation", completed_at=at)
    if event == registry.APPOINTMENT_RESCHEDULED:  # moved from the day before, and made longer
        return rescheduled_payload(appointment, datetime(2025, 12, 22, 15, 30, tzinfo=UTC), 20)
    return appointment_payload(event, appointment)
