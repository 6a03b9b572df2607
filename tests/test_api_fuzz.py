"""Schemathesis against /openapi.json, authenticated, in positive and negative modes: no 5xx, every
response (body, status, headers) as documented, schema-valid requests accepted and schema-violating
ones refused; then every documented status code is shown to be real.

Deterministic by default (the same examples every run, so CI cannot fail by chance); set FUZZ_SEED to
another number, or FUZZ_EXAMPLES to more than 40, to explore further."""

from __future__ import annotations

import importlib
import json
import os
from collections import defaultdict

import hypothesis
import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from callnfy_integrations import create_app
from tests.factories import call_body, next_weekday_at_ten
from tests.support import make_config
from tests.zapier_fixtures import Account

pytestmark = pytest.mark.fuzz

# Nothing listens on the discard port: the routes that would call Google fail fast, on loopback.
NO_GOOGLE = "http://127.0.0.1:9"
FUZZ_SETTINGS = {
    "GOOGLE_CLIENT_ID": "fuzz.apps.googleusercontent.com", "GOOGLE_CLIENT_SECRET": "fuzz-secret",
    "GOOGLE_AUTHORIZE_URL": f"{NO_GOOGLE}/auth", "GOOGLE_TOKEN_URL": f"{NO_GOOGLE}/token",
    "GOOGLE_USERINFO_URL": f"{NO_GOOGLE}/userinfo", "GOOGLE_REVOKE_URL": f"{NO_GOOGLE}/revoke",
    "GOOGLE_CALENDAR_API_URL": f"{NO_GOOGLE}/calendar/v3/",
    "MICROSOFT_CLIENT_ID": "5a4db0c5-0000-4000-8000-00000000f022", "MICROSOFT_CLIENT_SECRET": "fuzz-secret",
    "MICROSOFT_AUTHORITY_URL": NO_GOOGLE, "MICROSOFT_GRAPH_URL": f"{NO_GOOGLE}/v1.0",
    # Hook URLs that pass their documented pattern must resolve without leaving the machine.
    "WEBHOOK_ALLOWED_HOSTS": "localhost", "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1",
}
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
SEED = os.environ.get("FUZZ_SEED")

# The document is the app's own; the calls go to the test session's database and Redis.
schema = schemathesis.openapi.from_wsgi(
    "/openapi.json", create_app(make_config("postgresql://schema-only@127.0.0.1:1/none", "redis://127.0.0.1:1/0",
                                            **FUZZ_SETTINGS)))
# allow_x00=False: the document's description says strings must not hold NUL (PostgreSQL cannot store
# it); that such a string is a 400, not a 500, is tests/test_input_sanity.py's business.
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                deterministic=SEED is None, allow_x00=False)


def explore(test):
    """With FUZZ_SEED, other examples than the deterministic default (same ones for the same seed)."""
    return test if SEED is None else hypothesis.seed(int(SEED))(test)

# Statuses the fuzzing saw, per operation; and those it cannot reach, with the test that shows each
# (which says so with @pytest.mark.shows_status).
SEEN: dict[tuple[str, str], set[str]] = defaultdict(set)
RATE_LIMIT_TEST = "tests/test_zapier_hooks.py::test_failed_key_checks_are_rate_limited_per_address_and_account"
ZAPIER_ACTIONS = "tests/test_zapier_actions.py::"
MICROSOFT_TWO_WAY = "tests/test_microsoft_two_way.py::"
ZAPIER_RATE_LIMIT_TEST = ZAPIER_ACTIONS + "test_failed_key_checks_are_rate_limited_per_address_and_key"
ELSEWHERE = {
    ("GET", "/readyz", "503"): "tests/test_health.py::test_readyz_is_503_naming_what_is_down",
    ("POST", "/integrations/google/connect", "409"):
        "tests/test_google_connect.py::test_connect_when_connected_is_409_and_after_lapse_is_allowed",
    ("DELETE", "/integrations/google/disconnect", "200"):
        "tests/test_google_disconnect.py::test_disconnect_forgets_at_once_then_revokes_and_stops_the_channel",
    ("PUT", "/integrations/google/settings", "200"):
        "tests/test_google_disconnect.py::test_settings_switch_sync_mode_and_call_hooks",
    ("POST", "/integrations/zapier/generate-key", "500"):
        "tests/test_zapier_keys.py::test_generate_key_failure_answers_the_specs_message_and_writes_nothing",
    ("DELETE", "/integrations/zapier/revoke-key", "500"):
        "tests/test_zapier_keys.py::test_revoke_key_failure_answers_the_specs_message_and_keeps_key_and_subscriptions",
    ("POST", "/integrations/zapier/deliveries/{delivery_id}/retry", "200"):
        "tests/test_delivery_log.py::test_retrying_a_dead_delivery_sends_it_again_and_other_states_are_refused",
    ("POST", "/integrations/zapier/deliveries/{delivery_id}/retry", "409"):
        "tests/test_delivery_log.py::test_retrying_a_dead_delivery_sends_it_again_and_other_states_are_refused",
    **{(method, path, "429"): RATE_LIMIT_TEST
       for method, path in (("GET", "/webhooks/zapier/{user_id}"), ("GET", "/webhooks/zapier/{user_id}/subscriptions"),
                            ("POST", "/webhooks/zapier/{user_id}/subscriptions"),
                            ("DELETE", "/webhooks/zapier/{user_id}/subscriptions/{subscription_id}"),
                            ("GET", "/webhooks/zapier/{user_id}/samples/{event}"))},
    ("POST", "/appointments", "409"):
        "tests/test_availability.py::test_require_free_refuses_busy_time_with_its_conflicts",
    ("GET", "/availability", "200"):
        "tests/test_availability.py::test_busy_time_and_slots_leave_out_appointments_with_their_buffers_and_holds",
    ("POST", "/availability/holds", "201"):
        "tests/test_availability.py::test_a_hold_blocks_others_and_its_own_booking_always_succeeds_once",
    ("GET", "/integrations/google/calendars", "200"):
        "tests/test_google_calendars.py::test_the_list_names_each_calendar_and_the_connected_one_counts_as_busy_by_default",
    ("GET", "/integrations/google/calendars", "403"):
        "tests/test_google_calendars.py::"
        "test_an_old_connection_is_403_insufficient_scope_and_reconnecting_fixes_it_keeping_everything",
    **{("GET", "/integrations/google/calendars", status):
       "tests/test_google_calendars.py::test_google_down_is_a_503_and_a_refusal_a_502_in_the_envelope"
       for status in ("502", "503")},
    ("POST", "/webhooks/google/calendar", "200"):
        "tests/test_google_two_way.py::test_a_burst_of_50_notifications_makes_at_most_two_list_calls",
    ("POST", "/integrations/microsoft/connect", "200"):
        "tests/test_microsoft_connect.py::test_connect_sends_the_browser_to_consent_with_pkce_and_stores_the_grant_encrypted",
    ("POST", "/integrations/microsoft/connect", "409"):
        "tests/test_microsoft_connect.py::test_connect_when_connected_is_409_and_after_lapse_is_allowed",
    ("DELETE", "/integrations/microsoft/disconnect", "200"):
        "tests/test_microsoft_connect.py::test_disconnect_forgets_the_connection_and_a_second_is_404",
    ("PUT", "/integrations/microsoft/settings", "200"):
        "tests/test_microsoft_connect.py::test_settings_accept_one_way_and_two_way_and_refuse_anything_else",
    **{("POST", f"/webhooks/microsoft/{path}", status): MICROSOFT_TWO_WAY + test
       for path in ("calendar", "lifecycle")
       for status, test in (
           ("200", "test_the_validation_handshake_answers_the_decoded_token_as_plain_text_without_the_database"),
           ("400", "test_what_is_not_a_notification_batch_is_400_never_500"),
           ("404", "test_a_forged_client_state_or_unknown_subscription_is_404_and_nothing_is_enqueued"),
           ("429", "test_notifications_are_rate_limited_per_client_address"))},
    ("POST", "/webhooks/microsoft/calendar", "202"):
        MICROSOFT_TWO_WAY + "test_a_valid_batch_is_answered_202_at_once_and_requests_one_sync",
    ("POST", "/webhooks/microsoft/lifecycle", "202"):
        MICROSOFT_TWO_WAY + "test_reauthorization_required_renews_the_subscription_with_a_patch",
    ("POST", "/webhooks/google/calendar", "429"):
        "tests/test_google_two_way.py::test_notifications_are_rate_limited_per_client_address",
    **{(method, path, "429"): ZAPIER_RATE_LIMIT_TEST
       for method, path in (("GET", "/zapier/v1/me"), ("GET", "/zapier/v1/appointments"),
                            ("POST", "/zapier/v1/appointments"),
                            ("POST", "/zapier/v1/appointments/{appointment_id}/reschedule"),
                            ("POST", "/zapier/v1/appointments/{appointment_id}/cancel"),
                            ("POST", "/zapier/v1/appointments/{appointment_id}/complete"),
                            ("GET", "/zapier/v1/customers"), ("GET", "/zapier/v1/availability/slots"))},
    ("POST", "/zapier/v1/appointments", "200"): ZAPIER_ACTIONS + "test_the_same_idempotency_key_answers_the_first_"
                                                                 "appointment_and_another_request_is_409",
    ("POST", "/zapier/v1/appointments", "409"): ZAPIER_ACTIONS + "test_require_free_refuses_a_taken_slot_with_a_"
                                                                 "message_a_zap_user_understands",
    ("POST", "/zapier/v1/appointments/{appointment_id}/reschedule", "409"):
        ZAPIER_ACTIONS + "test_reschedule_cancel_and_complete_answer_404_and_409_as_the_jwt_api",
}


@pytest.fixture(scope="module")
def fuzz_app(app, database_url, servers):
    return create_app(make_config(database_url, servers["redis"], **FUZZ_SETTINGS))


@pytest.fixture
def fuzz_account(fuzz_app):
    """An account with a key, an appointment, a call and a subscription: real ids for the paths."""
    with fuzz_app.app_context():
        account = Account(fuzz_app)
        account.ids = {
            "user_id": str(account.user_id),
            "appointment_id": account.book()["id"],
            "call_id": account.client.post("/calls", json=call_body(), headers=account.headers).json["data"]["id"],
            "subscription_id": account.subscribe("https://localhost/hooks/fuzz")["id"],
            "hold_id": account.client.post("/availability/holds", headers=account.headers, json={
                "scheduledAt": next_weekday_at_ten(), "duration": 30}).json["data"]["id"],
        }
        return account


def pagination_header(ctx, response, case):
    """X-Pagination is documented as JSON `content`, which schemathesis does not read: check it here."""
    header = response.headers.get("x-pagination")
    if header:
        metadata = case.operation.schema.raw_schema["components"]["schemas"]["PaginationMetadata"]
        jsonschema_rs.validate(metadata, json.loads(header[0]))
    return None


def use_real_ids(case, account) -> None:
    """The user is always the account (another user's id is the tenant-isolation test's business); the
    other ids are the account's real ones for about half of the schema-valid examples."""
    parameters = case.path_parameters or {}
    if "user_id" in parameters:
        parameters["user_id"] = account.ids["user_id"]
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return
    for name, value in parameters.items():
        if name in account.ids and name != "user_id" and len(str(value)) % 2 == 0:
            parameters[name] = account.ids[name]


# Searches that need one of two query parameters: a rule a list of parameters cannot state.
EITHER_PARAMETER = {("GET", "/zapier/v1/customers"): ("phone", "email"),
                    ("GET", "/zapier/v1/appointments"): ("customerPhone", "customerEmail")}


def breaks_a_rule_between_fields(case) -> bool:
    """A schema-valid request that breaks a rule between its fields, which a document cannot state (each
    a 400 naming the field, shown by tests/test_availability.py and tests/test_zapier_actions.py): an
    availability window whose `to` is not after `from` or more than 31 days after it; working hours whose
    interval ends before it starts, or overlaps the one before; a Zapier search with neither of its two
    parameters. Also a string holding NUL, which the document's description refuses (a 400 shown by
    tests/test_input_sanity.py) but a field's pattern can still generate."""
    from datetime import datetime, timedelta

    if case.meta is not None and case.meta.generation.mode.is_negative:
        return False  # a schema-invalid request is refused anyway
    if _holds_nul([case.body, case.query, case.path_parameters]):
        return True  # generated from a field's pattern, which allow_x00 does not reach; the document refuses NUL
    either = EITHER_PARAMETER.get((case.method.upper(), case.path))
    if either:
        return not any(name in (case.query or {}) for name in either)
    if (case.method.upper(), case.path) == ("PUT", "/integrations/availability/settings"):
        days = case.body.get("workingHours") if isinstance(case.body, dict) else None
        return isinstance(days, dict) and any(_out_of_order(intervals) for intervals in days.values())
    if (case.method.upper(), case.path) != ("GET", "/availability"):
        return False
    query = case.query or {}
    try:
        start, end = (datetime.fromisoformat(str(query[k]).replace("Z", "+00:00")) for k in ("from", "to"))
    except (KeyError, ValueError):
        return False
    return end <= start or end - start > timedelta(days=31)


def _holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def _out_of_order(intervals) -> bool:
    """Working hours of one day whose interval ends before it starts, overlaps the one before or opens
    at 24:00 (intervals of a schema-valid body are pairs of "HH:MM" strings)."""
    previous = "00:00"
    for interval in intervals if isinstance(intervals, list) else []:
        if not (isinstance(interval, list) and len(interval) == 2):
            return False
        opens, closes = interval
        if opens >= closes or opens < previous or opens == "24:00":
            return True
        previous = closes
    return False


@schema.parametrize()
@explore
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_api_conforms_to_its_schema(case, fuzz_app, fuzz_account):
    use_real_ids(case, fuzz_account)
    headers = {"Authorization": fuzz_account.headers["Authorization"], "X-Callnfy-Key": fuzz_account.api_key}
    excluded = [schemathesis.checks.positive_data_acceptance] if breaks_a_rule_between_fields(case) else []
    response = case.call_and_validate(session=fuzz_app.test_client(), headers=headers,
                                      additional_checks=[pagination_header], excluded_checks=excluded)
    SEEN[(case.method.upper(), case.path)].add(str(response.status_code))


def shows_status(node_id: str, key: tuple[str, str, str]) -> bool:
    """Whether the named test exists and declares, with `@pytest.mark.shows_status`, that it shows `key`."""
    path, name = node_id.split("::")
    test = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name, None)
    return any(mark.name == "shows_status" and key in mark.args for mark in getattr(test, "pytestmark", []))


def test_every_documented_status_code_is_real(fuzz_app):
    """Run after the fuzzing (same module, later): each documented status was answered to it, or is
    shown by the named test, which declares it with `@pytest.mark.shows_status`. A documented status
    nothing produces is a lie. Every operation must have been fuzzed in this run: a selection that
    left some out is refused by name rather than judged on part of the evidence."""
    document = fuzz_app.test_client().get("/openapi.json").json
    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in item
                  if method != "parameters"}
    unfuzzed = sorted(operations - set(SEEN))
    assert not unfuzzed, f"not fuzzed in this run (select the whole module): {unfuzzed}"
    unshown = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status in operation["responses"]:
                key = (method.upper(), path, status)
                if status == "default" or status in SEEN[key[:2]]:
                    continue
                if key in ELSEWHERE:
                    assert shows_status(ELSEWHERE[key], key), f"{ELSEWHERE[key]} does not declare {key}"
                    continue
                unshown.append(key)
    assert unshown == [], f"documented but never answered: {unshown}"
