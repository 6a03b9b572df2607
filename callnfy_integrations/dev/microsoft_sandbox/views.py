"""calendarView (occurrences expanded) and its delta query.

`GET …/calendarView/delta?startDateTime&endDateTime` answers pages of `Prefer: odata.maxpagesize` events
(default `delta_page_size`) linked by `@odata.nextLink` (`$skiptoken`); the last page has an
`@odata.deltaLink` (`$deltatoken`). Following a deltaLink answers what changed in the window since:
new or changed events and occurrences in full, and `{"id", "@removed": {"reason": "deleted"}}` for
those deleted, cancelled or moved out of the window. A deltaLink stays usable (replays are allowed);
an unknown or expired one is 410 `syncStateNotFound` with a `Location` to start again, as Graph
documents for a synchronization reset.
"""

from __future__ import annotations

import re
import secrets

from flask import Blueprint, request

from . import mailbox, times
from .common import READ, authorized, begin, calendar_for, page, respond, shown
from .errors import graph_error
from .store import state

blp = Blueprint("microsoft_views", __name__)

CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#Collection(event)"
MAX_PAGE = re.compile(r"odata\.maxpagesize\s*=\s*(\d+)")


def _arg(name: str) -> str | None:
    """A query parameter; Graph's names are case-insensitive (`startdatetime` works too)."""
    return next((v for k, v in request.args.items() if k.lower() == name.lower()), None)


def _window():
    """(first, last) of startDateTime / endDateTime, or a Graph 400."""
    try:
        first = times.parse_query_time(_arg("startDateTime"))
        last = times.parse_query_time(_arg("endDateTime"))
    except ValueError:
        return None, graph_error(400, "ErrorInvalidParameter", "This request requires a time window specified "
                                 "by the query string parameters StartDateTime and EndDateTime.")
    return (first, last), None


@blp.get("/me/calendarView")
@blp.get("/me/calendar/calendarView")
@blp.get("/me/calendars/<calendar_id>/calendarView")
def calendar_view(calendar_id=None):
    early = begin("calendarView.list")
    if early:
        return early
    email, error = authorized(READ)
    if error:
        return error
    window, error = _window()
    if error:
        return error
    with state().lock:
        found, error = calendar_for(email, calendar_id)
        if error:
            return error
        return respond(page([shown(e) for e in mailbox.expanded(email, found["id"], *window)]))


def _page_size() -> int:
    match = MAX_PAGE.search(request.headers.get("Prefer", ""))
    return max(1, int(match.group(1)) if match else int(state().settings.get("delta_page_size") or 10))


def _removed(event_id: str) -> dict:
    return {"@odata.type": "#microsoft.graph.event", "id": event_id, "@removed": {"reason": "deleted"}}


def _round(email: str, calendar_id: str, window: tuple, since: dict | None) -> tuple[list[dict], dict]:
    """The items of a delta round (all events in the window, or the changes since `since`) and the
    sync state the round ends in."""
    current = mailbox.expanded(email, calendar_id, *window)
    known = set(since["known"]) if since else set()
    sequence = since["sequence"] if since else -1
    items = [e for e in current if e["id"] not in known or _sequence(email, e) > sequence]
    ids = {e["id"] for e in current}
    removed = [_removed(i) for i in sorted(known - ids)]
    after = {"email": email, "calendar": calendar_id, "window": window, "known": sorted(ids),
             "sequence": mailbox.mailbox(email)["sequence"]}
    return [{"@odata.type": "#microsoft.graph.event", **shown(e)} for e in items] + removed, after


def _sequence(email: str, instance: dict) -> int:
    master = mailbox.mailbox(email)["events"].get(instance.get("_master") or instance["id"])
    return (master or instance).get("_seq", 0)


def _answer(items: list[dict], after: dict):
    """The first page of a round; the rest is kept under a $skiptoken, the end state under a $deltatoken."""
    size = _page_size()
    if len(items) > size:
        token = secrets.token_urlsafe(24)
        state().skip_tokens[token] = {"items": items[size:], "after": after}
        return respond({"@odata.context": CONTEXT, "@odata.nextLink": f"{request.base_url}?$skiptoken={token}",
                        "value": items[:size]})
    token = secrets.token_urlsafe(24)
    state().delta_tokens[token] = after
    return respond({"@odata.context": CONTEXT, "@odata.deltaLink": f"{request.base_url}?$deltatoken={token}",
                    "value": items})


def _gone():
    response, status = graph_error(410)
    response.status_code = status
    response.headers["Location"] = request.base_url  # start again: the initial query, no token
    return response


@blp.get("/me/calendarView/delta")
@blp.get("/me/calendar/calendarView/delta")
@blp.get("/me/calendars/<calendar_id>/calendarView/delta")
def delta(calendar_id=None):
    early = begin("calendarView.delta")
    if early:
        if early.status_code == 410:
            early.headers["Location"] = request.base_url
        return early
    email, error = authorized(READ)
    if error:
        return error
    with state().lock:
        found, error = calendar_for(email, calendar_id)
        if error:
            return error
        if _arg("$skiptoken"):
            return _next_page(email, found["id"], _arg("$skiptoken"))
        if _arg("$deltatoken"):
            since = state().delta_tokens.get(_arg("$deltatoken"))
            if since is None or (since["email"], since["calendar"]) != (email, found["id"]):
                return _gone()
            return _answer(*_round(email, found["id"], since["window"], since))
        window, error = _window()
        if error:
            return error
        return _answer(*_round(email, found["id"], window, None))


def _next_page(email: str, calendar_id: str, token: str):
    rest = state().skip_tokens.get(token)  # a page asked for again is answered again
    if rest is None or (rest["after"]["email"], rest["after"]["calendar"]) != (email, calendar_id):
        return _gone()
    return _answer(rest["items"], rest["after"])
