"""Microsoft Graph over requests: the few calls the provider makes, with Graph's errors sorted into what
the caller can do (401: refresh once; 429/503/5xx: later, after `Retry-After`; 410 on a delta link:
`DeltaExpired`, start a new round; others: refused)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests
from flask import current_app

from .event_body import TAG_EXPAND
from .oauth import MicrosoftUnavailable

HTTP_TIMEOUT = 10
PAGE_SIZE = 50  # events per calendarView page ($top); the rest follows @odata.nextLink
# What the busy copy reads of an event.
BUSY_FIELDS = "id,start,end,isAllDay,showAs,isCancelled,responseStatus,type"


class GraphError(Exception):
    """Graph refused or failed a request: its status, Graph's error code and any Retry-After (seconds)."""

    def __init__(self, status: int, code: str | None, retry_after: float | None = None):
        super().__init__(f"Graph answered {status} {code or ''}".strip())
        self.status, self.code, self.retry_after = status, code, retry_after

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


class Unauthorized(GraphError):
    """401: the access token is not (or no longer) good; refresh once and ask again."""


class DeltaExpired(GraphError):
    """Graph dropped the delta round's state (410, `syncStateNotFound`, `resyncRequired`): start a new
    round with the initial query (Graph documents this as a synchronization reset)."""


DELTA_RESET_CODES = ("syncStateNotFound", "resyncRequired")


def _retry_after(response: requests.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def request(method: str, token: str, url: str, *, params: dict | None = None, headers: dict | None = None,
            json: Any = None) -> dict[str, Any] | None:
    """One Graph request (url absolute: a next or delta link; else relative to MICROSOFT_GRAPH_URL);
    its JSON, or None for an answer without a body (204)."""
    if not url.startswith(("http://", "https://")):
        url = f"{current_app.config['MICROSOFT_GRAPH_URL']}{url}"
    try:
        response = requests.request(method, url, params=params, json=json, timeout=HTTP_TIMEOUT,
                                    allow_redirects=False,
                                    headers={"Authorization": f"Bearer {token}", **(headers or {})})
    except requests.RequestException as exc:
        raise MicrosoftUnavailable(f"Graph: {type(exc).__name__}") from None
    if response.status_code >= 400:
        try:
            code = (response.json().get("error") or {}).get("code")
        except (ValueError, AttributeError):
            code = None
        kind = Unauthorized if response.status_code == 401 else GraphError
        raise kind(response.status_code, code, _retry_after(response))
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise MicrosoftUnavailable("Graph: unreadable answer") from None


def get(token: str, url: str, *, params: dict | None = None, headers: dict | None = None) -> dict[str, Any]:
    """GET a Graph URL and its JSON."""
    return request("GET", token, url, params=params, headers=headers) or {}


def calendar_path(calendar_id: str) -> str:
    """The calendar's path: `default` is the mailbox's default calendar."""
    return "/me/calendar" if calendar_id == "default" else f"/me/calendars/{quote(calendar_id, safe='')}"


def _graph_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def calendar_view(token: str, calendar_id: str, start: datetime, end: datetime, zone_name: str,
                  next_link: str | None = None) -> dict[str, Any]:
    """One page of the calendar's events and occurrences (recurrences expanded by Graph) overlapping
    [start, end), with start and end shown in `zone_name` (`Prefer: outlook.timezone`)."""
    headers = {"Prefer": f'outlook.timezone="{zone_name}"'}
    if next_link:
        return get(token, next_link, headers=headers)
    params = {"startDateTime": _graph_time(start), "endDateTime": _graph_time(end), "$top": str(PAGE_SIZE),
              "$select": BUSY_FIELDS, "$expand": TAG_EXPAND}
    return get(token, f"{calendar_path(calendar_id)}/calendarView", params=params, headers=headers)


def calendars(token: str) -> list[dict[str, Any]]:
    """The owner's calendars (one page: Graph answers them all for a mailbox's usual few)."""
    return get(token, "/me/calendars", params={"$top": "100"}).get("value") or []


# -- two-way: subscriptions and the delta of a calendar view -------------------------------------------

def tagged_events(token: str, calendar_id: str, property_id: str, value: str) -> list[dict[str, Any]]:
    """The calendar's events carrying this single-value extended property (ids only; one page: a tag is
    on one event, two at most after a lost answer)."""
    found = get(token, f"{calendar_path(calendar_id)}/events", params={
        "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{property_id}' and ep/value eq '{value}')",
        "$select": "id", "$top": "10"})
    return [item for item in found.get("value") or [] if isinstance(item, dict) and item.get("id")]


def event_or_none(token: str, event_id: str) -> dict[str, Any] | None:
    """The event as it is now (times in UTC), or None when Graph no longer has it (404/410)."""
    try:
        return get(token, f"/me/events/{quote(event_id, safe='')}", headers={"Prefer": 'outlook.timezone="UTC"'})
    except GraphError as exc:
        if exc.status in (404, 410):
            return None
        raise


def subscription_resource(calendar_id: str) -> str:
    """What a subscription watches: the events of the calendar (`me/events`: the default calendar's).
    The id goes into a JSON body unquoted, as Graph lists it."""
    return "me/events" if calendar_id == "default" else f"me/calendars/{calendar_id}/events"


def create_subscription(token: str, *, resource: str, notification_url: str, lifecycle_url: str,
                        client_state: str, expires_at: datetime) -> dict[str, Any]:
    """POST /subscriptions: Graph first sends the validation handshake to both URLs, then answers 201."""
    return request("POST", token, "/subscriptions", json={
        "changeType": "created,updated,deleted", "resource": resource, "notificationUrl": notification_url,
        "lifecycleNotificationUrl": lifecycle_url, "clientState": client_state,
        "expirationDateTime": _graph_time(expires_at), "latestSupportedTlsVersion": "v1_2"}) or {}


def renew_subscription(token: str, subscription_id: str, expires_at: datetime) -> dict[str, Any]:
    """PATCH a new expiry (renewing also answers a `reauthorizationRequired`); 404 when Graph dropped it."""
    return request("PATCH", token, f"/subscriptions/{quote(subscription_id, safe='')}",
                   json={"expirationDateTime": _graph_time(expires_at)}) or {}


def delete_subscription(token: str, subscription_id: str) -> None:
    """DELETE the subscription; one Graph no longer holds counts as deleted."""
    try:
        request("DELETE", token, f"/subscriptions/{quote(subscription_id, safe='')}")
    except GraphError as exc:
        if exc.status != 404 or isinstance(exc, Unauthorized):
            raise


def delta_page(token: str, calendar_id: str, *, link: str | None = None, start: datetime | None = None,
               end: datetime | None = None, page_size: int = 50) -> dict[str, Any]:
    """One page of the calendar view's delta: the initial query for [start, end) when `link` is None,
    else the `@odata.nextLink` or `@odata.deltaLink` given; at most `page_size` events a page
    (`Prefer: odata.maxpagesize`), times in UTC. A reset of the round's state raises `DeltaExpired`.
    (The delta function takes no `$select` or `$expand`: events come whole, extended properties never.)"""
    headers = {"Prefer": f'odata.maxpagesize={page_size}, outlook.timezone="UTC"'}
    try:
        if link:
            return get(token, link, headers=headers)
        params = {"startDateTime": _graph_time(start), "endDateTime": _graph_time(end)}
        return get(token, f"{calendar_path(calendar_id)}/calendarView/delta", params=params, headers=headers)
    except GraphError as exc:
        if exc.status == 410 or exc.code in DELTA_RESET_CODES:
            raise DeltaExpired(exc.status, exc.code, exc.retry_after) from None
        raise
