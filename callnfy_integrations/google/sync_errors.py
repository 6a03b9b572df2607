"""What a user is shown when a Google sync step fails (`googleSync.error`, `syncError`).

A stable code and a sentence: `GOOGLE_UNAVAILABLE: Google Calendar did not answer; will retry`.
Google's own answer (status, reason, its short message) may be quoted, as it is the calendar owner's
business; our internals never are: no exception class names, no SQL from an IntegrityError, no ids of
rows. The caller logs the detail.
"""

from __future__ import annotations

from ..calendar_sync import apply_runs
from . import calendar_api, oauth

UNAVAILABLE = "GOOGLE_UNAVAILABLE"
RATE_LIMITED = "GOOGLE_RATE_LIMITED"
REJECTED = "GOOGLE_REJECTED"
TOKEN_REFUSED = "GOOGLE_TOKEN_REFUSED"
SYNC_STOPPED = "SYNC_STOPPED"
SYNC_FAILED = "SYNC_FAILED"
EVENT_SKIPPED = apply_runs.EVENT_SKIPPED
EVENT_NOT_APPLIED = apply_runs.EVENT_NOT_APPLIED

IN_THE_LOGS = apply_runs.IN_THE_LOGS


def describe(error: Exception) -> str:
    """`CODE: sentence` for a failed Google call or sync step."""
    if isinstance(error, calendar_api.CalendarError):
        if error.status is None:  # no answer: the reason is our network library's class name
            return f"{UNAVAILABLE}: Google Calendar did not answer"
        answer = " ".join(part for part in (f"HTTP {error.status}", error.reason) if part)
        if isinstance(error, calendar_api.RetryLater):
            if error.status == 429 or error.reason in calendar_api.RATE_LIMIT_REASONS:
                return f"{RATE_LIMITED}: Google Calendar is limiting requests for this calendar ({answer})"
            return f"{UNAVAILABLE}: Google Calendar is having trouble ({answer})"
        if isinstance(error, calendar_api.TokenRejected):
            return f"{TOKEN_REFUSED}: Google Calendar refused the access token, even after a refresh"
        quoted = f"{answer}: {error.message}" if error.message else answer
        return f"{REJECTED}: Google Calendar refused the request ({quoted})"
    if isinstance(error, oauth.GoogleUnavailable):
        return f"{UNAVAILABLE}: Google's token service could not be reached"
    if isinstance(error, LookupError):
        return f"{SYNC_STOPPED}: Google Calendar was disconnected or switched to one-way during the sync"
    return f"{SYNC_FAILED}: something went wrong on our side; {IN_THE_LOGS}"


def will_retry(error: Exception) -> str:
    return f"{describe(error)}; will retry"


def gave_up(error: Exception, attempts: int) -> str:
    return f"{describe(error)}; gave up after {attempts} attempts"




def unapplied_event(event_id: object, error: Exception) -> str:
    """One Google event two-way sync skipped: our own reason when it is bad data, else only that it failed."""
    return apply_runs.unapplied_event("Google", event_id, error)
