"""What a user is shown when a Microsoft sync step fails (`microsoftSync.error`, `syncError`): a stable
code and a sentence.

Graph's own answer (status and error code) may be quoted; our internals never are (the caller logs them).
"""

from __future__ import annotations

from ..calendar_sync import apply_runs
from . import graph_api, oauth

UNAVAILABLE = "MICROSOFT_UNAVAILABLE"
RATE_LIMITED = "MICROSOFT_RATE_LIMITED"
REJECTED = "MICROSOFT_REJECTED"
SYNC_STOPPED = "SYNC_STOPPED"
SYNC_FAILED = "SYNC_FAILED"
TOKEN_REFUSED = "MICROSOFT_TOKEN_REFUSED"
IN_THE_LOGS = apply_runs.IN_THE_LOGS


def describe(error: Exception) -> str:
    if isinstance(error, graph_api.GraphError):
        answer = " ".join(part for part in (f"HTTP {error.status}", error.code) if part)
        if error.status == 429:
            return f"{RATE_LIMITED}: Microsoft Graph is limiting requests for this calendar ({answer})"
        if error.retryable:
            return f"{UNAVAILABLE}: Microsoft Graph is having trouble ({answer})"
        if isinstance(error, graph_api.Unauthorized):
            return f"{TOKEN_REFUSED}: Microsoft refused the access token, even after a refresh"
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
