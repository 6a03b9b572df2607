"""The mailbox owner acting in Outlook (tests and the dev console): `/sandbox/user/<email>/…`.

Create, edit and delete events, add a calendar, receive an invitation from someone else (the owner is
an attendee; `responseStatus` is their answer, `notResponded` by default), answer it, and see it
cancelled by its organizer (`isCancelled`). Subscriptions are notified as after any change.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from . import mailbox, subscriptions
from .errors import graph_error
from .graph import remove
from .store import state

blp = Blueprint("microsoft_owner", __name__)

RESPONSES = ("none", "organizer", "tentativelyAccepted", "accepted", "declined", "notResponded")


def _body() -> dict:
    body = request.get_json(force=True, silent=True)
    return body if isinstance(body, dict) else {}


def _store(email: str, event: dict):
    if mailbox.end_before_start(event):
        return graph_error(400, *mailbox.END_BEFORE_START)
    mailbox.mailbox(email)["events"][event["id"]] = mailbox.touch(email, event)
    subscriptions.changed(email, event, "created")
    return jsonify(mailbox.public(event, expand=set())), 201


@blp.post("/<email>/calendars")
def add_calendar(email):
    """`{"name": "Family", "canEdit": true, "owner": "someone@example.net"}` (a shared calendar)."""
    body = _body()
    with state().lock:
        return jsonify(mailbox.add_calendar(email, body.get("name") or "Calendar 2", bool(body.get("canEdit", True)),
                                            body.get("owner"))), 201


@blp.post("/<email>/events")
def create(email):
    """The owner creates an event (`calendarId` optional: the default calendar)."""
    body = _body()
    problem = mailbox.validate(body)
    if problem:
        return graph_error(400, *problem)
    with state().lock:
        found = mailbox.calendar(email, body.pop("calendarId", None))
        if found is None:
            return graph_error(404)
        return _store(email, mailbox.build(email, found["id"], body))


@blp.post("/<email>/invitations")
def invited(email):
    """Someone else's meeting lands on the owner's calendar: `organizer` (an email, default a stranger),
    the owner an attendee whose answer is `responseStatus` (default `notResponded`)."""
    body = _body()
    problem = mailbox.validate(body)
    if problem:
        return graph_error(400, *problem)
    organizer_email = body.pop("organizer", None) or "stranger@example.net"
    answer = body.pop("responseStatus", "notResponded")
    if answer not in RESPONSES:
        return graph_error(400, "BadRequest", f"responseStatus: one of {', '.join(RESPONSES)}")
    organizer = {"emailAddress": {"name": mailbox.display_name(organizer_email), "address": organizer_email}}
    guests = [a for a in body.pop("attendees", None) or []
              if (a.get("emailAddress") or {}).get("address", "").lower() != email.lower()]
    body["attendees"] = [*guests, {"type": "required", "emailAddress": {"name": mailbox.display_name(email),
                                                                        "address": email},
                                   "status": {"response": answer, "time": mailbox.now()}}]
    with state().lock:
        event = mailbox.build(email, mailbox.calendar(email, None)["id"], body, organizer=organizer)
        event["responseStatus"] = {"response": answer, "time": mailbox.now()}
        return _store(email, event)


def _event(email: str, event_id: str):
    master, occurrence = mailbox.find(email, event_id)
    return (master, occurrence, None) if master else (None, None, graph_error(404))


@blp.post("/<email>/events/<event_id>/respond")
def respond(email, event_id):
    """The owner answers an invitation: `{"response": "accepted" | "tentativelyAccepted" | "declined"}`."""
    answer = _body().get("response")
    if answer not in RESPONSES:
        return graph_error(400, "BadRequest", f"response: one of {', '.join(RESPONSES)}")
    with state().lock:
        event, _, error = _event(email, event_id)
        if error:
            return error
        event["responseStatus"] = {"response": answer, "time": mailbox.now()}
        for attendee in event["attendees"]:
            if (attendee.get("emailAddress") or {}).get("address", "").lower() == email.lower():
                attendee["status"] = dict(event["responseStatus"])
        subscriptions.changed(email, mailbox.touch(email, event), "updated")
        return jsonify(mailbox.public(event, expand=set()))


@blp.post("/<email>/events/<event_id>/cancel")
def cancelled(email, event_id):
    """The organizer of an invitation cancels the meeting: the owner's copy stays, `isCancelled`."""
    with state().lock:
        event, _, error = _event(email, event_id)
        if error:
            return error
        event["isCancelled"] = True
        event["subject"] = "Canceled: " + (event.get("subject") or "")
        subscriptions.changed(email, mailbox.touch(email, event), "updated")
        return jsonify(mailbox.public(event, expand=set()))


@blp.patch("/<email>/events/<event_id>")
def edit(email, event_id):
    """The owner moves or edits an event or one occurrence (PATCH semantics: extended properties stay)."""
    body = _body()
    problem = mailbox.validate(body, partial=True)
    if problem:
        return graph_error(400, *problem)
    with state().lock:
        event, occurrence, error = _event(email, event_id)
        if error:
            return error
        if occurrence is not None:
            event.setdefault("_exceptions", {})[occurrence["_key"]] = body
        else:
            mailbox.apply_patch(event, body)
        subscriptions.changed(email, mailbox.touch(email, event), "updated")
        return jsonify(mailbox.public(event, expand=set()))


@blp.delete("/<email>/events/<event_id>")
def delete(email, event_id):
    """The owner deletes an event, or one occurrence of a series."""
    with state().lock:
        event, occurrence, error = _event(email, event_id)
        if error:
            return error
        remove(email, event, occurrence)
        return "", 204
