"""Who reacts to which event: later areas (Zapier, Google) register handlers without this package knowing them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .models import Event

APPOINTMENT_CREATED = "appointment.created"
APPOINTMENT_UPDATED = "appointment.updated"  # any change: what calendar sync follows
APPOINTMENT_RESCHEDULED = "appointment.rescheduled"  # time or duration changed: for Zapier, with the previous ones
APPOINTMENT_CANCELLED = "appointment.cancelled"
APPOINTMENT_COMPLETED = "appointment.completed"
CALL_RECEIVED = "call.received"
# Internal: a disconnect's revocation at Google, made durable in the disconnect's own transaction.
GOOGLE_DISCONNECTED = "google.disconnected"
EVENT_TYPES = (APPOINTMENT_CREATED, APPOINTMENT_UPDATED, APPOINTMENT_RESCHEDULED, APPOINTMENT_CANCELLED,
               APPOINTMENT_COMPLETED, CALL_RECEIVED, GOOGLE_DISCONNECTED)


@dataclass(frozen=True)
class Handler:
    name: str  # stable: it is stored with each completion mark
    event_types: frozenset[str]
    func: Callable[[Event], None]


_handlers: dict[str, Handler] = {}


def register_handler(name: str, event_types: tuple[str, ...], func: Callable[[Event], None]) -> Handler:
    """Run `func(event)` once per event of these types, in a transaction with its completion mark."""
    unknown = set(event_types) - set(EVENT_TYPES)
    if unknown:
        raise ValueError(f"unknown event types: {sorted(unknown)}")
    existing = _handlers.get(name)
    if existing is not None and existing.func is not func:
        raise ValueError(f"another handler is already registered as {name!r}")
    handler = _handlers[name] = Handler(name, frozenset(event_types), func)
    return handler


def handles(name: str, *event_types: str) -> Callable[[Callable[[Event], None]], Callable[[Event], None]]:
    """Decorator form of `register_handler`."""

    def decorator(func: Callable[[Event], None]) -> Callable[[Event], None]:
        register_handler(name, event_types, func)
        return func

    return decorator


def unregister_handler(name: str) -> None:
    _handlers.pop(name, None)


def handlers_for(event_type: str) -> list[Handler]:
    return [h for h in _handlers.values() if event_type in h.event_types]


# Rows of other areas that still need an event after it was dispatched: name -> an SQL condition on
# the event `e` that is true while one does (retention keeps such an event however old it is).
_still_needed: dict[str, str] = {}


def keep_events_while(name: str, condition: str) -> None:
    """Retention keeps a dispatched event while `condition` (SQL, the event aliased `e`) holds."""
    _still_needed[name] = condition


def still_needed_conditions() -> list[str]:
    return list(_still_needed.values())
