"""Test controls under `/sandbox/`: the shared ones (calls, requests, reset, fail, chaos, hold, settings;
see google_sandbox.control) and Microsoft's own: subscriptions (list, remove, lifecycle notifications),
deliveries (every POST the sandbox made to the service), delta token expiry, consent revocation and
each mailbox's stored events."""

from __future__ import annotations

from flask import jsonify, request

from ..google_sandbox.control import control_blueprint
from . import oauth, subscriptions
from .store import state

blp = control_blueprint("microsoft_control", state)


@blp.get("/subscriptions")
def subscriptions_list():
    """Every subscription as Graph holds it (clientState included; benches and the console act as Graph)."""
    with state().lock:
        return jsonify([{k: v for k, v in s.items() if not k.startswith("_")} | {"email": s["_email"]}
                        for s in state().subscriptions.values()])


@blp.delete("/subscriptions/<subscription_id>")
def subscription_remove(subscription_id):
    """Graph drops the subscription without a word (as after an expiry or a tenant change)."""
    with state().lock:
        found = state().subscriptions.pop(subscription_id, None)
    return ("", 204) if found else (jsonify({"error": "no such subscription"}), 404)


@blp.post("/subscriptions/<subscription_id>/lifecycle")
def subscription_lifecycle(subscription_id):
    """`{"lifecycleEvent": "reauthorizationRequired" | "subscriptionRemoved" | "missed", "pause": false}`:
    POSTed to the lifecycleNotificationUrl now; answers the delivery (the service's status). `pause`
    (reauthorizationRequired only): no change notifications until the client reauthorizes or renews."""
    body = request.get_json(force=True, silent=True) or {}
    event = body.get("lifecycleEvent")
    if event not in subscriptions.LIFECYCLE_EVENTS:
        return jsonify({"error": f"lifecycleEvent: one of {', '.join(subscriptions.LIFECYCLE_EVENTS)}"}), 400
    delivery = subscriptions.lifecycle(subscription_id, event, bool(body.get("pause")))
    if delivery is None:
        return jsonify({"error": "no such subscription, or it has no lifecycleNotificationUrl"}), 404
    return jsonify(delivery)


@blp.get("/deliveries")
def deliveries():
    """Validation requests, change and lifecycle notifications sent, with the service's answers, in order."""
    with state().lock:
        return jsonify(list(state().deliveries))


@blp.post("/delta/expire")
def delta_expire():
    """Every delta and skip token stops working: the next use is 410 syncStateNotFound."""
    with state().lock:
        state().delta_tokens.clear()
        state().skip_tokens.clear()
    return "", 204


@blp.post("/revoke/<email>")
def revoke(email):
    """The user withdraws consent: refresh is `invalid_grant` (AADSTS50173), Graph 401."""
    oauth.revoke(email)
    return "", 204


@blp.get("/events/<email>")
def events(email):
    """Every event (single events and series masters) of the mailbox, in creation order, with its
    calendar id, extended properties included, without other internal keys."""
    with state().lock:
        stored = state().mailboxes.get(email, {}).get("events", {}).values()
        return jsonify([{k: v for k, v in e.items() if not k.startswith("_")} | {"calendarId": e["_calendar"]}
                        for e in stored])
