"""The queue dashboard at /admin/rq: rq-dashboard on rq 3 with a job in every registry, basic auth,
its actions refused unless they come from its own origin, and an operator using it in Chromium."""

import base64
import os
import signal
from datetime import timedelta
from types import SimpleNamespace

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from rq.job import Job
from rq.registry import FailedJobRegistry

from callnfy_integrations import create_app
from callnfy_integrations.queues import CALENDAR, DEFAULT, enqueue, enqueue_in, get_queue, redis_connection
from callnfy_integrations.worker import build_worker
from tests.browser import chromium
from tests.loopback import PageHandler, serve_wsgi, start
from tests.support import run_flask, wait_for

OPERATOR = ("operator", "correct horse battery staple")
OWN_ORIGIN = "http://localhost"  # the test client's scheme and host
REGISTRIES = ("queued", "started", "finished", "failed", "deferred", "scheduled", "canceled")


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


AUTH = basic(*OPERATOR)


@pytest.fixture(scope="module")
def dashboard_app(config, app):
    return create_app({**config, "ADMIN_USERNAME": OPERATOR[0], "ADMIN_PASSWORD": OPERATOR[1]})


@pytest.fixture
def dashboard(dashboard_app):
    return dashboard_app.test_client()


def fail_a_job(application, func: str = "operator.truediv", *args) -> Job:
    """A job that raises (1 / 0 by default), run to failure by a real worker."""
    with application.app_context():
        job = enqueue(func, *(args or (1, 0)), queue=DEFAULT)
        build_worker(application, (DEFAULT,)).work(burst=True)
        assert job.get_status() == "failed"
        return job


@pytest.fixture
def every_registry(dashboard_app, process_env):
    """One job in each registry: failed and finished by a burst worker, then queued, deferred (on the
    queued one), scheduled, canceled, and started (a worker process busy with it)."""
    jobs = {"failed": fail_a_job(dashboard_app)}
    with dashboard_app.app_context():
        jobs["finished"] = enqueue("operator.add", 1, 2, queue=DEFAULT)
        build_worker(dashboard_app, (DEFAULT,)).work(burst=True)
        jobs["queued"] = enqueue("operator.add", 3, 4, queue=DEFAULT)
        jobs["deferred"] = enqueue("operator.add", 5, 6, queue=DEFAULT, depends_on=jobs["queued"])
        jobs["scheduled"] = enqueue_in(timedelta(hours=1), "operator.add", 7, 8, queue=DEFAULT)
        jobs["canceled"] = enqueue("operator.add", 9, 10, queue=DEFAULT)
        jobs["canceled"].cancel()
        jobs["started"] = enqueue("time.sleep", 120, queue=CALENDAR)
    # Its own process group: the worker forks RQ's scheduler, which must go down with it.
    worker = run_flask(process_env, "worker", "--queue", CALENDAR, start_new_session=True)
    try:
        with dashboard_app.app_context():
            calendar = get_queue(CALENDAR)
            wait_for(lambda: calendar.started_job_registry.get_job_count(cleanup=False) == 1, timeout=30)
        yield jobs
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the job sleeps for minutes: no graceful stop
        worker.communicate(timeout=10)


# --- rq-dashboard on rq 3 -----------------------------------------------------------------------------

@pytest.mark.processes
def test_every_dashboard_page_renders_with_a_job_in_every_registry(dashboard, every_registry):
    jobs = every_registry
    where = {name: (CALENDAR if name == "started" else DEFAULT) for name in REGISTRIES}
    pages = ["/admin/rq/", "/admin/rq/0/view/queues", "/admin/rq/0/view/workers", "/admin/rq/0/view/jobs"]
    for queue in (DEFAULT, CALENDAR):
        for registry in REGISTRIES:
            pages.append(f"/admin/rq/0/view/jobs/{queue}/{registry}/8/asc/1")
    for job in jobs.values():
        pages.append(f"/admin/rq/0/view/job/{job.id}")
    for page in pages:
        response = dashboard.get(page, headers=AUTH, follow_redirects=True)
        assert (response.status_code, response.mimetype) == (200, "text/html"), page
        assert "<title>RQ dashboard</title>" in response.get_data(as_text=True), page

    for registry in REGISTRIES:
        for order in ("asc", "dsc"):
            listing = dashboard.get(f"/admin/rq/0/data/jobs/{where[registry]}/{registry}/8/{order}/1.json",
                                    headers=AUTH)
            assert listing.status_code == 200, (registry, listing.get_data(as_text=True))
            assert [job["id"] for job in listing.json["jobs"]] == [jobs[registry].id], registry

    queues = dashboard.get("/admin/rq/0/data/queues.json", headers=AUTH).json["queues"]
    counts = {q["name"]: (q["count"], q["deferred_job_registry_count"], q["scheduled_job_registry_count"],
                          q["started_job_registry_count"], q["finished_job_registry_count"],
                          q["failed_job_registry_count"], q["canceled_job_registry_count"]) for q in queues}
    assert counts == {DEFAULT: (1, 1, 1, 0, 1, 1, 1), CALENDAR: (0, 0, 0, 1, 0, 0, 0)}

    for registry, job in jobs.items():
        info = dashboard.get(f"/admin/rq/0/data/job/{job.id}.json", headers=AUTH)
        assert info.status_code == 200, (registry, info.get_data(as_text=True))
        assert info.json["status"] == registry
    deferred = dashboard.get(f"/admin/rq/0/data/job/{jobs['deferred'].id}.json", headers=AUTH).json
    assert (deferred["depends_on"], deferred["depends_on_status"]) == ([jobs["queued"].id], ["active"])
    assert "ZeroDivisionError" in dashboard.get(f"/admin/rq/0/data/job/{jobs['failed'].id}.json",
                                                headers=AUTH).json["exc_info"]

    [worker] = dashboard.get("/admin/rq/0/data/workers.json", headers=AUTH).json["workers"]
    assert (worker["state"], worker["queues"], worker["current_job"]["job_id"]) == (
        "busy", [CALENDAR], jobs["started"].id)


def test_job_page_data_is_html_escaped(dashboard, dashboard_app):
    """The job page inserts these strings as HTML; a third party's text in an exception must stay text."""
    markup = "<img src=x onerror=alert(1)>"
    job = fail_a_job(dashboard_app, "builtins.int", markup)
    info = dashboard.get(f"/admin/rq/0/data/job/{job.id}.json", headers=AUTH).json
    assert markup not in info["exc_info"] and "&lt;img src=x onerror=alert(1)&gt;" in info["exc_info"]
    assert markup not in info["description"]


# --- authentication -----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/admin/rq", "/admin/rq/", "/admin/rq/0/data/queues.json",
                                  "/admin/rq/static/js/jquery-3.5.1.min.js", "/admin/rq/no-such-page"])
def test_dashboard_is_the_404_envelope_when_credentials_are_unset(client, path):
    unknown = client.get("/no-such-page")
    assert unknown.status_code == 404
    for response in (client.get(path), client.get(path, headers=AUTH),
                     client.post(path, headers={**AUTH, "Origin": OWN_ORIGIN})):
        assert (response.status_code, response.json) == (404, unknown.json)


@pytest.mark.parametrize("missing", ["ADMIN_USERNAME", "ADMIN_PASSWORD"])
def test_dashboard_is_the_404_envelope_when_either_credential_is_unset(config, app, missing):
    settings = {**config, "ADMIN_USERNAME": OPERATOR[0], "ADMIN_PASSWORD": OPERATOR[1], missing: None}
    response = create_app(settings).test_client().get("/admin/rq/", headers=AUTH)
    assert (response.status_code, response.json["error"]["code"]) == (404, "NOT_FOUND")


@pytest.mark.parametrize("headers", [
    {},
    basic(OPERATOR[0], "wrong"),
    basic("someone", OPERATOR[1]),
    basic(OPERATOR[0], OPERATOR[1] + "x"),
    basic(OPERATOR[0], "pässwörd"),  # non-ASCII: compared as bytes, still just wrong
    {"Authorization": "Bearer " + OPERATOR[1]},
    {"Authorization": "Basic not-base64!"},
])
def test_dashboard_without_the_right_credentials_is_401(dashboard, headers):
    for path in ("/admin/rq/", "/admin/rq/0/data/queues.json", "/admin/rq/static/js/jquery-3.5.1.min.js"):
        response = dashboard.get(path, headers=headers)
        assert response.status_code == 401, path
        assert response.json["error"]["code"] == "UNAUTHORIZED"
        assert response.headers["WWW-Authenticate"].startswith('Basic realm="Callnfy queue dashboard"')


@pytest.fixture(scope="module")
def guarded_app(config, app):
    return create_app({**config, "ADMIN_USERNAME": OPERATOR[0], "ADMIN_PASSWORD": OPERATOR[1],
                       "ADMIN_AUTH_FAILURE_LIMIT": "3 per minute"})


def test_guessing_the_password_is_stopped_per_address_even_for_the_right_one(guarded_app):
    dashboard, attacker = guarded_app.test_client(), {"REMOTE_ADDR": "203.0.113.9"}
    statuses = [dashboard.get("/admin/rq/", headers=basic(OPERATOR[0], f"guess-{i}"), environ_base=attacker).status_code
                for i in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    # Refused before the check: a later right guess looks like every wrong one.
    limited = dashboard.get("/admin/rq/", headers=AUTH, environ_base=attacker)
    assert (limited.status_code, limited.json["error"]["code"]) == (429, "TOO_MANY_REQUESTS")
    assert 1 <= int(limited.headers["Retry-After"]) <= 61
    # The operator, from another address, is not locked out.
    operator = dashboard.get("/admin/rq/", headers=AUTH, environ_base={"REMOTE_ADDR": "198.51.100.20"})
    assert operator.status_code == 200


def test_a_browsers_bare_first_request_is_not_a_guess(guarded_app):
    dashboard = guarded_app.test_client()
    assert [dashboard.get("/admin/rq/").status_code for _ in range(5)] == [401] * 5  # no credentials sent
    assert dashboard.get("/admin/rq/", headers=AUTH).status_code == 200


def test_dashboard_with_the_right_credentials_is_200(dashboard):
    page = dashboard.get("/admin/rq/", headers=AUTH)
    assert (page.status_code, page.mimetype) == (200, "text/html")
    assert "<h1>Queues</h1>" in page.get_data(as_text=True)
    # Never framed: clicks in a framed dashboard would be same-origin, past the origin check.
    assert page.headers["X-Frame-Options"] == "DENY"
    assert dashboard.get("/admin/rq/static/js/jquery-3.5.1.min.js", headers=AUTH).status_code == 200
    assert dashboard.get("/admin/rq/0/data/queues.json", headers=AUTH).json == {"queues": []}


# --- CSRF ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "https://app.callnfy.test"},  # FRONTEND_URL: trusted by CORS, not by the dashboard
    {"Origin": "null"},
    {"Origin": "http://localhost:8080"},  # another port
    {"Origin": "https://localhost"},  # another scheme
    {"Referer": "https://evil.example/page"},
    {"Origin": "https://evil.example", "Referer": OWN_ORIGIN + "/admin/rq/"},  # Origin decides when present
    {},  # neither header: refused
])
def test_cross_origin_actions_are_refused_and_change_nothing(dashboard, dashboard_app, headers):
    failed = fail_a_job(dashboard_app)
    with dashboard_app.app_context():
        queued = enqueue("operator.add", 1, 1, queue=DEFAULT)
    actions = [f"/admin/rq/queue/{DEFAULT}/queued/empty", f"/admin/rq/queue/{DEFAULT}/failed/empty",
               f"/admin/rq/job/{failed.id}/delete", f"/admin/rq/job/{failed.id}/requeue",
               f"/admin/rq/requeue/{DEFAULT}", f"/admin/rq/queue/{DEFAULT}/compact"]
    for action in actions:
        response = dashboard.post(action, headers={**AUTH, **headers})
        assert response.status_code == 403, action
        assert response.json["error"]["code"] == "FORBIDDEN"
    with dashboard_app.app_context():
        assert get_queue(DEFAULT).get_job_ids() == [queued.id]
        assert FailedJobRegistry(DEFAULT, connection=redis_connection()).get_job_ids() == [failed.id]
        assert failed.get_status() == "failed"


def test_requeue_all_by_get_is_an_action_too(dashboard, dashboard_app):
    """rq-dashboard answers GET on requeue-all: an <img src> on another site must not trigger it."""
    failed = fail_a_job(dashboard_app)
    for headers in ({}, {"Referer": "https://evil.example/"}):
        assert dashboard.get(f"/admin/rq/requeue/{DEFAULT}", headers={**AUTH, **headers}).status_code == 403
    with dashboard_app.app_context():
        assert failed.get_status() == "failed"


def test_another_origin_cannot_read_the_dashboard(dashboard):
    """App-wide CORS answers FRONTEND_URL with credentials allowed; the dashboard refuses it anyway."""
    response = dashboard.get("/admin/rq/0/data/queues.json",
                             headers={**AUTH, "Origin": "https://app.callnfy.test"})
    assert (response.status_code, response.json["error"]["code"]) == (403, "FORBIDDEN")


def test_actions_from_the_dashboards_own_origin_work(dashboard, dashboard_app):
    failed = fail_a_job(dashboard_app)
    with dashboard_app.app_context():
        enqueue("operator.add", 1, 1, queue=DEFAULT)
    own = {**AUTH, "Origin": OWN_ORIGIN}
    emptied = dashboard.post(f"/admin/rq/queue/{DEFAULT}/queued/empty", headers=own)
    assert (emptied.status_code, emptied.json) == (200, {"status": "OK"})
    requeued = dashboard.post(f"/admin/rq/job/{failed.id}/requeue", headers=own)
    assert (requeued.status_code, requeued.json) == (200, {"status": "OK"})
    with dashboard_app.app_context():
        assert get_queue(DEFAULT).get_job_ids() == [failed.id]
    # Without Origin, a Referer on the dashboard's own origin is accepted.
    deleted = dashboard.post(f"/admin/rq/job/{failed.id}/delete",
                             headers={**AUTH, "Referer": f"{OWN_ORIGIN}/admin/rq/0/view/job/{failed.id}"})
    assert (deleted.status_code, deleted.json) == (200, {"status": "OK"})
    with dashboard_app.app_context():
        assert not Job.exists(failed.id, connection=redis_connection())


# --- an operator in a real browser --------------------------------------------------------------------

class OtherSite(PageHandler):
    """A page on another origin that posts a form to the dashboard as soon as it loads."""

    target = ""

    def page(self, path: str) -> bytes:
        return (f"<!doctype html><title>Win a prize</title><form method=post action='{self.target}'>"
                "</form><script>document.forms[0].submit()</script>").encode()


@pytest.fixture
def served_dashboard(dashboard_app):
    server = serve_wsgi(dashboard_app)
    yield SimpleNamespace(url=server.url)
    server.shutdown()


@pytest.mark.browser
def test_operator_sees_queues_and_a_failed_job_in_chromium(served_dashboard, dashboard_app, tmp_path):
    failed = fail_a_job(dashboard_app)
    base = served_dashboard.url
    with chromium() as browser:
        context = browser.new_context(http_credentials={"username": OPERATOR[0], "password": OPERATOR[1]})
        page = context.new_page()
        problems: list[str] = []  # script errors, CSP refusals, failed requests
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda message: problems.append(message.text)
                if "Content Security Policy" in message.text else None)
        # 401: the challenge before the browser sends its credentials. The favicon: rq-dashboard links the
        # host app's /static/favicon.ico, which this service does not have.
        page.on("response", lambda response: problems.append(f"{response.status} {response.url}")
                if response.status >= 400 and response.status != 401
                and not response.url.endswith("/static/favicon.ico") else None)
        assert page.goto(f"{base}/admin/rq/").status == 200

        row = page.locator("tr[data-role=queue]", has_text=DEFAULT)
        try:
            row.wait_for(timeout=10_000)  # rendered by the dashboard's scripts from queues.json
        except PlaywrightTimeoutError:
            pytest.fail(f"the queues table never rendered: {problems}")
        assert row.locator("td.failed a").first.inner_text().strip() == "1", problems
        page.screenshot(path=str(tmp_path / "queues.png"), full_page=True)
        row.locator("td.failed a").first.click()  # the failed registry of the default queue
        page.locator(f"a[href$='/view/job/{failed.id}']").click()
        page.locator("pre.exc_info", has_text="ZeroDivisionError").wait_for(timeout=10_000)
        assert page.locator("#job-data").inner_text().count("operator.truediv(1, 0)") == 1
        page.screenshot(path=str(tmp_path / "failed-job.png"), full_page=True)

        page.locator("#requeue-job-btn").click()  # the dashboard's own action: same origin, accepted
        with dashboard_app.app_context():
            wait_for(lambda: failed.get_status() == "queued", timeout=10)
        assert problems == []


@pytest.mark.browser
def test_a_form_on_another_site_cannot_act_on_the_dashboard(served_dashboard, dashboard_app):
    """The operator is logged in (credentials in the browser) and visits another site, whose page posts
    a form to the dashboard: the browser sends the credentials, the origin check refuses the action."""
    failed = fail_a_job(dashboard_app)
    OtherSite.target = f"{served_dashboard.url}/admin/rq/queue/{DEFAULT}/failed/empty"
    other = start(OtherSite)
    try:
        with chromium() as browser:
            context = browser.new_context(http_credentials={"username": OPERATOR[0], "password": OPERATOR[1]})
            page = context.new_page()
            with page.expect_response(lambda r: r.url == OtherSite.target and r.status != 401) as answer:
                page.goto(f"http://localhost:{other.server_address[1]}/prize")
            assert answer.value.status == 403
            assert answer.value.json()["error"]["code"] == "FORBIDDEN"
    finally:
        other.shutdown()
    with dashboard_app.app_context():
        assert failed.get_status() == "failed"
        assert FailedJobRegistry(DEFAULT, connection=redis_connection()).get_job_ids() == [failed.id]
