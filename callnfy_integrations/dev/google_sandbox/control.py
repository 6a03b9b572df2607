"""Test controls: `/sandbox/*` endpoints, and `intercept`, which every Google endpoint calls first.

`intercept` counts the call, appends it to the request log and, when a test scripted failures for that
endpoint (`POST /sandbox/fail` or `SandboxState.script`), answers with the next one instead of the real
work. The endpoint module renders it, so a scripted error has the same JSON shape as a real one.
Failing at random instead (`POST /sandbox/chaos`, `SandboxState.set_chaos`): each call fails with a
given probability, with a fault picked from a list — an error, or a stall after the work is done.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

from flask import Blueprint, after_this_request, jsonify, make_response, request

from .store import state

blp = Blueprint("sandbox_control", __name__)


def intercept(name: str, render: Callable, log: bool = True):
    """Count and log this call; the next scripted response for `name` (rendered), or None to go on.

    `render(status, reason, message)` returns the endpoint's error response; reason and message may be None.
    """
    entry = None
    if log:
        # JSON first: `form` then parses the cached data. A copy: handlers store and later change parts of it.
        body = copy.deepcopy(request.get_json(force=True, silent=True))
        entry = {"endpoint": name, "method": request.method, "path": request.path,
                 "query": dict(request.args), "body": body}
        if request.form:  # revoke sends its token form-encoded; JSON requests have no such key
            entry["form"] = request.form.to_dict()
    sandbox = state()
    with sandbox.lock:
        sandbox.calls[name] = sandbox.calls.get(name, 0) + 1  # a scripted response is a call too
        if entry is not None:
            sandbox.requests.append(entry)
        scripted = sandbox.next_scripted(name)
    if scripted is None:
        scripted = sandbox.next_fault(name)
        if scripted is not None and "status" not in scripted:  # a stall: the work is done, its answer late
            stall = float(scripted["stall"])

            @after_this_request
            def hold(response):
                time.sleep(stall)  # no lock held: other requests go on
                return response

            return None
    if scripted is None:
        sandbox.wait_if_held(name)
        return None
    time.sleep(float(scripted.get("sleep") or 0))  # outside the lock: a stall must not stop other requests
    response = make_response(render(scripted["status"], scripted.get("reason"), scripted.get("message")))
    if scripted.get("retryAfter") is not None:
        response.headers["Retry-After"] = str(scripted["retryAfter"])
    return response


@blp.get("/calls")
def calls():
    with state().lock:
        return jsonify(dict(state().calls))


@blp.get("/requests")
def requests_log():
    with state().lock:
        return jsonify(list(state().requests))


@blp.post("/reset")
def reset():
    state().reset()
    return "", 204


@blp.post("/fail")
def fail():
    """`{"endpoint": ..., "responses": [{"status": 429, ...}, ...], "delay": s}`; delay = default `sleep`."""
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        return jsonify({"error": "expected a JSON object"}), 400
    responses = []
    for response in body.get("responses") or []:
        if isinstance(response, dict) and "sleep" not in response and body.get("delay"):
            response = {**response, "sleep": body["delay"]}
        responses.append(response)
    try:
        state().script(body.get("endpoint", ""), *responses)
    except (ValueError, TypeError) as exc:
        return jsonify({"error": str(exc)}), 400
    with state().lock:
        pending = len(state().failures.get(body["endpoint"], []))
    return jsonify({"endpoint": body["endpoint"], "pending": pending})


@blp.route("/chaos", methods=["GET", "POST"])
def chaos():
    """POST `{"rate": 0.1, "faults": [{"status": 503}, {"status": 429, "retryAfter": 1}, {"stall": 11}],
    "endpoints": [...], "seed": 1}` fails that fraction of calls at random (`rate` 0: off); GET answers
    the setting, `injected` (failures injected so far per endpoint) and `injectedFaults` (per kind)."""
    sandbox = state()
    if request.method == "POST":
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            return jsonify({"error": "expected a JSON object"}), 400
        try:
            sandbox.set_chaos(float(body.get("rate") or 0), list(body.get("faults") or []), body.get("endpoints"),
                              body.get("seed"))
        except (ValueError, TypeError) as exc:
            return jsonify({"error": str(exc)}), 400
    with sandbox.lock:
        return jsonify({"chaos": sandbox.chaos, "injected": dict(sandbox.injected),
                        "injectedFaults": dict(sandbox.injected_faults)})


@blp.route("/hold", methods=["GET", "POST", "DELETE"])
def hold():
    """POST `{"endpoint": "events.update"}`: calls to it wait before doing their work until DELETE
    (which releases every hold); GET answers how many calls wait at each endpoint now."""
    sandbox = state()
    if request.method == "POST":
        body = request.get_json(force=True, silent=True)
        try:
            sandbox.hold(str((body or {}).get("endpoint")))
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400
    elif request.method == "DELETE":
        sandbox.release()
    with sandbox.lock:
        return jsonify({name: count for name, count in sandbox.held.items() if count})


@blp.post("/settings")
def settings():
    with state().lock:
        state().settings.update(request.get_json(force=True))
        return jsonify(state().settings)


@blp.get("/channels")
def channels():
    with state().lock:
        return jsonify(sorted(state().channels))


@blp.get("/channels/<channel_id>")
def channel(channel_id):
    """One open channel as Google holds it, token included (benches and the dev console act as Google)."""
    with state().lock:
        found = state().channels.get(channel_id)
        if found is None:
            return jsonify({"error": "no such channel"}), 404
        return jsonify({k: v for k, v in found.items() if k != "messages"})


@blp.get("/events/<email>")
def events(email):
    """Every event of that calendar, cancelled ones included, in creation order, without internal keys."""
    with state().lock:
        stored = state().calendars.get(email, {}).get("events", {}).values()
        return jsonify([{k: v for k, v in e.items() if not k.startswith("_")} for e in stored])
