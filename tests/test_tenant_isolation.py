"""User B against every id-bearing route of user A (the list read from /openapi.json, so a new route
is covered the day it is added): 404 — indistinguishable from a missing id — or 401 for the REST
hooks, and A's data exactly as it was."""

from __future__ import annotations

import json
import re

from sqlalchemy import select, text

from callnfy_integrations.extensions import db
from callnfy_integrations.zapier.models import WebhookDelivery
from tests.factories import call_body
from tests.zapier_fixtures import Account, run_worker

BODIES = {"get": None, "patch": {"notes": "changed by someone else"}, "post": {}, "put": {}, "delete": None}


def snapshot() -> str:
    """Everything A has, as rows: any change by B shows here."""
    db.session.expire_all()
    tables = ("appointments", "calls", "customers", "zapier_subscriptions", "webhook_deliveries", "integrations")
    def plain(value):
        return bytes(value).hex() if isinstance(value, memoryview) else str(value)

    return json.dumps({t: [[plain(v) for v in row] for row in db.session.execute(text(f"SELECT * FROM {t} ORDER BY 1"))]
                       for t in tables}, sort_keys=True)


def test_user_b_reaches_nothing_of_user_a(hooks_app, account, receiver):
    a, b = account, Account(hooks_app)
    a.subscribe(receiver.url(), "appointment.created")
    receiver.answer(*[500] * 4)
    appointment = a.book()
    call = a.client.post("/calls", json=call_body(), headers=a.headers).json["data"]
    run_worker(hooks_app)  # A's delivery dies: a retryable one exists
    db.session.expire_all()
    delivery = db.session.scalars(select(WebhookDelivery)).one()
    assert delivery.status == "dead"
    [subscription] = a.hook("get", "/subscriptions").json["data"]
    ids = {"appointment_id": appointment["id"], "call_id": call["id"], "delivery_id": "dlv_" + delivery.id.hex,
           "user_id": str(a.user_id), "subscription_id": subscription["id"], "event": "appointment.created"}

    spec = b.client.get("/openapi.json").json
    before = snapshot()
    checked = []
    for path, operations in spec["paths"].items():
        if "{" not in path:
            continue
        url = re.sub(r"{(\w+)}", lambda m: ids[m.group(1)], path)
        for method, operation in operations.items():
            if method not in BODIES:
                continue
            scheme = next(iter(operation["security"][0]))
            headers = b.headers if scheme == "bearerAuth" else {"X-Callnfy-Key": b.api_key}
            kwargs = {"headers": headers}
            if BODIES[method] is not None:
                kwargs["json"] = BODIES[method]
            answer = getattr(b.client, method)(url, **kwargs)
            expected = 404 if scheme == "bearerAuth" else 401
            assert answer.status_code == expected, (method, path, answer.status_code, answer.json)
            assert answer.json["success"] is False
            if scheme == "bearerAuth":  # A's id, in either spelling, is not in what B is told
                assert str(a.user_id) not in json.dumps(answer.json) and a.user_id.hex not in json.dumps(answer.json)
            checked.append(f"{method.upper()} {path}")
    assert snapshot() == before  # nothing of A's changed
    assert len(checked) >= 11, checked
    # …and the same ids still work for A.
    assert a.client.get(f"/appointments/{appointment['id']}", headers=a.headers).status_code == 200
    assert a.client.post(f"/integrations/zapier/deliveries/{ids['delivery_id']}/retry",
                         headers=a.headers).status_code == 200
