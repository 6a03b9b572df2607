"""Calendar v3 subset: events insert/get/patch/update/delete/list (page and sync tokens), watch, stop,
and calendarList.list.

Calendars are keyed by id: an owner's primary calendar by their email, a secondary one by an id like
`<random>@group.calendar.google.com` (created by the owner, `POST /sandbox/user/<email>/calendars`),
which only its owner's token may read and write.

Every handler starts with `_begin(<Google method name>)`, before authentication, so tests can count,
inspect and fail each call (see control.py); writes then sleep `write_delay` outside the lock.
"""

from __future__ import annotations

import copy
import re
import secrets
import threading
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import requests
from dateutil.rrule import rrulestr
from flask import Blueprint, jsonify, request

from .control import intercept
from .oauth import CALENDAR_SCOPE, bearer_email, bearer_grant
from .store import state

blp = Blueprint("sandbox_calendar", __name__)

EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                409: "ALREADY_EXISTS", 410: "FAILED_PRECONDITION", 412: "FAILED_PRECONDITION",
                429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
# A scripted failure without a reason gets the one Google uses for that status.
DEFAULT_REASONS = {401: "authError", 403: "forbidden", 404: "notFound", 409: "duplicate", 410: "deleted",
                   429: "rateLimitExceeded", 500: "backendError", 503: "backendError"}
# Messages per reason, shared by real and scripted errors so both look the same.
MESSAGES = {"authError": "Request had invalid authentication credentials.", "forbidden": "Forbidden",
            "notFound": "Not Found", "duplicate": "The requested identifier already exists.",
            "deleted": "Resource has been deleted", "rateLimitExceeded": "Rate Limit Exceeded",
            "userRateLimitExceeded": "User Rate Limit Exceeded", "quotaExceeded": "Quota Exceeded",
            "backendError": "Backend Error", "parseError": "Parse Error",
            "fullSyncRequired": "Sync token is no longer valid, a full sync is required.",
            "insufficientPermissions": "Request had insufficient authentication scopes."}
USAGE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded"}


def google_error(code: int, reason: str | None = None, message: str | None = None):
    """Google's API error shape; reason and message default to Google's for that status and reason."""
    reason = reason or DEFAULT_REASONS.get(code, "invalid" if code < 500 else "backendError")
    message = message or MESSAGES.get(reason, reason)
    domain = "usageLimits" if reason in USAGE_LIMIT_REASONS else "global"
    return jsonify({"error": {"code": code, "message": message, "status": STATUS_NAMES.get(code, "UNKNOWN"),
                              "errors": [{"domain": domain, "reason": reason, "message": message}]}}), code


def _begin(name: str, write: bool = False):
    """Count, log and maybe fail this call (see control.intercept); then the write delay, if any."""
    scripted = intercept(name, google_error)
    if scripted is None and write:
        time.sleep(float(state().settings.get("write_delay") or 0))  # no lock held here: others go on
    return scripted


def _json_body():
    """The request's JSON object, or None (Google answers 400 parseError)."""
    body = request.get_json(force=True, silent=True)
    return body if isinstance(body, dict) else None


def _merge_patch(target: dict, patch: dict) -> dict:
    """Google's patch semantics: objects merge field by field, arrays and values replace, null deletes."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict):
            merged[key] = _merge_patch(merged[key] if isinstance(merged.get(key), dict) else {}, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _calendar(key: str) -> dict:
    """A calendar by its key (a primary calendar's is its owner's email), created empty when first used."""
    return state().calendars.setdefault(key, {"events": {}, "sequence": 0})


def _zone_name(key: str) -> str:
    """A secondary calendar's own zone; a primary calendar's from the `time_zones` setting."""
    return (state().calendars.get(key) or {}).get("timeZone") or \
        (state().settings.get("time_zones") or {}).get(key, "Europe/London")


def _owned_key(email: str, calendar_id: str | None) -> str | None:
    """The key of `email`'s calendar `calendar_id` ("primary" or None: their primary one), or None."""
    if calendar_id in (None, "primary", email):
        return email
    with state().lock:
        found = state().calendars.get(calendar_id)
        return calendar_id if found is not None and found.get("owner") == email else None


def _authorized(calendar_id: str):
    """(calendar key, None) when the bearer may use `calendar_id`; else (None, Google's error)."""
    email = bearer_email(CALENDAR_SCOPE)
    if email is None:
        return None, google_error(401, "authError")
    key = _owned_key(email, calendar_id)
    if key is None:
        return None, google_error(404, "notFound")
    return key, None


def _touch(email: str, event: dict) -> dict:
    calendar = _calendar(email)
    calendar["sequence"] += 1
    event["_seq"] = calendar["sequence"]
    event["etag"] = f'"{calendar["sequence"]}{secrets.randbelow(10**6):06d}"'
    event["updated"] = _now()
    _notify(email)
    return event


def _public(event: dict) -> dict:
    return {k: v for k, v in event.items() if not k.startswith("_")}


def _notify(email: str) -> None:
    for channel in [c for c in state().channels.values() if c["email"] == email]:
        channel["messages"] += 1
        _send_notification(channel, "exists", channel["messages"])


def _send_notification(channel: dict, resource_state: str, number: int) -> None:
    if not state().settings.get("notify", True):
        return
    headers = {"X-Goog-Channel-ID": channel["id"], "X-Goog-Resource-ID": channel["resourceId"],
               "X-Goog-Resource-State": resource_state, "X-Goog-Message-Number": str(number),
               "X-Goog-Resource-URI": channel["resourceUri"]}
    if channel.get("token"):
        headers["X-Goog-Channel-Token"] = channel["token"]

    sandbox = state()

    def send():
        time.sleep(0.05)  # after the watch/insert response, as Google does
        try:
            requests.post(channel["address"], headers=headers, timeout=5)
        except requests.RequestException:
            pass  # Google does not retry failed notifications either
        finally:
            with sandbox.lock:
                sandbox.notifying -= 1

    with sandbox.lock:
        sandbox.notifying += 1  # counted before the write's own answer, so a test sees it at once
    threading.Thread(target=send, daemon=True).start()


@blp.post("/calendars/<calendar_id>/events")
def insert(calendar_id):
    # Query parameters such as sendUpdates are accepted and ignored (the request log shows them).
    early = _begin("events.insert", write=True)
    if early:
        return early
    email, error = _authorized(calendar_id)
    if error:
        return error
    body = _json_body()
    if body is None:
        return google_error(400, "parseError")
    with state().lock:
        events = _calendar(email)["events"]
        event_id = body.get("id") or secrets.token_hex(13)
        if not EVENT_ID.match(event_id):
            return google_error(400, "invalid", "Invalid resource id value.")
        if event_id in events:
            return google_error(409, "duplicate")
        event = {**copy.deepcopy(body), "kind": "calendar#event", "id": event_id, "created": _now(),
                 "status": body.get("status", "confirmed"), "iCalUID": f"{event_id}@google.com",
                 "htmlLink": f"https://calendar.google.com/event?eid={event_id}"}
        events[event_id] = _touch(email, event)
        return jsonify(_public(event))


def _existing(calendar_id, event_id):
    email, error = _authorized(calendar_id)
    if error:
        return None, None, error
    event = _calendar(email)["events"].get(event_id)
    if event is None:
        return None, None, google_error(404, "notFound")
    return email, event, None


@blp.get("/calendars/<calendar_id>/events/<event_id>")
def get(calendar_id, event_id):
    early = _begin("events.get")
    if early:
        return early
    with state().lock:
        _, event, error = _existing(calendar_id, event_id)
        return error or jsonify(_public(event))


@blp.route("/calendars/<calendar_id>/events/<event_id>", methods=["PATCH", "PUT"])
def change(calendar_id, event_id):
    early = _begin("events.update" if request.method == "PUT" else "events.patch", write=True)
    if early:
        return early
    body = _json_body()
    with state().lock:
        email, event, error = _existing(calendar_id, event_id)
        if error:
            return error
        if body is None:
            return google_error(400, "parseError")
        keep = {k: event[k] for k in ("kind", "id", "created", "iCalUID", "htmlLink", "organizer", "_seq")
                if k in event}
        if request.method == "PUT":
            # update replaces the event; its status defaults to confirmed, which restores a cancelled one.
            replaced = {"status": "confirmed", **copy.deepcopy(body), **keep}
        else:
            replaced = {**_merge_patch(event, {k: v for k, v in body.items() if k not in keep}), **keep}
            replaced.setdefault("status", "confirmed")  # a patch cannot remove the status
        event.clear()
        event.update(replaced)
        return jsonify(_public(_touch(email, event)))


@blp.delete("/calendars/<calendar_id>/events/<event_id>")
def delete(calendar_id, event_id):
    early = _begin("events.delete", write=True)
    if early:
        return early
    with state().lock:
        email, event, error = _existing(calendar_id, event_id)
        if error:
            return error
        if event["status"] == "cancelled":
            return google_error(410, "deleted")
        event["status"] = "cancelled"
        _touch(email, event)
        return "", 204


@blp.get("/calendars/<calendar_id>/events")
def list_events(calendar_id):
    early = _begin("events.list")
    if early:
        return early
    email, error = _authorized(calendar_id)
    if error:
        return error
    args = request.args
    max_results = min(int(args.get("maxResults", 250)), 2500)
    with state().lock:
        calendar = _calendar(email)
        if args.get("syncToken"):
            since = state().sync_tokens.get(args["syncToken"])
            if since is None or since[0] != email:
                return google_error(410, "fullSyncRequired")
            matching = [e for e in calendar["events"].values() if e["_seq"] > since[1]]  # deletions included
        else:
            show_deleted = args.get("showDeleted") == "true"
            matching = [e for e in calendar["events"].values() if show_deleted or e["status"] != "cancelled"]
            zone = ZoneInfo(_zone_name(email))
            try:
                window = _window(args, zone)
            except ValueError:
                return google_error(400, "badRequest", "Bad Request")
            if args.get("singleEvents") == "true":
                matching = [i for e in matching for i in (_instances(e, window, zone) if e.get("recurrence") else [e])]
            if window != (None, None):
                matching = [e for e in matching if _overlaps(e, window, zone)]
        matching.sort(key=lambda e: (_bounds(e, zone)[0], e["_seq"]) if args.get("orderBy") == "startTime"
                      else (e["_seq"], e.get("id")))
        offset = int(args.get("pageToken", "0") or 0)
        page = matching[offset:offset + max_results]
        body = {"kind": "calendar#events", "items": [_public(e) for e in page], "updated": _now(),
                "timeZone": _zone_name(email)}
        if offset + max_results < len(matching):
            body["nextPageToken"] = str(offset + max_results)
        else:
            token = secrets.token_urlsafe(16)
            state().sync_tokens[token] = (email, calendar["sequence"])
            body["nextSyncToken"] = token
        return jsonify(body)


def _window(args, zone: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """timeMin bounds an event's end, timeMax its start (both exclusive, RFC 3339 with an offset)."""
    bound = [datetime.fromisoformat(args[k].replace("Z", "+00:00")) if args.get(k) else None
             for k in ("timeMin", "timeMax")]
    if any(b is not None and b.tzinfo is None for b in bound):
        raise ValueError("an offset is required")
    return bound[0], bound[1]


def _moment(value: dict, zone: ZoneInfo) -> datetime:
    """An event's start or end: its dateTime, or an all-day date's midnight in the calendar's zone."""
    if value.get("dateTime"):
        moment = datetime.fromisoformat(value["dateTime"].replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(value.get("timeZone") or zone.key))
    return datetime.combine(date.fromisoformat(value["date"]), datetime.min.time(), zone)


def _bounds(event: dict, zone: ZoneInfo) -> tuple[datetime, datetime]:
    return _moment(event.get("start") or {}, zone), _moment(event.get("end") or {}, zone)


def _overlaps(event: dict, window: tuple[datetime | None, datetime | None], zone: ZoneInfo) -> bool:
    first, last = window
    try:
        start, end = _bounds(event, zone)
    except (KeyError, ValueError):
        return False
    if event.get("recurrence"):  # a series (singleEvents off): listed unless it starts after the window
        return last is None or start < last
    return (first is None or end > first) and (last is None or start < last)


MAX_INSTANCES = 1000


def _instances(event: dict, window: tuple[datetime | None, datetime | None], zone: ZoneInfo) -> list[dict]:
    """A recurring event's instances, as Google lists them with singleEvents=true: ids `<id>_<start>`,
    `recurringEventId` and `originalStartTime`; times follow the wall clock of the event's own zone."""
    start_value, end_value = event.get("start") or {}, event.get("end") or {}
    all_day = "date" in start_value
    event_zone = ZoneInfo(start_value.get("timeZone") or zone.key)
    start, end = (_moment(v, zone) for v in (start_value, end_value))
    start = start.astimezone(event_zone)
    rules = "\n".join(line for line in event["recurrence"] if line.split(":")[0] in ("RRULE", "EXDATE", "RDATE"))
    try:
        occurrences = rrulestr(rules, dtstart=start, forceset=True)
    except (ValueError, TypeError):
        return []
    last = window[1] or start + timedelta(days=730)
    instances = []
    for occurrence in occurrences:
        if occurrence >= last or len(instances) >= MAX_INSTANCES:
            break
        occurrence = occurrence.replace(tzinfo=event_zone)
        finish = occurrence.astimezone(UTC) + (end - start)
        instance = {**copy.deepcopy(event), "recurringEventId": event["id"]}
        instance.pop("recurrence", None)
        if all_day:
            day = occurrence.date()
            instance["id"] = f"{event['id']}_{day:%Y%m%d}"
            instance["start"] = {"date": day.isoformat()}
            instance["end"] = {"date": (day + (end.date() - start.date())).isoformat()}
            instance["originalStartTime"] = {"date": day.isoformat()}
        else:
            moment = occurrence.astimezone(UTC)
            instance["id"] = f"{event['id']}_{moment:%Y%m%dT%H%M%SZ}"
            instance["start"] = {"dateTime": occurrence.isoformat(), "timeZone": event_zone.key}
            instance["end"] = {"dateTime": finish.astimezone(event_zone).isoformat(), "timeZone": event_zone.key}
            instance["originalStartTime"] = {"dateTime": occurrence.isoformat(), "timeZone": event_zone.key}
        instances.append(instance)
    return instances


@blp.post("/calendars/<calendar_id>/events/watch")
def watch(calendar_id):
    early = _begin("events.watch")
    if early:
        return early
    email, error = _authorized(calendar_id)
    if error:
        return error
    body = _json_body()
    if body is None:
        return google_error(400, "parseError")
    if body.get("type") not in ("web_hook", "webhook") or not body.get("id") or not body.get("address"):
        return google_error(400, "invalid", "Invalid channel request.")
    ttl = int((body.get("params") or {}).get("ttl", 604800))
    channel = {"kind": "api#channel", "id": body["id"], "resourceId": secrets.token_urlsafe(12),
               "resourceUri": f"https://www.googleapis.com/calendar/v3/calendars/{email}/events",
               "token": body.get("token"), "expiration": str(int((time.time() + ttl) * 1000)),
               "address": body["address"], "email": email, "messages": 1}
    with state().lock:
        if body["id"] in state().channels:
            return google_error(400, "channelIdNotUnique", "Channel id not unique")
        state().channels[body["id"]] = channel
    _send_notification(channel, "sync", 1)
    return jsonify({k: v for k, v in channel.items() if k not in ("address", "email", "messages")})


@blp.post("/channels/stop")
def stop():
    early = _begin("channels.stop")
    if early:
        return early
    if bearer_email(CALENDAR_SCOPE) is None:
        return google_error(401, "authError")
    body = _json_body()
    if body is None:
        return google_error(400, "parseError")
    with state().lock:
        channel = state().channels.get(body.get("id"))
        if channel is None or channel["resourceId"] != body.get("resourceId"):
            return google_error(404, "notFound", "Channel not found")
        del state().channels[body["id"]]
    return "", 204


# Any of these lets a token read the calendar list (Google's reference for calendarList.list).
CALENDAR_LIST_SCOPES = frozenset({"https://www.googleapis.com/auth/calendar.calendarlist.readonly",
                                  "https://www.googleapis.com/auth/calendar.calendarlist",
                                  "https://www.googleapis.com/auth/calendar.readonly",
                                  "https://www.googleapis.com/auth/calendar"})
CALENDAR_LIST_PAGE, CALENDAR_LIST_PAGE_MAX = 100, 250


def _insufficient_scope():
    """Google's answer to a valid token granted without a scope the method needs."""
    message = MESSAGES["insufficientPermissions"]
    response = jsonify({"error": {
        "code": 403, "message": message, "status": "PERMISSION_DENIED",
        "errors": [{"message": "Insufficient Permission", "domain": "global", "reason": "insufficientPermissions"}],
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                     "domain": "googleapis.com", "metadata": {"service": "calendar-json.googleapis.com",
                                                              "method": "calendar.v3.CalendarList.List"}}]}})
    response.status_code = 403
    response.headers["WWW-Authenticate"] = (
        'Bearer realm="https://accounts.google.com/", error="insufficient_scope", '
        f'scope="{" ".join(sorted(CALENDAR_LIST_SCOPES))}"')
    return response


def _list_entry(key: str, owner: str) -> dict:
    """A calendarList entry of the owner's calendar `key` (their primary one when key is their email)."""
    calendar = state().calendars.get(key) or {}
    entry = {"kind": "calendar#calendarListEntry", "etag": f'"{calendar.get("sequence", 0)}"', "id": key,
             "summary": calendar.get("summary") or key, "timeZone": _zone_name(key), "accessRole": "owner",
             "selected": True, "defaultReminders": []}
    if key == owner:
        entry["primary"] = True  # Google omits `primary` on other calendars (its default is false)
    return entry


@blp.get("/users/me/calendarList")
def calendar_list():
    early = _begin("calendarList.list")
    if early:
        return early
    grant = bearer_grant()
    if grant is None:
        return google_error(401, "authError")
    if not CALENDAR_LIST_SCOPES & set(grant["scope"].split()):
        return _insufficient_scope()
    try:
        max_results = int(request.args.get("maxResults", CALENDAR_LIST_PAGE))
        offset = int(request.args.get("pageToken", "0") or 0)
    except ValueError:
        return google_error(400, "invalid", "Invalid value")
    if not 1 <= max_results <= CALENDAR_LIST_PAGE_MAX:
        return google_error(400, "invalid", "Invalid max results")
    email = grant["email"]
    with state().lock:
        keys = [email] + [key for key, calendar in state().calendars.items() if calendar.get("owner") == email]
        entries = [_list_entry(key, email) for key in keys]
    body = {"kind": "calendar#calendarList", "etag": f'"{secrets.randbelow(10**12)}"',
            "items": entries[offset:offset + max_results]}
    if offset + max_results < len(entries):
        body["nextPageToken"] = str(offset + max_results)
    else:
        body["nextSyncToken"] = secrets.token_urlsafe(16)
    return jsonify(body)


# -- the calendar's owner, editing in Google Calendar's own UI (tests and the dev console) ----------

user_blp = Blueprint("sandbox_user", __name__)


def _owned_or_404(email: str, calendar_id: str | None):
    """The key of the owner's calendar (None: their primary one), or Google's 404."""
    key = _owned_key(email, calendar_id)
    return (key, None) if key is not None else (None, google_error(404, "notFound"))


@user_blp.post("/<email>/calendars")
def user_new_calendar(email):
    """The owner creates a secondary calendar: `{"summary", "timeZone"}` -> its id, summary, zone."""
    body = _json_body() or {}
    summary, zone = str(body.get("summary") or "Calendar"), str(body.get("timeZone") or "Europe/London")
    try:
        ZoneInfo(zone)
    except (ValueError, KeyError):
        return google_error(400, "invalid", "Invalid time zone definition for calendar.")
    calendar_id = f"{secrets.token_hex(13)}@group.calendar.google.com"
    with state().lock:
        state().calendars[calendar_id] = {"events": {}, "sequence": 0, "owner": email, "summary": summary,
                                          "timeZone": zone}
    return jsonify({"id": calendar_id, "summary": summary, "timeZone": zone, "owner": email}), 201


@user_blp.get("/<email>/calendars")
def user_calendars(email):
    """The owner's calendars, primary first (what calendarList.list answers them)."""
    with state().lock:
        keys = [email] + [key for key, calendar in state().calendars.items() if calendar.get("owner") == email]
        return jsonify([_list_entry(key, email) for key in keys])


@user_blp.post("/<email>/events")
@user_blp.post("/<email>/calendars/<calendar_id>/events")
def user_insert(email, calendar_id=None):
    """The owner creates an event (any fields; a random id) on their primary calendar or on
    `calendar_id`; watchers of that calendar are notified."""
    body = _json_body() or {}
    key, error = _owned_or_404(email, calendar_id)
    if error:
        return error
    with state().lock:
        event_id = secrets.token_hex(13)
        event = {"kind": "calendar#event", "status": "confirmed", **copy.deepcopy(body), "id": event_id,
                 "created": _now(), "iCalUID": f"{event_id}@google.com",
                 "htmlLink": f"https://calendar.google.com/event?eid={event_id}",
                 "organizer": {"email": email, "self": True}}
        _calendar(key)["events"][event_id] = _touch(key, event)
        return jsonify(_public(event)), 201
@user_blp.post("/<email>/invitations")
def user_invited(email):
    """Someone else invites the owner: Google puts their event on the owner's calendar at once, the owner
    an attendee (`self`) whose answer is `responseStatus` (default `needsAction`)."""
    body = _json_body() or {}
    organizer = body.pop("organizer", None) or {"email": "stranger@example.net", "displayName": "A Stranger"}
    response_status = body.pop("responseStatus", "needsAction")
    guests = [a for a in body.pop("attendees", None) or [] if (a.get("email") or "").lower() != email.lower()]
    attendees = [{**organizer, "organizer": True, "responseStatus": "accepted"}, *guests,
                 {"email": email, "self": True, "responseStatus": response_status}]
    with state().lock:
        event_id = secrets.token_hex(13)
        event = {"kind": "calendar#event", "status": "confirmed", **copy.deepcopy(body), "id": event_id,
                 "created": _now(), "iCalUID": f"{event_id}@google.com", "organizer": organizer,
                 "htmlLink": f"https://calendar.google.com/event?eid={event_id}",
                 "attendees": attendees}
        _calendar(email)["events"][event_id] = _touch(email, event)
        return jsonify(_public(event)), 201


@user_blp.post("/<email>/events/<event_id>/respond")
@user_blp.post("/<email>/calendars/<calendar_id>/events/<event_id>/respond")
def user_respond(email, event_id, calendar_id=None):
    """The owner answers an invitation: `{"responseStatus": "accepted" | "declined" | "tentative"}`."""
    answer = (_json_body() or {}).get("responseStatus")
    key, error = _owned_or_404(email, calendar_id)
    if error:
        return error
    with state().lock:
        event = _calendar(key)["events"].get(event_id)
        if event is None:
            return google_error(404, "notFound")
        for attendee in event.get("attendees") or []:
            if attendee.get("self"):
                attendee["responseStatus"] = answer
        return jsonify(_public(_touch(key, event)))


@user_blp.patch("/<email>/events/<event_id>")
@user_blp.patch("/<email>/calendars/<calendar_id>/events/<event_id>")
def user_patch(email, event_id, calendar_id=None):
    """The owner moves or edits an event (patch semantics: our private properties stay)."""
    body = _json_body() or {}
    key, error = _owned_or_404(email, calendar_id)
    if error:
        return error
    with state().lock:
        event = _calendar(key)["events"].get(event_id)
        if event is None:
            return google_error(404, "notFound")
        event.update(_merge_patch(event, {k: v for k, v in body.items() if k not in ("id", "kind", "_seq")}))
        return jsonify(_public(_touch(key, event)))


@user_blp.delete("/<email>/events/<event_id>")
@user_blp.delete("/<email>/calendars/<calendar_id>/events/<event_id>")
def user_delete(email, event_id, calendar_id=None):
    """The owner deletes an event (it stays, cancelled, for incremental sync to report)."""
    key, error = _owned_or_404(email, calendar_id)
    if error:
        return error
    with state().lock:
        event = _calendar(key)["events"].get(event_id)
        if event is None:
            return google_error(404, "notFound")
        event["status"] = "cancelled"
        _touch(key, event)
        return "", 204
