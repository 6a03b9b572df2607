"""The owner's Google calendars (`GET /integrations/google/calendars`): which there are, and which count
as busy for availability.

Listing needs the calendar-list scope, asked for since connections could choose calendars; an older
connection lacks it (known from the scopes recorded at connect, or from Google's 403) and must be
connected again. Google is asked without a transaction open: the integration is read on the
autocommit engine, the token comes from `google.tokens`, the call goes through `sync.call`.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from ..errors import ApiError, Forbidden, ServiceUnavailable
from ..extensions import AUTOCOMMIT_BIND, db
from ..integrations.models import CONNECTED, GOOGLE_CALENDAR, Integration
from . import calendar_api, oauth
from .service import NotConnected
from .sync import QuotaWait, call
from .tokens import ReauthorizationRequired

PROVIDER = "google"
PRIMARY = "primary"  # how the connected calendar's id may be stored: the calendar listed with primary: true


class InsufficientScope(Forbidden):
    code = "INSUFFICIENT_SCOPE"
    message = ("Google Calendar was connected without permission to list your calendars: "
               "reconnect Google Calendar to choose calendars")


class GoogleUnavailable(ServiceUnavailable):
    code = "GOOGLE_UNAVAILABLE"
    message = "Google Calendar did not answer; try again shortly"


class GoogleRefused(ApiError):
    status = 502
    code = "GOOGLE_ERROR"
    message = "Google Calendar refused to list your calendars"


def _connection(user_id: uuid.UUID) -> Any:
    """The connected integration's id and granted scopes, read outside the caller's session."""
    with db.engines[AUTOCOMMIT_BIND].connect() as connection:
        return connection.execute(select(Integration.id, Integration.scopes).where(
            Integration.user_id == user_id, Integration.provider == GOOGLE_CALENDAR,
            Integration.status == CONNECTED)).one_or_none()


def fetch(user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The owner's calendars as Google lists them: `{id, name, primary, timeZone}` each.

    404 not connected; 403 INSUFFICIENT_SCOPE (connected without the calendar-list scope); 503 when
    Google cannot answer now (down, rate limited); 502 when it refuses otherwise."""
    row = _connection(user_id)
    if row is None:
        raise NotConnected()
    if row.scopes is not None and not oauth.may_list_calendars(row.scopes):
        raise InsufficientScope()
    try:
        entries = call(row.id, calendar_api.list_calendars)
    except calendar_api.Rejected as exc:
        if exc.status == 403 and exc.reason == "insufficientPermissions":
            raise InsufficientScope() from None
        raise GoogleRefused(details=f"Google answered {exc.status} {exc.reason}".strip()) from None
    except calendar_api.RetryLater as exc:
        headers = {"Retry-After": str(int(exc.retry_after) + 1)} if exc.retry_after else None
        raise GoogleUnavailable(headers=headers) from None
    except QuotaWait as exc:
        raise GoogleUnavailable(headers={"Retry-After": str(int(exc.seconds) + 1)}) from None
    except oauth.GoogleUnavailable:
        raise GoogleUnavailable() from None
    except calendar_api.TokenRejected:  # refused even after a refresh
        raise GoogleRefused(details="Google refused the access token") from None
    except (ReauthorizationRequired, LookupError):  # the grant ended, or disconnected meanwhile
        raise NotConnected() from None
    return [{"id": e["id"], "name": e.get("summaryOverride") or e.get("summary") or e["id"],
             "primary": bool(e.get("primary")), "time_zone": e.get("timeZone")}
            for e in entries if e.get("id")]


def ids(user_id: uuid.UUID) -> set[str] | None:
    """The ids of the owner's calendars, "primary" included; None when they cannot be listed now."""
    try:
        return {PRIMARY} | {c["id"] for c in fetch(user_id)}
    except ApiError:
        return None


def mark_busy(calendars: list[dict[str, Any]], chosen: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Each calendar with `busy`: whether availability counts it (`chosen`: the settings' busyCalendars)."""
    busy_ids = {item["calendarId"] for item in chosen if item.get("provider") == PROVIDER}
    return [{**c, "busy": c["id"] in busy_ids or (c["primary"] and PRIMARY in busy_ids)} for c in calendars]
