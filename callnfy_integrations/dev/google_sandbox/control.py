"""Test controls: `/sandbox/*` endpoints, and `intercept`, which every Google endpoint calls first.

`intercept` counts the call, appends it to the request log and, when a test scripted failures for that
endpoint (`POST /sandbox/fail` or `SandboxState.script`), answers with the next one instead of the real
work. The endpoint module renders it, so a scripted error has the same JSON shape as a real one.
Failing at random instead (`POST /sandbox/chaos`, `SandboxState.set_chaos`): each call fails with a
given probability, with a fault picked from a list — an error, or a stall after the work is done.

`control_blueprint` builds the provider-neutral endpoints over a state lookup; the Microsoft sandbox
uses it too, with its own state.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from functools import partial

from flask import Blueprint, after_this_request, jsonify, make_response, request

from .store import SandboxState, state


def intercept(name: str, render: Callable, log: bool = True, sandbox: SandboxState | None = None):
    """Count and log this call; the next scripted response for `name` (rendered), or None to go on.

    `render(status, reason, message)` returns the endpoint's error response; reason and message may be None.
    `sandbox`: the state to use (default: the Google sandbox's).
    """
    entry = None
    if log:
        # JSON first: `form` then parses the cached data. A copy: handlers store and later change parts of it.
        body = copy.deepcopy(request.get_json(force=True, silent=True))
        entry = {"endpoint": name, "method": request.method, "path": request.path,
                 "query": dict(request.args), "body": body}
        if request.form:  # revoke sends its token form-encoded; JSON requests have no such key
            entry["form"] = request.form.to_dict()
    sandbox = sandbox or state()
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


def _calls(lookup: Callable[[], SandboxState]):
    with lookup().lock:
        return jsonify(dict(lookup().calls))


def _requests_log(lookup: Callable[[], SandboxState]):
    with lookup().lock:
        return jsonify(list(lookup().requests))


def _reset(lookup: Callable[[], SandboxState]):
    lookup().reset()
    return "", 204


def _fail(lookup: Callable[[], SandboxState]):
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
        lookup().script(body.get("endpoint", ""), *responses)
    except (ValueError, TypeError) as exc:
        return jsonify({"error": str(exc)}), 400
    with lookup().lock:
        pending = len(lookup().failures.get(body["endpoint"], []))
    return jsonify({"endpoint": body["endpoint"], "pending": pending})


def _chaos(lookup: Callable[[], SandboxState]):
    """POST `{"rate": 0.1, "faults": [{"status": 503}, {"status": 429, "retryAfter": 1}, {"stall": 11}],
    "endpoints": [...], "seed": 1}` fails that fraction of calls at random (`rate` 0: off); GET answers
    the setting, `injected` (failures injected so far per endpoint) and `injectedFaults` (per kind)."""
    sandbox = lookup()
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


def _hold(lookup: Callable[[], SandboxState]):
    """POST `{"endpoint": "events.update"}`: calls to it wait before doing their work until DELETE
    (which releases every hold); GET answers how many calls wait at each endpoint now."""
    sandbox = lookup()
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


def _settings(lookup: Callable[[], SandboxState]):
    with lookup().lock:
        lookup().settings.update(request.get_json(force=True))
        return jsonify(lookup().settings)


def control_blueprint(name: str, lookup: Callable[[], SandboxState]) -> Blueprint:
    """The `/sandbox/*` endpoints every sandbox has (calls, requests, reset, fail, chaos, hold, settings),
    over the state `lookup()` answers."""
    blp = Blueprint(name, __name__)
    blp.add_url_rule("/calls", "calls", partial(_calls, lookup), methods=["GET"])
    blp.add_url_rule("/requests", "requests_log", partial(_requests_log, lookup), methods=["GET"])
    blp.add_url_rule("/reset", "reset", partial(_reset, lookup), methods=["POST"])
    blp.add_url_rule("/fail", "fail", partial(_fail, lookup), methods=["POST"])
    blp.add_url_rule("/chaos", "chaos", partial(_chaos, lookup), methods=["GET", "POST"])
    blp.add_url_rule("/hold", "hold", partial(_hold, lookup), methods=["GET", "POST", "DELETE"])
    blp.add_url_rule("/settings", "settings", partial(_settings, lookup), methods=["POST"])
    return blp


blp = control_blueprint("sandbox_control", state)


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
