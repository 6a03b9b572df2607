"""What every Graph handler does: count, log and maybe fail the call, authenticate, read the body, show
events in the preferred zone, answer pages."""

from __future__ import annotations

import re
import time
from urllib.parse import urlencode

from flask import jsonify, request

from ..google_sandbox.control import intercept
from . import mailbox, times
from .errors import graph_error
from .oauth import bearer
from .store import state

READ = ("Calendars.Read", "Calendars.ReadWrite")
WRITE = ("Calendars.ReadWrite",)
PREFER_ZONE = re.compile(r'outlook\.timezone\s*=\s*"([^"]+)"')
EXPAND = re.compile(r"singleValueExtendedProperties\(\$filter=(.+)\)", re.IGNORECASE)
EXPAND_ID = re.compile(r"id\s+eq\s+'([^']+)'", re.IGNORECASE)


def begin(name: str, write: bool = False):
    """Count, log and maybe fail this call (see google_sandbox.control.intercept); then the write delay."""
    scripted = intercept(name, graph_error, sandbox=state())
    if scripted is None and write:
        time.sleep(float(state().settings.get("write_delay") or 0))
    return scripted


def authorized(scopes: tuple[str, ...]):
    """(email, None) for a good token with one of `scopes`; (None, Graph's 401/403) otherwise."""
    email, status = bearer(scopes)
    if email is None:
        return None, graph_error(status)
    return email, None


def prefer_zone() -> str:
    """The zone of `Prefer: outlook.timezone="…"` (Windows or IANA name), UTC by default or when unknown."""
    match = PREFER_ZONE.search(request.headers.get("Prefer", ""))
    if match:
        try:
            times.zone(match.group(1))
            return match.group(1)
        except ValueError:
            pass
    return "UTC"


def expand() -> set[str] | None:
    """The extended property ids asked for with `$expand=singleValueExtendedProperties($filter=id eq '…')`
    (Graph returns extended properties only when expanded), lower-cased; None when not asked for."""
    match = EXPAND.search(request.args.get("$expand", ""))
    return {i.lower() for i in EXPAND_ID.findall(match.group(1))} if match else None


def shown(event: dict) -> dict:
    return mailbox.public(event, prefer_zone(), expand())


def respond(body, status: int = 200):
    response = jsonify(body)
    response.status_code = status
    if PREFER_ZONE.search(request.headers.get("Prefer", "")):
        response.headers["Preference-Applied"] = f'outlook.timezone="{prefer_zone()}"'
    return response


def json_body() -> dict | None:
    body = request.get_json(force=True, silent=True)
    return body if isinstance(body, dict) else None


def calendar_for(email: str, calendar_id: str | None):
    """(the calendar, None), or (None, 404) when the mailbox has no calendar with that id."""
    found = mailbox.calendar(email, calendar_id)
    return (found, None) if found else (None, graph_error(404))


def page(items: list[dict]) -> dict:
    """One page of `items` by `$top` / `$skip`, with the next page's link when there is one."""
    try:
        top, skip = int(request.args.get("$top", 10)), int(request.args.get("$skip", 0))
    except ValueError:
        top, skip = 10, 0
    body: dict = {"value": items[skip:skip + top]}
    if skip + top < len(items):
        args = {**request.args.to_dict(), "$skip": str(skip + top)}
        body["@odata.nextLink"] = f"{request.base_url}?{urlencode(args, safe='$:')}"
    return body
