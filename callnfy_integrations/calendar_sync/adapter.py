"""What a calendar provider gives the engine: its name, its jobs, how it writes one push, and how its
errors sort into what the engine does next.

Google and Microsoft each register one `Adapter` at import (`google/sync.py`, `microsoft/sync.py`).
The engine never imports a provider; it looks the adapter up by the integration's provider.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

# What a failed push means, as the adapter sorts it (`classify`).
RETRY = "retry"  # the provider or the network is struggling: back off and try again
REJECTED = "rejected"  # the provider refused this request as wrong: not tried again until it changes
RECONNECT = "reconnect"  # the user must reconnect (invalid_grant): the push waits
STOPPED = "stopped"  # disconnected meanwhile: nothing to record


class QuotaWait(Exception):
    """Our own per-user quota is used up for now; try again after `seconds`."""

    def __init__(self, seconds: float):
        super().__init__(f"quota: wait {seconds:.2f}s")
        self.seconds = seconds


@dataclass(frozen=True)
class Push:
    """What one push needs, read before any call to the provider (no transaction stays open across it)."""

    appointment_id: uuid.UUID
    integration_id: uuid.UUID
    provider: str
    calendar_id: str | None  # None: the provider's default calendar
    time_zone: str | None
    version: int
    delete: bool
    event_id: str | None  # the provider's event, once written or imported
    attempts: int  # retryable failures so far
    fields: dict[str, Any]
    ours: bool = True  # Callnfy created the event; False: the owner's own, imported (start/end only)
    user_id: uuid.UUID | None = None
    remote_time: tuple[Any, Any] = (None, None)  # (start, duration) the provider holds, as of our last write or read

    @property
    def linked(self) -> bool:
        return self.event_id is not None


@dataclass(frozen=True)
class Sent:
    """What the provider holds after a push: the event written (None after a delete or when nothing
    was sent), as the engine records it."""

    event_id: str | None = None
    etag: str | None = None
    updated_at: str | None = None  # the provider's update time, ISO 8601
    written: bool = False  # an event was created or changed (its start and duration are the plan's)
    time_zone: str | None = None  # learnt from the provider during this push, to store
    left_in_calendar: bool = False  # a cancelled appointment whose event is the owner's: nothing was deleted


class Adapter:
    """A calendar provider, as the push engine uses it. Subclasses set the names and implement `send`,
    `classify` and `describe`."""

    provider: ClassVar[str]  # the integrations.provider value
    label: ClassVar[str]  # for people: "Google Calendar", "Outlook"
    sync_job: ClassVar[str]
    backfill_job: ClassVar[str]
    reconnect_message: ClassVar[str]

    def send(self, push: Push) -> Sent:
        """Make the calendar match the plan; raises what `classify` sorts (or QuotaWait)."""
        raise NotImplementedError

    def classify(self, error: Exception) -> str | None:
        """RETRY, REJECTED, RECONNECT or STOPPED; None for an error the engine should not swallow."""
        raise NotImplementedError

    def describe(self, error: Exception) -> str:
        """`CODE: sentence` the user is shown for a failed push (never a secret or our internals)."""
        raise NotImplementedError

    def retry_after(self, error: Exception) -> float | None:
        return getattr(error, "retry_after", None)

    def prepare_backfill(self, integration_id: uuid.UUID, calendar_id: str | None) -> str | None:
        """Before a backfill: a time zone to store for the connection, or None."""
        return None


_adapters: dict[str, Adapter] = {}


def register(adapter: Adapter) -> Adapter:
    _adapters[adapter.provider] = adapter
    return adapter


def adapter_for(provider: str) -> Adapter:
    return _adapters[provider]


def providers() -> tuple[str, ...]:
    return tuple(_adapters)
