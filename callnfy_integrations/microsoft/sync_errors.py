"""What a user is shown when a Microsoft two-way step fails (`syncError`): a stable code and a sentence.

Graph's own answer (status and error code) may be quoted; our internals never are (the caller logs them).
"""

from __future__ import annotations

from ..calendar_sync.remote import Skipped
from . import graph_api, oauth

UNAVAILABLE = "MICROSOFT_UNAVAILABLE"
RATE_LIMITED = "MICROSOFT_RATE_LIMITED"
REJECTED = "MICROSOFT_REJECTED"
SYNC_STOPPED = "SYNC_STOPPED"
SYNC_FAILED = "SYNC_FAILED"
EVENT_SKIPPED = "EVENT_SKIPPED"
EVENT_NOT_APPLIED = "EVENT_NOT_APPLIED"
IN_THE_LOGS = "the details are in the service's logs"


def describe(error: Exception) -> str:
    if isinstance(error, graph_api.GraphError):
        answer = " ".join(part for part in (f"HTTP {error.status}", error.code) if part)
        if error.status == 429:
            return f"{RATE_LIMITED}: Microsoft Graph is limiting requests for this calendar ({answer})"
        if error.retryable:
            return f"{UNAVAILABLE}: Microsoft Graph is having trouble ({answer})"
        return f"{REJECTED}: Microsoft Graph refused the request ({answer})"
    if isinstance(error, oauth.MicrosoftUnavailable):
        return f"{UNAVAILABLE}: Microsoft did not answer"
    if isinstance(error, LookupError):
        return f"{SYNC_STOPPED}: Microsoft 365 was disconnected or switched to one-way during the sync"
    return f"{SYNC_FAILED}: something went wrong on our side; {IN_THE_LOGS}"


def will_retry(error: Exception) -> str:
    return f"{describe(error)}; will retry"


def gave_up(error: Exception, attempts: int) -> str:
    return f"{describe(error)}; gave up after {attempts} attempts"


def unapplied_event(event_id: object, error: Exception) -> str:
    """One Outlook event two-way sync skipped: our own reason when it is bad data, else only that it failed."""
    if isinstance(error, Skipped):
        return f"{EVENT_SKIPPED}: {error}"
    return f"{EVENT_NOT_APPLIED}: Outlook event {str(event_id)[:100]} could not be applied; {IN_THE_LOGS}"
