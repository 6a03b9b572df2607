"""Mailboxes, calendars and events as Exchange keeps them, and how Graph shows them.

An event is stored as Graph's JSON with its start and end as the client sent them (their own zones),
plus internal `_` keys: `_seq` (the mailbox's change counter at its last change), `_calendar`,
`_cancelled` (occurrence dates removed from a series) and `_exceptions` (changed occurrences).
Call these under the state's lock.
"""

from __future__ import annotations

import copy
import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta

from . import times
from .store import state

SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
READ_ONLY = {"id", "createdDateTime", "lastModifiedDateTime", "changeKey", "@odata.etag", "iCalUId", "type",
             "seriesMasterId", "webLink", "bodyPreview", "isOrganizer", "organizer", "responseStatus",
             "originalStartTimeZone", "originalEndTimeZone", "transactionId", "hasAttachments", "calendar"}
NEVER_SET = "0001-01-01T00:00:00Z"
END_BEFORE_START = ("ErrorCalendarEndDateIsEarlierThanStartDate", "The end date occurs before the start date.")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "0000Z"


def new_id(prefix: str = "AAMkAGI2") -> str:
    """An opaque Exchange-style id (URL-safe base64 with padding, as Graph's REST ids)."""
    return prefix + secrets.token_urlsafe(60) + "="


def mailbox(email: str) -> dict:
    found = state().mailboxes.get(email)
    if found is None:
        digest = hashlib.sha256(email.lower().encode()).hexdigest()[:24]
        default = {"id": f"AAMkADcal{digest}AAA=", "name": "Calendar", "color": "auto", "hexColor": "",
                   "isDefaultCalendar": True, "changeKey": secrets.token_urlsafe(12), "canShare": True,
                   "canViewPrivateItems": True, "canEdit": True, "isRemovable": False,
                   "isTallyingResponses": True, "allowedOnlineMeetingProviders": ["teamsForBusiness"],
                   "defaultOnlineMeetingProvider": "teamsForBusiness",
                   "owner": {"name": display_name(email), "address": email}}
        found = state().mailboxes[email] = {"calendars": {default["id"]: default}, "events": {}, "sequence": 0,
                                            "transactions": {}}
    return found


def display_name(email: str) -> str:
    return email.split("@")[0].replace(".", " ").title()


def calendar(email: str, calendar_id: str | None) -> dict | None:
    """The calendar by id, or the default one for None; None when the mailbox has no such calendar."""
    calendars = mailbox(email)["calendars"]
    if calendar_id is None:
        return next(c for c in calendars.values() if c["isDefaultCalendar"])
    return calendars.get(calendar_id)


def add_calendar(email: str, name: str, can_edit: bool = True, owner: str | None = None) -> dict:
    created = {**calendar(email, None), "id": new_id("AAMkADcal"), "name": name, "isDefaultCalendar": False,
               "canEdit": can_edit, "isRemovable": True, "changeKey": secrets.token_urlsafe(12),
               "owner": {"name": display_name(owner or email), "address": owner or email}}
    mailbox(email)["calendars"][created["id"]] = created
    return created


def validate(body: dict, *, partial: bool = False) -> tuple[str, str] | None:
    """(code, message) of Graph's 400 for a bad event body, or None."""
    for key in ("start", "end"):
        if key in body or not partial:
            try:
                times.moment(body.get(key))
                times.zone((body.get(key) or {}).get("timeZone"))
            except (ValueError, TypeError):
                zone_name = (body.get(key) or {}).get("timeZone") if isinstance(body.get(key), dict) else None
                return ("TimeZoneNotSupportedException",
                        f"A valid TimeZone value must be specified. The following TimeZone value is not "
                        f"supported: '{zone_name or ''}'.")
    if "showAs" in body and body["showAs"] not in SHOW_AS:
        return "BadRequest", f"Cannot convert the literal '{body['showAs']}' to the expected type 'freeBusyStatus'."
    if body.get("recurrence") is not None:
        try:
            times.rule_parts((body["recurrence"] or {}).get("pattern") or {})
        except (KeyError, ValueError, TypeError):
            return "BadRequest", "The recurrence pattern is not valid."
    return None


def end_before_start(event: dict) -> bool:
    return times.moment(event["end"]) < times.moment(event["start"])


def _body_preview(body: dict | None) -> str:
    text = re.sub(r"<[^>]+>", "", (body or {}).get("content") or "")
    return " ".join(text.split())[:255]


def build(email: str, calendar_id: str, body: dict, organizer: dict | None = None) -> dict:
    """A new event from a create body, with Graph's defaults for what the body leaves out."""
    event_id = new_id()
    owner = {"emailAddress": {"name": display_name(email), "address": email}}
    event = {
        "id": event_id, "createdDateTime": now(), "categories": [], "reminderMinutesBeforeStart": 15,
        "isReminderOn": True, "hasAttachments": False, "subject": "", "importance": "normal",
        "sensitivity": "normal", "isAllDay": False, "isCancelled": False, "isOrganizer": organizer is None,
        "responseRequested": True, "seriesMasterId": None, "showAs": "busy", "isOnlineMeeting": False,
        "onlineMeetingUrl": None, "responseStatus": {"response": "organizer", "time": NEVER_SET},
        "body": {"contentType": "html", "content": ""}, "location": {"displayName": ""}, "locations": [],
        "recurrence": None, "attendees": [], "organizer": organizer or owner,
        "webLink": f"https://outlook.office365.com/owa/?itemid={event_id}&exvsurl=1&path=/calendar/item",
        "iCalUId": "040000008200E00074C5B7101A82E008" + secrets.token_hex(28).upper(),
        **{k: copy.deepcopy(v) for k, v in body.items() if k not in READ_ONLY},
        "_calendar": calendar_id,
    }
    if body.get("transactionId"):
        event["transactionId"] = body["transactionId"]
    event["attendees"] = [_attendee(a) for a in event.get("attendees") or []]
    event["type"] = "seriesMaster" if event.get("recurrence") else "singleInstance"
    event["originalStartTimeZone"] = event["start"]["timeZone"]
    event["originalEndTimeZone"] = event["end"]["timeZone"]
    event["bodyPreview"] = _body_preview(event.get("body"))
    return event


def _attendee(attendee: dict) -> dict:
    return {"type": "required", **copy.deepcopy(attendee),
            "status": copy.deepcopy(attendee.get("status") or {"response": "none", "time": NEVER_SET})}


def apply_patch(event: dict, body: dict) -> None:
    """Graph's PATCH: each given property replaces the stored one (complex values as a whole); extended
    properties merge by id; read-only properties are ignored."""
    for key, value in body.items():
        if key in READ_ONLY or key.startswith("_"):
            continue
        if key == "singleValueExtendedProperties":
            merged = {p["id"]: p for p in event.get(key) or []}
            merged.update({p["id"]: p for p in value or [] if isinstance(p, dict) and "id" in p})
            event[key] = list(merged.values())
        elif key == "attendees":
            event[key] = [_attendee(a) for a in value or []]
        else:
            event[key] = copy.deepcopy(value)
    if "start" in body:
        event["originalStartTimeZone"] = event["start"]["timeZone"]
    if "end" in body:
        event["originalEndTimeZone"] = event["end"]["timeZone"]
    if "recurrence" in body:
        event["type"] = "seriesMaster" if event.get("recurrence") else "singleInstance"
    event["bodyPreview"] = _body_preview(event.get("body"))


def touch(email: str, event: dict) -> dict:
    """Record a change: a new changeKey, lastModifiedDateTime and change sequence."""
    box = mailbox(email)
    box["sequence"] += 1
    event["_seq"] = box["sequence"]
    event["changeKey"] = secrets.token_urlsafe(16)
    event["@odata.etag"] = f'W/"{event["changeKey"]}"'
    event["lastModifiedDateTime"] = now()
    return event


def public(event: dict, zone_name: str = "UTC", expand: set[str] | None = None) -> dict:
    """The event as Graph answers it: start and end in `zone_name` (Prefer: outlook.timezone, default
    UTC); extended properties only when asked for with $expand (the ids in `expand`)."""
    shown = {k: copy.deepcopy(v) for k, v in event.items() if not k.startswith("_")}
    for key in ("start", "end"):
        if isinstance(shown.get(key), dict):
            shown[key] = times.render(times.moment(event[key]), zone_name)
    properties = shown.pop("singleValueExtendedProperties", None) or []
    if expand is not None:
        shown["singleValueExtendedProperties"] = [p for p in properties if p.get("id", "").lower() in expand]
    return shown


def occurrence_id(master_id: str, local_start: datetime) -> str:
    return f"{master_id[:-1]}OCC{local_start:%Y%m%d}="


def instances(event: dict, window_end: datetime) -> list[dict]:
    """A series' occurrences and exceptions up to `window_end` (stored form, start/end in the event's zone)."""
    start_zone = event["start"]["timeZone"]
    length = times.moment(event["end"]) - times.moment(event["start"])
    found = []
    for local in times.occurrences(event["recurrence"], event["start"], times.horizon(window_end)):
        key = f"{local:%Y%m%d}"
        if key in (event.get("_cancelled") or ()):
            continue
        start = local.astimezone(UTC)
        instance = {**copy.deepcopy(event), "id": occurrence_id(event["id"], local), "type": "occurrence",
                    "seriesMasterId": event["id"], "recurrence": None, "originalStart": f"{start:%Y-%m-%dT%H:%M:%SZ}",
                    "start": times.render(start, start_zone), "end": times.render(start + length, start_zone),
                    "_master": event["id"], "_key": key}
        instance.pop("transactionId", None)
        override = (event.get("_exceptions") or {}).get(key)
        if override:
            apply_patch(instance, override)
            instance["type"], instance["recurrence"] = "exception", None
        found.append(instance)
    return found


def overlaps(event: dict, first: datetime, last: datetime) -> bool:
    return times.moment(event["end"]) > first and times.moment(event["start"]) < last


def expanded(email: str, calendar_id: str, first: datetime, last: datetime) -> list[dict]:
    """calendarView: the single events, occurrences and exceptions of a calendar in [first, last), by start."""
    found = []
    for event in mailbox(email)["events"].values():
        if event["_calendar"] != calendar_id:
            continue
        candidates = instances(event, last) if event.get("recurrence") else [event]
        found.extend(e for e in candidates if overlaps(e, first, last))
    found.sort(key=lambda e: (times.moment(e["start"]), e["id"]))
    return found


def find(email: str, event_id: str) -> tuple[dict | None, dict | None]:
    """(the stored event, None) for a single event or series; (its master, the occurrence) for an occurrence
    or exception id; (None, None) when the mailbox has no such item."""
    events = mailbox(email)["events"]
    if event_id in events:
        return events[event_id], None
    match = re.fullmatch(r"(.+)OCC(\d{8})=", event_id)
    master = events.get(match.group(1) + "=") if match else None
    if master is None or not master.get("recurrence"):
        return None, None
    key = match.group(2)
    day = datetime(int(key[:4]), int(key[4:6]), int(key[6:]), tzinfo=UTC)
    for instance in instances(master, day + timedelta(days=2)):
        if instance["_key"] == key:
            return master, instance
    return None, None
