"""Public ids: a type prefix and the row's UUID in hex (`appt_3f2a…`), so ids say what they name."""

from __future__ import annotations

import uuid

APPOINTMENT = "appt_"
CUSTOMER = "cust_"
CALL = "call_"
EVENT = "evt_"
SUBSCRIPTION = "sub_"
DELIVERY = "dlv_"
HOLD = "hold_"


def encode(prefix: str, value: uuid.UUID | None) -> str | None:
    return None if value is None else prefix + value.hex


def decode(prefix: str, public_id: str) -> uuid.UUID | None:
    """The UUID behind a public id, or None when it is not one of `prefix`'s ids."""
    if not public_id.startswith(prefix) or len(public_id) != len(prefix) + 32:
        return None
    try:
        return uuid.UUID(hex=public_id[len(prefix):])
    except ValueError:
        return None
