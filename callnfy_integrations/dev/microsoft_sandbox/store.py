"""What the Microsoft sandbox knows (`MicrosoftState`, one per sandbox app) and its settings.

Scripting (`script`), random faults (`set_chaos`) and holds come from the Google sandbox's state, with
the endpoint names below: Graph operations, the token grants, and `notification` / `validation` (the
sandbox's own POSTs to the service are not scriptable: the service's answers are what tests check).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import ClassVar

from flask import Flask

from ..google_sandbox.store import SandboxState

CLIENT_ID = "5a4db0c5-0000-4000-8000-00000000c0de"  # an Entra application (client) id is a GUID
CLIENT_SECRET = "sandbox-client-secret"
DEFAULT_EMAIL = "owner@example.com"
TENANT_ID = "5a4db0c5-7e4a-4000-8000-000000000001"

# Names under which calls are counted, logged and scripted.
GRAPH_ENDPOINTS = ("me.get", "mailboxSettings.get", "calendars.list", "events.create", "events.get",
                   "events.update", "events.delete", "events.list", "calendarView.list", "calendarView.delta",
                   "subscriptions.create", "subscriptions.get", "subscriptions.update", "subscriptions.delete",
                   "subscriptions.reauthorize")
SCRIPTABLE = GRAPH_ENDPOINTS + ("token:authorization_code", "token:refresh_token")


def _default_settings() -> dict:
    return {
        "access_token_lifetime": 3599,
        # Entra ID rotates the refresh token on every refresh. Real Entra keeps the old one usable until it
        # expires; the sandbox is stricter: the old one stops working after this many seconds (0: at once),
        # so a client that does not store each new refresh token fails here first.
        "refresh_token_grace": 0,
        "notify": True,  # POST change notifications to subscriptions
        "token_delay": 0, "write_delay": 0,  # seconds, to widen race windows in tests
        "time_zones": {},  # mailbox email -> mailboxSettings.timeZone (default "GMT Standard Time")
        "max_subscription_minutes": 4230,  # Outlook event subscriptions, as documented
        "validation_timeout": 10,  # seconds the notification URL has to answer the handshake
        "delta_page_size": 10,  # events per delta page unless `Prefer: odata.maxpagesize=n`
    }


def user_id(email: str) -> str:
    """The mailbox owner's stable Graph user id (a GUID)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailto:{email.lower()}"))


@dataclass
class MicrosoftState(SandboxState):
    """Everything the Microsoft sandbox knows; mutate under `lock`, never sleep holding it."""

    scriptable: ClassVar[tuple[str, ...]] = SCRIPTABLE
    # email -> {"calendars": {id: calendar}, "events": {id: event}, "sequence": int, "transactions": {}}
    mailboxes: dict = field(default_factory=dict)
    delta_tokens: dict = field(default_factory=dict)  # $deltatoken -> the sync state (see graph.delta)
    skip_tokens: dict = field(default_factory=dict)  # $skiptoken -> the rest of a delta round
    subscriptions: dict = field(default_factory=dict)  # id -> subscription (with the owner's email)
    deliveries: list = field(default_factory=list)  # every POST the sandbox made to a service, and its answer
    settings: dict = field(default_factory=_default_settings)

    def resettable(self) -> tuple:
        return self.mailboxes, self.delta_tokens, self.skip_tokens, self.subscriptions, self.deliveries


def state(app: Flask | None = None) -> MicrosoftState:
    from flask import current_app

    return (app or current_app).extensions["microsoft_sandbox"]
