"""Calls: recorded as Callnfy answers them, each emitting `call.received`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from ..customers.service import find_or_create_customer, normalize_phone
from ..errors import NotFound
from ..events import registry
from ..events.outbox import record_event
from ..extensions import db
from ..timestamps import utcnow
from ..users.service import ensure_user
from .models import Call
from .schemas import CallSchema

_CALL = CallSchema()


def call_payload(call: Call) -> dict[str, Any]:
    """Webhook `data` of `call.received`: the call as /calls shows it (the spec's fields plus receivedAt)."""
    return _CALL.dump(call)


def record_call(user_id: uuid.UUID, *, customer_phone: str, duration: int, customer_name: str | None = None,
                recording_url: str | None = None, transcript: str | None = None, sentiment: str | None = None,
                received_at: datetime | None = None) -> Call:
    """Record the call and its `call.received` event; the caller commits."""
    ensure_user(user_id)
    customer = find_or_create_customer(user_id, phone=normalize_phone(customer_phone), name=customer_name)
    call = Call(id=uuid.uuid4(), user_id=user_id, customer=customer, duration=duration, recording_url=recording_url,
                transcript=transcript, sentiment=sentiment, received_at=received_at or utcnow())
    db.session.add(call)
    record_event(user_id, registry.CALL_RECEIVED, call_payload(call))
    db.session.flush()
    return call


def list_calls(user_id: uuid.UUID, *, offset: int = 0, limit: int = 20) -> tuple[list[Call], int]:
    total = db.session.scalar(select(func.count()).select_from(Call).where(Call.user_id == user_id))
    items = db.session.scalars(
        select(Call).where(Call.user_id == user_id)
        .order_by(Call.received_at.desc(), Call.id.desc()).offset(offset).limit(limit)
    ).all()
    return list(items), total or 0


def get_call(user_id: uuid.UUID, call_id: uuid.UUID | None) -> Call:
    call = db.session.scalars(select(Call).where(Call.id == call_id, Call.user_id == user_id)).one_or_none() \
        if call_id else None
    if call is None:
        raise NotFound("Call not found")
    return call
