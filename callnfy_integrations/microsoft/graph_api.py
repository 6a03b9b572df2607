"""Microsoft Graph over requests: the few calls the provider makes, with Graph's errors sorted into what
the caller can do (401: refresh once; 429/503/5xx: later, after `Retry-After`; others: refused)."""

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
