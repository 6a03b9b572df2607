"""Graph v1.0: `/me`, `/me/mailboxSettings`, `/me/calendars` and events (create with `transactionId`,
get, list, PATCH, DELETE) in the default calendar (`/me/events`, `/me/calendar/events`) or a given one
(`/me/calendars/{id}/events`).

Every handler starts with `begin(<name>)`, before authentication, so tests can count, inspect and fail
each call; writes then sleep `write_delay` outside the lock. Reading calendars needs Calendars.Read or
Calendars.ReadWrite, writing Calendars.ReadWrite, `/me` User.Read, mailboxSettings MailboxSettings.Read
(not in Callnfy's scopes: Graph answers 403 without it).
"""

from __future__ import annotations

import copy
import re

from flask import Blueprint, jsonify, request

from . import mailbox, subscriptions
from .common import READ, WRITE, authorized, begin, calendar_for, json_body, page, respond, shown
from .errors import graph_error
from .mailbox import display_name
from .store import state, user_id

blp = Blueprint("microsoft_graph", __name__)
PROPERTY_FILTER = re.compile(r"singleValueExtendedProperties/Any\(\s*ep\s*:\s*ep/id\s+eq\s+'([^']+)'\s+and\s+"
                             r"ep/value\s+eq\s+'([^']*)'\s*\)", re.IGNORECASE)

# -- the user -----------------------------------------------------------------------------------------

@blp.get("/me")
def me():
    early = begin("me.get")
    if early:
        return early
    email, error = authorized(("User.Read", "User.ReadWrite", "User.ReadBasic.All"))
    if error:
        return error
    name = display_name(email)
    return jsonify({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
                    "businessPhones": [], "displayName": name, "givenName": name.split()[0],
                    "surname": name.split()[-1], "jobTitle": None, "mail": email, "mobilePhone": None,
                    "officeLocation": None, "preferredLanguage": "en-GB", "userPrincipalName": email,
                    "id": user_id(email)})


def _time_zone(email: str) -> str:
    return (state().settings.get("time_zones") or {}).get(email, "GMT Standard Time")


@blp.get("/me/mailboxSettings")
@blp.get("/me/mailboxSettings/timeZone")
def mailbox_settings():
    early = begin("mailboxSettings.get")
    if early:
        return early
    email, error = authorized(("MailboxSettings.Read", "MailboxSettings.ReadWrite"))
    if error:
        return error
    zone_name = _time_zone(email)
    if request.path.endswith("/timeZone"):
        return jsonify({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('"
                        f"{user_id(email)}')/mailboxSettings/timeZone", "value": zone_name})
    return jsonify({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Me/mailboxSettings",
                    "timeZone": zone_name, "dateFormat": "dd/MM/yyyy", "timeFormat": "HH:mm",
                    "language": {"locale": "en-GB", "displayName": "English (United Kingdom)"},
                    "workingHours": {"daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                                     "startTime": "08:00:00.0000000", "endTime": "17:00:00.0000000",
                                     "timeZone": {"name": zone_name}},
                    "userPurpose": {"value": "user"}})


@blp.get("/me/calendars")
def calendars():
    early = begin("calendars.list")
    if early:
        return early
    email, error = authorized(READ)
    if error:
        return error
    with state().lock:
        found = list(mailbox.mailbox(email)["calendars"].values())
    return jsonify({"@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#users('{user_id(email)}')"
                                      "/calendars", "value": found})


# -- events -------------------------------------------------------------------------------------------

@blp.post("/me/events")
@blp.post("/me/calendar/events")
@blp.post("/me/calendars/<calendar_id>/events")
def create(calendar_id=None):
    early = begin("events.create", write=True)
    if early:
        return early
    email, error = authorized(WRITE)
    if error:
        return error
    body = json_body()
    if body is None:
        return graph_error(400)
    problem = mailbox.validate(body)
    if problem:
        return graph_error(400, *problem)
    with state().lock:
        found, error = calendar_for(email, calendar_id)
        if error:
            return error
        if not found["canEdit"]:
            return graph_error(403)
        existing = _transaction(email, body.get("transactionId"))
        if existing is not None:  # a retried POST: the event the first one made, not a second event
            return respond(shown(existing), 201)
        event = mailbox.build(email, found["id"], body)
        if mailbox.end_before_start(event):
            return graph_error(400, *mailbox.END_BEFORE_START)
        mailbox.mailbox(email)["events"][event["id"]] = mailbox.touch(email, event)
        if body.get("transactionId"):
            mailbox.mailbox(email)["transactions"][body["transactionId"]] = event["id"]
        subscriptions.changed(email, event, "created")
        return respond(shown(event), 201)


def _transaction(email: str, transaction_id: str | None) -> dict | None:
    if not transaction_id:
        return None
    box = mailbox.mailbox(email)
    return box["events"].get(box["transactions"].get(transaction_id, ""))


def _existing(email: str, calendar_id: str | None, event_id: str, write: bool = False):
    """(master, occurrence or None, None) for an item of this mailbox (and calendar, when given);
    a write to a calendar the user cannot edit is 403."""
    master, occurrence = mailbox.find(email, event_id)
    if master is None or (calendar_id and master["_calendar"] != calendar_id):
        return None, None, graph_error(404)
    if write and not mailbox.calendar(email, master["_calendar"])["canEdit"]:
        return None, None, graph_error(403)
    return master, occurrence, None


@blp.get("/me/events/<event_id>")
@blp.get("/me/calendar/events/<event_id>")
@blp.get("/me/calendars/<calendar_id>/events/<event_id>")
def get(event_id, calendar_id=None):
    early = begin("events.get")
    if early:
        return early
    email, error = authorized(READ)
    if error:
        return error
    with state().lock:
        master, occurrence, error = _existing(email, calendar_id, event_id)
        return error or respond(shown(occurrence or master))


@blp.patch("/me/events/<event_id>")
@blp.patch("/me/calendar/events/<event_id>")
@blp.patch("/me/calendars/<calendar_id>/events/<event_id>")
def update(event_id, calendar_id=None):
    early = begin("events.update", write=True)
    if early:
        return early
    email, error = authorized(WRITE)
    if error:
        return error
    body = json_body()
    if body is None:
        return graph_error(400)
    problem = mailbox.validate(body, partial=True)
    if problem:
        return graph_error(400, *problem)
    with state().lock:
        master, occurrence, error = _existing(email, calendar_id, event_id, write=True)
        if error:
            return error
        changed = copy.deepcopy(occurrence or master)
        mailbox.apply_patch(changed, body)
        if mailbox.end_before_start(changed):
            return graph_error(400, *mailbox.END_BEFORE_START)
        if occurrence is not None:  # changing one occurrence makes it an exception of the series
            exceptions = master.setdefault("_exceptions", {})
            exceptions[occurrence["_key"]] = {**exceptions.get(occurrence["_key"], {}), **body}
        else:
            mailbox.apply_patch(master, body)
        mailbox.touch(email, master)
        subscriptions.changed(email, master, "updated")
        _, occurrence = mailbox.find(email, event_id)
        return respond(shown(occurrence or master))


@blp.delete("/me/events/<event_id>")
@blp.delete("/me/calendar/events/<event_id>")
@blp.delete("/me/calendars/<calendar_id>/events/<event_id>")
def delete(event_id, calendar_id=None):
    early = begin("events.delete", write=True)
    if early:
        return early
    email, error = authorized(WRITE)
    if error:
        return error
    with state().lock:
        master, occurrence, error = _existing(email, calendar_id, event_id, write=True)
        if error:
            return error
        remove(email, master, occurrence)
        return "", 204


def remove(email: str, master: dict, occurrence: dict | None = None) -> None:
    """Delete an event (gone: a second DELETE or GET is 404), or one occurrence of a series."""
    if occurrence is not None:
        master.setdefault("_cancelled", []).append(occurrence["_key"])
        mailbox.touch(email, master)
        subscriptions.changed(email, master, "updated")
        return
    del mailbox.mailbox(email)["events"][master["id"]]
    mailbox.touch(email, master)  # the mailbox's sequence moves on: delta reports the removal
    subscriptions.changed(email, master, "deleted")


@blp.get("/me/events")
@blp.get("/me/calendar/events")
@blp.get("/me/calendars/<calendar_id>/events")
def list_events(calendar_id=None):
    """Single events and series masters (not occurrences), newest first as Graph's default order;
    `$top` (default 10) and `$skip` with `@odata.nextLink`; `$filter` on a single-value extended property
    (`singleValueExtendedProperties/Any(ep: ep/id eq '…' and ep/value eq '…')`, the value compared
    case-insensitively, as Graph documents), any other `$filter` a 400."""
    early = begin("events.list")
    if early:
        return early
    email, error = authorized(READ)
    if error:
        return error
    with state().lock:
        found, error = calendar_for(email, calendar_id)
        if error:
            return error
        events = [e for e in mailbox.mailbox(email)["events"].values() if e["_calendar"] == found["id"]]
        wanted = request.args.get("$filter")
        if wanted is not None:
            match = PROPERTY_FILTER.fullmatch(wanted.strip())
            if match is None:
                return graph_error(400, "BadRequest", "Invalid filter clause")
            events = [e for e in events if any(
                str(p.get("id", "")).lower() == match.group(1).lower()
                and str(p.get("value", "")).lower() == match.group(2).lower()
                for p in e.get("singleValueExtendedProperties") or [])]
        events.sort(key=lambda e: e["createdDateTime"], reverse=True)
        return respond(page([shown(e) for e in events]))
