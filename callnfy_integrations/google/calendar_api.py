"""Calendar v3 through google-api-python-client: the few calls sync makes, and what their errors mean.

The service object is built once per process from the library's bundled (static) discovery document,
with `api_endpoint` = GOOGLE_CALENDAR_API_URL; each call runs on an `AuthorizedHttp` carrying the
integration's access token from `google.tokens`. Errors are sorted into what the caller can do:
refresh once (401), back off and retry (403 rate limits, 429, 5xx, network), or give up (other 4xx).
"""

from __future__ import annotations

import json
import ssl
import threading
from datetime import UTC, datetime
from typing import Any

import google_auth_httplib2
import httplib2
from flask import current_app
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

HTTP_TIMEOUT = 10
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}

_local = threading.local()


class CalendarError(Exception):
    """A Calendar call failed; `status` is the HTTP status (None: no response), `reason` Google's."""

    def __init__(self, status: int | None, reason: str, message: str = "", retry_after: float | None = None):
        super().__init__(f"{status or 'network'} {reason}: {message}".strip())
        self.status, self.reason, self.message, self.retry_after = status, reason, message, retry_after


class TokenRejected(CalendarError):
    """401: the access token was refused; refresh once and try again."""


class RetryLater(CalendarError):
    """Rate limited, Google-side trouble or no answer: back off and try again."""


class Rejected(CalendarError):
    """Any other 4xx: the request itself is wrong; retrying the same request cannot help."""


def _service():
    """The Calendar service object, one per thread (httplib2 connections are not thread-safe)."""
    endpoint = current_app.config["GOOGLE_CALENDAR_API_URL"]
    cached = getattr(_local, "service", None)
    if cached is None or cached[0] != endpoint:
        transport = httplib2.Http(timeout=HTTP_TIMEOUT)
        service = build("calendar", "v3", static_discovery=True, cache_discovery=False,
                        client_options={"api_endpoint": endpoint}, http=transport)
        cached = _local.service = (endpoint, service, transport)
    return cached[1], cached[2]


def _execute(build_request, access_token: str) -> dict[str, Any]:
    service, transport = _service()
    # No refresh inside the library: google.tokens owns refreshing (under its lock).
    http = google_auth_httplib2.AuthorizedHttp(Credentials(access_token), http=transport, refresh_status_codes=())
    try:
        return build_request(service).execute(http=http, num_retries=0) or {}
    except HttpError as exc:
        raise _classify(exc) from None
    except (httplib2.HttpLib2Error, TimeoutError, ssl.SSLError, ConnectionError, OSError) as exc:
        transport.connections.clear()  # a half-read connection must not be reused
        raise RetryLater(None, type(exc).__name__) from None


def _classify(exc: HttpError) -> CalendarError:
    status = int(exc.resp.status)
    reason, message = "", ""
    try:
        error = json.loads(exc.content or b"{}").get("error", {})
        message = str(error.get("message", ""))[:200]
        reason = str((error.get("errors") or [{}])[0].get("reason", ""))
    except (ValueError, AttributeError, IndexError, TypeError):
        pass
    retry_after = None
    try:
        retry_after = float(exc.resp.get("retry-after")) if exc.resp.get("retry-after") else None
    except (TypeError, ValueError):
        pass
    if status == 401:
        return TokenRejected(status, reason or "authError", message)
    if status == 429 or status >= 500 or (status == 403 and reason in RATE_LIMIT_REASONS):
        return RetryLater(status, reason or "backendError", message, retry_after)
    return Rejected(status, reason or "invalid", message)


def insert_event(access_token: str, calendar_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return _execute(lambda s: s.events().insert(calendarId=calendar_id, body=body, sendUpdates="none"), access_token)


def update_event(access_token: str, calendar_id: str, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return _execute(lambda s: s.events().update(calendarId=calendar_id, eventId=event_id, body=body,
                                                sendUpdates="none"), access_token)


def patch_event(access_token: str, calendar_id: str, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Change only the fields in `body` (Google merges objects field by field); everything else stays."""
    return _execute(lambda s: s.events().patch(calendarId=calendar_id, eventId=event_id, body=body,
                                               sendUpdates="none"), access_token)


def delete_event(access_token: str, calendar_id: str, event_id: str) -> None:
    """Delete; an event Google no longer has (404, or 410 already deleted) counts as deleted."""
    try:
        _execute(lambda s: s.events().delete(calendarId=calendar_id, eventId=event_id, sendUpdates="none"),
                 access_token)
    except Rejected as exc:
        if exc.status not in (404, 410):
            raise


def calendar_time_zone(access_token: str, calendar_id: str) -> str | None:
    """The calendar's time zone, from an events.list response (`calendar.events` may not call calendars.get)."""
    page = _execute(lambda s: s.events().list(calendarId=calendar_id, maxResults=1, fields="timeZone"),
                    access_token)
    return page.get("timeZone") or None


# -- two-way sync ---------------------------------------------------------------------------------

class SyncTokenExpired(CalendarError):
    """410 on a list with a sync token: Google requires a full sync."""


# Only what sync reads: the events (timed, status, attendees, our private link tags) and the tokens.
LIST_FIELDS = ("nextPageToken,nextSyncToken,timeZone,items(id,etag,status,summary,start,end,transparency,"
               "attendees(email,displayName,self,organizer,responseStatus),organizer(email,self),created,updated,"
               "recurrence,recurringEventId,extendedProperties)")
BASELINE_FIELDS = "nextPageToken,nextSyncToken"
PAGE_SIZE = 250


def list_events(access_token: str, calendar_id: str, *, sync_token: str | None = None, page_token: str | None = None,
                show_deleted: bool = False, fields: str = LIST_FIELDS) -> dict[str, Any]:
    """One page of events.list: incremental with `sync_token` (deletions included), else everything."""
    params: dict[str, Any] = {"calendarId": calendar_id, "maxResults": PAGE_SIZE, "fields": fields}
    if sync_token:
        params["syncToken"] = sync_token
    elif show_deleted:
        params["showDeleted"] = True
    if page_token:
        params["pageToken"] = page_token
    try:
        return _execute(lambda s: s.events().list(**params), access_token)
    except Rejected as exc:
        if exc.status == 410 and sync_token:
            raise SyncTokenExpired(exc.status, exc.reason, exc.message) from None
        raise


def watch(access_token: str, calendar_id: str, *, channel_id: str, token: str, address: str,
          ttl_seconds: int) -> dict[str, Any]:
    """Open a push channel on the calendar's events: {id, resourceId, expiration (ms), …}."""
    body = {"id": channel_id, "type": "web_hook", "address": address, "token": token,
            "params": {"ttl": str(ttl_seconds)}}
    return _execute(lambda s: s.events().watch(calendarId=calendar_id, body=body), access_token)


def stop_channel(access_token: str, channel_id: str, resource_id: str) -> None:
    """channels.stop. A channel Google no longer knows (404), or a grant it no longer honours (401,
    403), counts as stopped: the channel dies with it. Rate limits, 5xx and no answer raise RetryLater."""
    try:
        _execute(lambda s: s.channels().stop(body={"id": channel_id, "resourceId": resource_id}), access_token)
    except (Rejected, TokenRejected):
        pass


# -- availability ----------------------------------------------------------------------------------

# Only what busy time needs: when, whether it blocks, the owner's answer, our mirror's tag.
WINDOW_FIELDS = ("nextPageToken,timeZone,items(id,status,start,end,transparency,attendees(self,responseStatus),"
                 "extendedProperties(private))")
WINDOW_PAGE_SIZE = 2500  # Google's maximum page


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def list_window(access_token: str, calendar_id: str, start: datetime, end: datetime, *,
                page_token: str | None = None) -> dict[str, Any]:
    """One page of the events that overlap [start, end), recurring events expanded into instances."""
    params: dict[str, Any] = {"calendarId": calendar_id, "timeMin": _rfc3339(start), "timeMax": _rfc3339(end),
                              "singleEvents": True, "maxResults": WINDOW_PAGE_SIZE, "fields": WINDOW_FIELDS}
    if page_token:
        params["pageToken"] = page_token
    return _execute(lambda s: s.events().list(**params), access_token)


# -- the owner's calendars ------------------------------------------------------------------------

CALENDAR_LIST_FIELDS = "nextPageToken,items(id,summary,summaryOverride,primary,timeZone,accessRole)"
CALENDAR_LIST_PAGE_SIZE = 250  # Google's maximum page
CALENDAR_LIST_MAX_PAGES = 20


def list_calendars(access_token: str) -> list[dict[str, Any]]:
    """Every entry of the owner's calendar list (all pages; only the fields shown to choose from).
    Needs a calendar-list scope: without one, Google answers 403 `insufficientPermissions` (Rejected)."""
    entries: list[dict[str, Any]] = []
    page_token = None
    for _ in range(CALENDAR_LIST_MAX_PAGES):
        params: dict[str, Any] = {"maxResults": CALENDAR_LIST_PAGE_SIZE, "fields": CALENDAR_LIST_FIELDS}
        if page_token:
            params["pageToken"] = page_token
        page = _execute(lambda s, params=params: s.calendarList().list(**params), access_token)
        entries += page.get("items") or []
        page_token = page.get("nextPageToken")
        if not page_token:
            break
    return entries
