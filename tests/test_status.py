"""GET /integrations/status: shapes, first sight, isolation, round trips."""

import re
import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from callnfy_integrations.extensions import db
from callnfy_integrations.integrations.models import MICROSOFT_CALENDAR, REAUTHORIZATION_REQUIRED, TWO_WAY
from callnfy_integrations.users.models import User
from tests.factories import auth_headers, make_google_integration, make_user, make_zapier_integration
from tests.roundtrips import count_round_trips

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_status_not_connected_for_new_user(client, user_id):
    response = client.get("/integrations/status", headers=auth_headers(user_id))
    assert response.status_code == 200
    assert response.json == {"success": True,
                             "data": {"googleCalendar": {"connected": False}, "microsoftCalendar": {"connected": False},
                                      "zapier": {"connected": False}}}


def test_status_creates_user_row_on_first_sight(client, app_ctx, user_id):
    assert db.session.get(User, user_id) is None
    client.get("/integrations/status", headers=auth_headers(user_id))
    db.session.expire_all()
    user = db.session.get(User, user_id)
    assert user is not None and user.time_zone == "Europe/London"
    # Second sight changes nothing.
    client.get("/integrations/status", headers=auth_headers(user_id))
    assert db.session.scalar(select(db.func.count()).select_from(User)) == 1


def test_status_shows_connected_shapes(client, app_ctx):
    user = make_user()
    synced = datetime(2025, 12, 22, 10, 45, 0, 123456, tzinfo=UTC)
    make_google_integration(user, email="clinic@example.com", sync_mode=TWO_WAY, last_sync_at=synced)
    _, api_key = make_zapier_integration(user)

    data = client.get("/integrations/status", headers=auth_headers(user.id)).json["data"]

    assert data["googleCalendar"] == {"connected": True, "email": "clinic@example.com", "syncMode": "two-way",
                                      "lastSyncAt": "2025-12-22T10:45:00.123Z", "syncError": None}
    zapier = data["zapier"]
    assert set(zapier) == {"connected", "apiKey", "webhookUrl", "createdAt"}
    assert zapier["connected"] is True and zapier["apiKey"] == api_key
    assert zapier["webhookUrl"] == f"https://api.callnfy.test/webhooks/zapier/{user.id}"
    assert ISO_MS.match(zapier["createdAt"])


def test_status_google_never_synced_has_null_last_sync(client, app_ctx):
    user = make_user()
    make_google_integration(user)
    data = client.get("/integrations/status", headers=auth_headers(user.id)).json["data"]
    assert data["googleCalendar"] == {"connected": True, "email": "owner@example.com", "syncMode": "one-way",
                                      "lastSyncAt": None, "syncError": None}


def test_status_shows_reauthorization_required(client, app_ctx):
    user = make_user()
    make_google_integration(user, email="lapsed@example.com", status=REAUTHORIZATION_REQUIRED)
    data = client.get("/integrations/status", headers=auth_headers(user.id)).json["data"]
    assert data["googleCalendar"] == {"connected": False, "reauthorizationRequired": True,
                                      "email": "lapsed@example.com"}


def test_status_shows_microsoft_with_the_same_fields_as_google(client, app_ctx):
    user = make_user()
    make_google_integration(user, email="g@example.com")
    make_google_integration(user, email="m@example.com", provider=MICROSOFT_CALENDAR)
    data = client.get("/integrations/status", headers=auth_headers(user.id)).json["data"]
    assert data["microsoftCalendar"] == {"connected": True, "email": "m@example.com", "syncMode": "one-way",
                                         "lastSyncAt": None, "syncError": None}
    assert set(data["microsoftCalendar"]) == set(data["googleCalendar"])
    assert data["googleCalendar"]["email"] == "g@example.com"  # both connected, each its own


def test_status_shows_microsoft_reauthorization_required(client, app_ctx):
    user = make_user()
    make_google_integration(user, email="lapsed@example.com", status=REAUTHORIZATION_REQUIRED,
                            provider=MICROSOFT_CALENDAR)
    data = client.get("/integrations/status", headers=auth_headers(user.id)).json["data"]
    assert data["microsoftCalendar"] == {"connected": False, "reauthorizationRequired": True,
                                         "email": "lapsed@example.com"}
    assert data["googleCalendar"] == {"connected": False}


def test_user_sees_only_their_own_status(client, app_ctx):
    owner = make_user()
    make_google_integration(owner)
    make_google_integration(owner, provider=MICROSOFT_CALENDAR)
    make_zapier_integration(owner)
    stranger = uuid.uuid4()
    data = client.get("/integrations/status", headers=auth_headers(stranger)).json["data"]
    assert data == {"googleCalendar": {"connected": False}, "microsoftCalendar": {"connected": False},
                    "zapier": {"connected": False}}


def test_status_takes_at_most_two_database_round_trips(client, app_ctx):
    user = make_user()
    make_google_integration(user)
    make_zapier_integration(user)
    headers = auth_headers(user.id)
    db.session.remove()
    client.get("/integrations/status", headers=headers)  # warm the pool

    with count_round_trips(db.engine) as trips, count_round_trips(db.engines["autocommit"]) as read_trips:
        response = client.get("/integrations/status", headers=headers)
    trips += read_trips
    assert response.json["data"]["zapier"]["connected"] is True
    assert response.json["data"]["googleCalendar"]["connected"] is True
    assert 1 <= len(trips) <= 2, trips


def test_status_of_a_user_without_integrations_takes_at_most_two_round_trips(client, app_ctx):
    user = make_user()
    headers = auth_headers(user.id)
    db.session.remove()
    client.get("/integrations/status", headers=headers)
    with count_round_trips(db.engine) as trips, count_round_trips(db.engines["autocommit"]) as read_trips:
        response = client.get("/integrations/status", headers=headers)
    assert response.json["data"]["zapier"] == {"connected": False}
    assert trips + read_trips == ["SELECT", "INSERT"]  # the INSERT … ON CONFLICT DO NOTHING of first sight


def test_round_trip_counter_sees_implicit_begin_and_rollback(app_ctx):
    # The counter itself must not under-count: a transactional SELECT is BEGIN, SELECT, ROLLBACK.
    with count_round_trips(db.engine) as trips:
        db.session.execute(select(User.id)).all()
        db.session.remove()
    assert trips == ["BEGIN", "SELECT", "ROLLBACK"]
