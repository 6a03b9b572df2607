"""What the sandbox knows (`SandboxState`, one per sandbox app), its settings and scripting rules."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import ClassVar

from flask import Flask

CLIENT_ID = "sandbox-client-id.apps.googleusercontent.com"
CLIENT_SECRET = "sandbox-client-secret"
DEFAULT_EMAIL = "owner@example.com"

# Names under which calls are counted, logged and scripted (Google's method names).
CALENDAR_ENDPOINTS = ("events.insert", "events.get", "events.update", "events.patch", "events.delete",
                      "events.list", "events.watch", "channels.stop", "calendarList.list")
SCRIPTABLE = CALENDAR_ENDPOINTS + ("revoke", "token:refresh_token", "token:authorization_code")
SCRIPTED_KEYS = {"status", "reason", "message", "retryAfter", "sleep"}
CHAOS_KEYS = SCRIPTED_KEYS | {"stall"}  # stall: do the work, then hold the answer this many seconds


def _checked(response: dict | int, keys: set[str], *, status_required: bool = True) -> dict:
    response = {"status": response} if isinstance(response, int) else dict(response)
    unknown = set(response) - keys
    if unknown:  # a misspelt key would otherwise be ignored silently
        raise ValueError(f"unknown keys {sorted(unknown)}; allowed: {sorted(keys)}")
    if status_required or "status" in response:
        if not isinstance(response.get("status"), int) or not 400 <= response["status"] <= 599:
            raise ValueError("status must be an HTTP error code (400-599)")
    elif not isinstance(response.get("stall"), (int, float)) or response["stall"] <= 0:
        raise ValueError("a fault without a status must stall (seconds > 0)")
    return response


def _default_settings() -> dict:
    return {"access_token_lifetime": 3599, "rotate_refresh_tokens": False, "notify": True, "token_delay": 0,
            "write_delay": 0,  # seconds slept before each event write, to widen race windows in tests
            "time_zones": {}}  # calendar email -> IANA zone reported by events.list (default Europe/London)


@dataclass
class SandboxState:
    """Everything the sandbox knows. Handlers run in threads: mutate under `lock`, never sleep holding it.

    The scripting, chaos and hold machinery is shared with the Microsoft sandbox, whose state subclasses
    this one with its own `scriptable` endpoints and `resettable` collections.
    """

    scriptable: ClassVar[tuple[str, ...]] = SCRIPTABLE
    lock: threading.RLock = field(default_factory=threading.RLock)
    codes: dict = field(default_factory=dict)
    refresh_tokens: dict = field(default_factory=dict)
    access_tokens: dict = field(default_factory=dict)
    # calendar id -> {"events": {id: event}, "sequence": int}; a primary calendar's id is its owner's
    # email, a secondary one's also has "owner", "summary" and "timeZone"
    calendars: dict = field(default_factory=dict)
    sync_tokens: dict = field(default_factory=dict)  # token -> (calendar id, sequence)
    channels: dict = field(default_factory=dict)
    calls: dict = field(default_factory=dict)  # endpoint -> count, for tests
    requests: list = field(default_factory=list)  # request log, for tests: see control.intercept
    failures: dict[str, list] = field(default_factory=dict)  # endpoint -> FIFO of scripted responses
    settings: dict = field(default_factory=_default_settings)
    chaos: dict | None = None  # random failures: see `set_chaos`
    injected: dict = field(default_factory=dict)  # endpoint -> random failures injected, for tests
    injected_faults: dict = field(default_factory=dict)  # "503", "429", "stall", … -> how many
    rng: random.Random = field(default_factory=random.Random)
    notifying: int = 0  # push notifications sent and not yet answered, for tests: wait for 0, not a while
    holds: dict = field(default_factory=dict)  # endpoint -> threading.Event set on release: see `hold`
    held: dict = field(default_factory=dict)  # endpoint -> calls waiting at a hold now

    def count(self, name: str) -> None:
        with self.lock:
            self.calls[name] = self.calls.get(name, 0) + 1

    def script(self, endpoint: str, *responses: dict | int) -> None:
        """Queue responses `endpoint` answers with instead of doing its work, one per call, in order.

        Each is a status code or a dict: `status` (4xx/5xx), optional `reason`, `message`, `retryAfter`
        (the Retry-After header) and `sleep` (seconds to stall before answering).
        """
        if endpoint not in self.scriptable:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {', '.join(self.scriptable)}")
        queued = [_checked(response, SCRIPTED_KEYS) for response in responses]
        with self.lock:
            self.failures.setdefault(endpoint, []).extend(queued)

    def next_scripted(self, endpoint: str) -> dict | None:
        with self.lock:
            queue = self.failures.get(endpoint)
            return queue.pop(0) if queue else None

    def set_chaos(self, rate: float, faults: list, endpoints: list | None = None, seed: int | None = None) -> None:
        """Fail a fraction `rate` of the calls to `endpoints` (default: every scriptable one) with a
        fault picked at random from `faults`: a scripted response (status, reason, retryAfter, sleep —
        nothing is done), or `{"stall": s}` — the call does its work, then its answer is held `s`
        seconds (longer than the client waits: a write that happened with its answer lost).
        Scripted responses (`script`) go first. `rate` 0 turns it off; `injected` counts per endpoint,
        `injected_faults` per kind (the status, or "stall")."""
        if not 0 <= rate <= 1:
            raise ValueError("rate must be between 0 and 1")
        endpoints = list(endpoints or self.scriptable)
        unknown = set(endpoints) - set(self.scriptable)
        if unknown:
            raise ValueError(f"unknown endpoints {sorted(unknown)}; one of {', '.join(self.scriptable)}")
        checked = [_checked(fault, CHAOS_KEYS, status_required=False) for fault in faults]
        if rate and not checked:
            raise ValueError("faults: at least one is required")
        with self.lock:
            self.chaos = {"rate": rate, "faults": checked, "endpoints": endpoints} if rate else None
            if seed is not None:
                self.rng.seed(seed)

    def next_fault(self, endpoint: str) -> dict | None:
        """A random fault for this call (see `set_chaos`), counted in `injected`; None: answer normally."""
        with self.lock:
            chaos = self.chaos
            if not chaos or endpoint not in chaos["endpoints"] or self.rng.random() >= chaos["rate"]:
                return None
            fault = dict(self.rng.choice(chaos["faults"]))
            kind = str(fault["status"]) if "status" in fault else "stall"
            self.injected[endpoint] = self.injected.get(endpoint, 0) + 1
            self.injected_faults[kind] = self.injected_faults.get(kind, 0) + 1
            return fault

    def hold(self, endpoint: str) -> None:
        """Make calls to `endpoint` wait (counted, before their work) until `release`: a test pauses a
        write mid-flight to drive a race deterministically."""
        if endpoint not in self.scriptable:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {', '.join(self.scriptable)}")
        with self.lock:
            self.holds.setdefault(endpoint, threading.Event())

    def release(self, endpoint: str | None = None) -> None:
        """Let the held calls (of `endpoint`, or of every endpoint) go on, and hold no more."""
        with self.lock:
            for name in [endpoint] if endpoint else list(self.holds):
                gate = self.holds.pop(name, None)
                if gate is not None:
                    gate.set()

    def wait_if_held(self, endpoint: str, limit: float = 60.0) -> None:
        with self.lock:
            gate = self.holds.get(endpoint)
            if gate is None:
                return
            self.held[endpoint] = self.held.get(endpoint, 0) + 1
        try:
            gate.wait(limit)  # outside the lock: other calls go on
        finally:
            with self.lock:
                self.held[endpoint] -= 1

    def resettable(self) -> tuple:
        """The provider's collections `reset` empties, beside the test bookkeeping."""
        return self.calendars, self.channels, self.sync_tokens

    def reset(self) -> None:
        """Forget calendars, channels, sync tokens and test bookkeeping (random failures included);
        tokens and codes stay valid."""
        with self.lock:
            for collection in (self.calls, self.requests, self.failures, self.injected, self.injected_faults,
                               *self.resettable()):
                collection.clear()
            self.chaos = None
        self.release()


def state(app: Flask | None = None) -> SandboxState:
    from flask import current_app

    return (app or current_app).extensions["google_sandbox"]
