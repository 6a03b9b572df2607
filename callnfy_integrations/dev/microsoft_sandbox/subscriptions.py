"""Graph change notifications: `/subscriptions` (create with the validation handshake, get, list, PATCH
to renew, DELETE, reauthorize), change notifications after each event change, lifecycle notifications.

Creating a subscription first POSTs `?validationToken=<token>` (Content-Type text/plain) to the
notificationUrl and to the lifecycleNotificationUrl; each must answer 200 `text/plain` with exactly the
decoded token within `validation_timeout` seconds (10, as Graph), else 400 `InvalidRequest`. The
expiry may be at most `max_subscription_minutes` (4230 for Outlook events) ahead. Unlike Graph, plain
http URLs are accepted (tests and `make run` listen on loopback). Notifications are sent once, not
retried; every POST the sandbox makes and the answer it got is kept in `deliveries`.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import requests
from flask import Blueprint, jsonify, request

from . import mailbox
from .common import READ, authorized, begin, json_body
from .errors import graph_error
from .store import CLIENT_ID, TENANT_ID, state, user_id

blp = Blueprint("microsoft_subscriptions", __name__)

RESOURCE = re.compile(r"^/?(?:me|users/[^/]+)/(?:events|calendar/events|calendars/([^/]+)/events)$", re.IGNORECASE)
CHANGE_TYPES = {"created", "updated", "deleted"}
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")
TIMED_OUT = "Subscription validation request timed out."
NOT_OK = "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."
MISMATCH = "Subscription validation request failed. Response must exactly match validationToken query parameter."


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _expiry(value) -> tuple[datetime | None, str | None]:
    """The requested expiry, or Graph's 400 message."""
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
    except ValueError:
        return None, "expirationDateTime is required and must be a date and time."
    limit = int(state().settings.get("max_subscription_minutes") or 4230)
    now = datetime.now(UTC)
    if at <= now:
        return None, "Subscription expiration must be in the future."
    if at > now + timedelta(minutes=limit):
        return None, f"Subscription expiration can only be {limit} minutes in the future."
    return at, None


def _problem(email: str, body: dict) -> tuple[str | None, str | None, datetime | None]:
    """(the calendar id the resource names, Graph's 400 message or None, the expiry)."""
    kinds = set(str(body.get("changeType") or "").split(","))
    if not body.get("changeType") or kinds - CHANGE_TYPES:
        return None, "changeType must be created, updated and/or deleted.", None
    if not str(body.get("notificationUrl") or "").startswith(("https://", "http://")):
        return None, "notificationUrl must be an absolute URL.", None
    match = RESOURCE.match(str(body.get("resource") or ""))
    calendar = mailbox.calendar(email, match.group(1)) if match else None
    if calendar is None:
        return None, "Resource not found for the segment in the resource URL.", None
    if len(str(body.get("clientState") or "")) > 128:
        return None, "clientState must be at most 128 characters.", None
    at, message = _expiry(body.get("expirationDateTime"))
    return calendar["id"], message, at


def handshake(url: str) -> str | None:
    """POST the validation request to `url`; None when answered as Graph requires, else why not."""
    token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
    entry = {"kind": "validation", "url": url, "token": token}
    try:
        answer = requests.post(url, params={"validationToken": token}, timeout=float(
            state().settings.get("validation_timeout") or 10), headers={"Content-Type": "text/plain; charset=utf-8"})
    except requests.Timeout:
        problem = TIMED_OUT
    except requests.RequestException:
        problem = NOT_OK
    else:
        entry.update(status=answer.status_code, contentType=answer.headers.get("Content-Type"), body=answer.text)
        if answer.status_code != 200:
            problem = NOT_OK
        elif not answer.headers.get("Content-Type", "").startswith("text/plain") or answer.text != token:
            problem = MISMATCH
        else:
            problem = None
    with state().lock:
        state().deliveries.append({**entry, "problem": problem})
    return problem


def public(subscription: dict) -> dict:
    return {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
            **{k: v for k, v in subscription.items() if not k.startswith("_")}}


def live(subscription_id: str, email: str | None = None) -> dict | None:
    """The subscription, unless unknown, expired (Graph deletes it) or another user's."""
    found = state().subscriptions.get(subscription_id)
    if found is None or (email and found["_email"] != email):
        return None
    if datetime.fromisoformat(found["expirationDateTime"].replace("Z", "+00:00")) <= datetime.now(UTC):
        return None
    return found


@blp.post("/subscriptions")
def create():
    early = begin("subscriptions.create")
    if early:
        return early
    email, error = authorized(READ)
    if error:
        return error
    body = json_body()
    if body is None:
        return graph_error(400)
    with state().lock:
        calendar_id, message, expires = _problem(email, body)
    if message:
        return graph_error(400, "InvalidRequest", message)
    for url in (body["notificationUrl"], body.get("lifecycleNotificationUrl")):
        problem = url and handshake(url)  # outside the lock: the service may call Graph meanwhile
        if problem:
            return graph_error(400, "InvalidRequest", problem)
    created = {"id": str(uuid.uuid4()), "resource": body["resource"], "applicationId": CLIENT_ID,
               "changeType": body["changeType"], "clientState": body.get("clientState"),
               "notificationUrl": body["notificationUrl"],
               "lifecycleNotificationUrl": body.get("lifecycleNotificationUrl"),
               "expirationDateTime": _stamp(expires), "creatorId": user_id(email), "includeResourceData": False,
               "latestSupportedTlsVersion": body.get("latestSupportedTlsVersion") or "v1_2",
               "encryptionCertificate": None, "encryptionCertificateId": None, "notificationUrlAppId": None,
               "_email": email, "_calendar": calendar_id}
    with state().lock:
        state().subscriptions[created["id"]] = created
    response = jsonify(public(created))
    response.status_code = 201
    return response


def _owned(name: str, subscription_id: str):
    """(the live subscription of the caller, None) or (None, the error to answer)."""
    early = begin(name)
    if early:
        return None, early
    email, error = authorized(READ)
    if error:
        return None, error
    found = live(subscription_id, email)
    if found is None:
        return None, graph_error(404, "ResourceNotFound")
    return found, None


@blp.get("/subscriptions/<subscription_id>")
def get(subscription_id):
    with state().lock:
        found, error = _owned("subscriptions.get", subscription_id)
        return error or jsonify(public(found))


@blp.patch("/subscriptions/<subscription_id>")
def update(subscription_id):
    """Renew: a new expirationDateTime (at most the maximum ahead); notificationUrl may change too."""
    body = request.get_json(force=True, silent=True)
    with state().lock:
        found, error = _owned("subscriptions.update", subscription_id)
        if error:
            return error
        if not isinstance(body, dict) or "expirationDateTime" not in body:
            return graph_error(400, "InvalidRequest", "expirationDateTime is required.")
        expires, message = _expiry(body["expirationDateTime"])
        if message:
            return graph_error(400, "InvalidRequest", message)
        found["expirationDateTime"] = _stamp(expires)
        found.pop("_paused", None)  # renewing reauthorizes too
        if body.get("notificationUrl"):
            found["notificationUrl"] = body["notificationUrl"]
        return jsonify(public(found))


@blp.delete("/subscriptions/<subscription_id>")
def delete(subscription_id):
    with state().lock:
        found, error = _owned("subscriptions.delete", subscription_id)
        if error:
            return error
        del state().subscriptions[found["id"]]
        return "", 204


@blp.post("/subscriptions/<subscription_id>/reauthorize")
def reauthorize(subscription_id):
    """After a `reauthorizationRequired` lifecycle notification: the subscription goes on."""
    with state().lock:
        found, error = _owned("subscriptions.reauthorize", subscription_id)
        if error:
            return error
        found.pop("_paused", None)
        return "", 204


# -- notifications ------------------------------------------------------------------------------------

def changed(email: str, event: dict, change_type: str) -> None:
    """After an event change (under the lock): notify each live subscription it matches."""
    for subscription in list(state().subscriptions.values()):
        if subscription["_email"] != email or subscription["_calendar"] != event["_calendar"]:
            continue
        if change_type not in subscription["changeType"].split(",") or live(subscription["id"]) is None:
            continue
        if subscription.get("_paused"):  # awaiting reauthorization: Graph drops these notifications
            continue
        resource = f"Users/{user_id(email)}/Events/{event['id']}"
        notification = {"subscriptionId": subscription["id"],
                        "subscriptionExpirationDateTime": subscription["expirationDateTime"],
                        "changeType": change_type, "resource": resource,
                        "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": resource,
                                         "@odata.etag": event.get("@odata.etag"), "id": event["id"]},
                        "clientState": subscription.get("clientState"), "tenantId": TENANT_ID}
        send(subscription["notificationUrl"], notification, {"kind": "change", "changeType": change_type,
                                                            "eventId": event["id"]})


def send(url: str, notification: dict, entry: dict, wait: bool = False) -> dict:
    """POST `{"value": [notification]}` to `url` (in a thread unless `wait`); the delivery record."""
    record = {**entry, "url": url, "subscriptionId": notification["subscriptionId"], "body": {"value": [notification]}}
    if not state().settings.get("notify", True):
        return record
    sandbox = state()

    def post():
        if not wait:
            time.sleep(0.05)  # after the response to the change, as Graph does
        started = time.monotonic()
        try:
            answer = requests.post(url, json=record["body"], timeout=3)  # Graph waits 3 s for a 2xx
            record["status"] = answer.status_code
        except requests.RequestException as exc:
            record["status"] = None
            record["error"] = type(exc).__name__
        record["seconds"] = round(time.monotonic() - started, 3)
        with sandbox.lock:
            sandbox.deliveries.append(record)

    if wait:
        post()
    else:
        threading.Thread(target=post, daemon=True).start()
    return record


def lifecycle(subscription_id: str, event: str, pause: bool = False) -> dict | None:
    """Send a lifecycle notification (`reauthorizationRequired`, `subscriptionRemoved` — the subscription is
    then gone —, or `missed`) to the subscription's lifecycleNotificationUrl; the delivery, or None.
    With `pause` (reauthorizationRequired), change notifications stop until the client reauthorizes or
    renews the subscription, as Graph does when a challenge goes unanswered."""
    with state().lock:
        found = state().subscriptions.get(subscription_id)
        if found is None or not found.get("lifecycleNotificationUrl"):
            return None
        if event == "subscriptionRemoved":
            del state().subscriptions[subscription_id]
        elif event == "reauthorizationRequired" and pause:
            found["_paused"] = True
        notification = {"subscriptionId": found["id"], "subscriptionExpirationDateTime": found["expirationDateTime"],
                        "tenantId": TENANT_ID, "clientState": found.get("clientState"), "lifecycleEvent": event}
    return send(found["lifecycleNotificationUrl"], notification, {"kind": "lifecycle", "lifecycleEvent": event},
                wait=True)
