"""User B against every id-bearing route of user A (the list read from /openapi.json, so a new route
is covered the day it is added): 404 — indistinguishable from a missing id — or 401 for the REST
hooks, and A's data exactly as it was. B's key on the Zapier API (/zapier/v1) is B's account: A's
ids are 404 there too, and B's searches by A's customers' phone and email find nothing."""

from __future__ import annotations

import json
import re

from sqlalchemy import select, text

from callnfy_integrations.extensions import db
from callnfy_integrations.zapier.models import WebhookDelivery
from tests.factories import call_body, next_weekday_at_ten
from tests.zapier_fixtures import Account, run_worker

BODIES = {"get": None, "patch": {"notes": "changed by someone else"}, "post": {}, "put": {}, "delete": None}
# Routes whose body has a required field: a valid body, so the answer is about the id, not the body.
PATH_BODIES = {"/zapier/v1/appointments/{appointment_id}/reschedule": {"scheduledAt": "2026-12-09T10:00:00Z"}}


def snapshot() -> str:
    """Everything A has, as rows: any change by B shows here."""
    db.session.expire_all()
    tables = ("appointments", "calls", "customers", "zapier_subscriptions", "webhook_deliveries", "integrations",
              "availability_holds", "availability_settings")
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
    hold = a.client.post("/availability/holds", headers=a.headers, json={
        "scheduledAt": next_weekday_at_ten(), "duration": 30}).json["data"]
    ids = {"hold_id": hold["id"], "appointment_id": appointment["id"], "call_id": call["id"],
           "delivery_id": "dlv_" + delivery.id.hex, "user_id": str(a.user_id), "subscription_id": subscription["id"],
           "event": "appointment.created"}

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
                kwargs["json"] = PATH_BODIES.get(path, BODIES[method])
            answer = getattr(b.client, method)(url, **kwargs)
            # A key is its owner's account: in the path's account (REST hooks) it is refused; on the
            # Zapier API it is B's account, where A's ids do not exist.
            expected = 404 if scheme == "bearerAuth" or path.startswith("/zapier/v1/") else 401
            assert answer.status_code == expected, (method, path, answer.status_code, answer.json)
            assert answer.json["success"] is False
            if scheme == "bearerAuth":  # A's id, in either spelling, is not in what B is told
                assert str(a.user_id) not in json.dumps(answer.json) and a.user_id.hex not in json.dumps(answer.json)
            checked.append(f"{method.upper()} {path}")
    # B's searches of the Zapier API, by A's customer, find nothing; B's account is B's.
    key = {"X-Callnfy-Key": b.api_key}
    customer = a.client.get(f"/appointments/{appointment['id']}", headers=a.headers).json["data"]
    for path, query in (("/zapier/v1/customers", {"phone": customer["customerPhone"]}),
                        ("/zapier/v1/customers", {"email": customer["customerEmail"]}),
                        ("/zapier/v1/appointments", {"customerPhone": customer["customerPhone"]}),
                        ("/zapier/v1/appointments", {"customerEmail": customer["customerEmail"]})):
        answer = b.client.get(path, query_string=query, headers=key)
        assert (answer.status_code, answer.json["data"]) == (200, []), (path, query)
        checked.append(f"GET {path}?{next(iter(query))}")
    assert b.client.get("/zapier/v1/me", headers=key).json["data"]["userId"] == str(b.user_id)
    assert snapshot() == before  # nothing of A's changed
    assert len(checked) >= 18, checked
    assert {f"POST /zapier/v1/appointments/{{appointment_id}}/{action}"
            for action in ("reschedule", "cancel", "complete")} <= set(checked)
    # …and the same ids still work for A.
    assert a.client.get(f"/appointments/{appointment['id']}", headers=a.headers).status_code == 200
    assert a.client.post(f"/integrations/zapier/deliveries/{ids['delivery_id']}/retry",
                         headers=a.headers).status_code == 200
