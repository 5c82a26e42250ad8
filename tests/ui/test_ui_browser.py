"""The dashboard in headless Chromium against a real service and worker.

Each test saves screenshots of the pages it visits under its temporary directory.
"""

import itertools
import pathlib
import re
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from ui_helpers import ADMIN, CLIENT, QUEUE, Service, enqueue, shot, sign_in, wait_status

from jobwire.server.ui import STATIC

# One service, worker and browser for the module; a loaded machine slows a browser most.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ui"), pytest.mark.timeout(120)]


def count_cell(page: Page, status: str) -> Any:
    """The overview's cell counting ``status`` jobs of the worker's queue."""
    return page.locator(f'tr[data-queue="{QUEUE}"] td[data-count="{status}"]')


def test_overview_counts_change_as_jobs_run(
    service: Service, page: Page, tmp_path: pathlib.Path
) -> None:
    polls: list[float] = []
    page.on(
        "request",
        lambda r: polls.append(time.monotonic()) if r.url.endswith("/v1/queues") else None,
    )
    sign_in(page, f"{service.url}/ui", ADMIN)
    before = service.rest.get(f"/v1/queues/{QUEUE}").json()["counts"]
    gate = tmp_path / "gate"
    jobs = [enqueue(service, "gated", kwargs={"gate": str(gate)}) for _ in range(3)]
    expect(count_cell(page, "active")).to_have_text(str(before["active"] + 3))
    expect(page.locator(f'tr[data-queue="{QUEUE}"] td[data-field="workers"]')).to_have_text("1")
    shot(page, tmp_path, "overview-running")
    gate.touch()
    for job in jobs:
        wait_status(service, job["id"], "complete")
    expect(count_cell(page, "complete")).to_have_text(str(before["complete"] + 3))
    expect(count_cell(page, "active")).to_have_text(str(before["active"]))
    shot(page, tmp_path, "overview")
    assert len(polls) >= 2
    assert min(b - a for a, b in itertools.pairwise(polls)) >= 1.0  # never faster than 1/s


def test_failed_job_page_shows_its_traceback(
    service: Service, page: Page, tmp_path: pathlib.Path
) -> None:
    job = enqueue(service, "boom", kwargs={"why": "bad input"})
    wait_status(service, job["id"], "failed")
    sign_in(page, f"{service.url}/ui/jobs/{job['id']}", ADMIN)
    expect(page.locator("#status")).to_have_text("failed")
    traceback = page.locator("#traceback")
    expect(traceback).to_contain_text("ValueError: kaboom: bad input")
    expect(traceback).to_contain_text("in boom")
    expect(page.locator("#kwargs")).to_contain_text('"why": "bad input"')
    labels = page.locator("#timeline li b")
    expect(labels).to_have_text(["created", "queued", "started", "finished", "last change"])
    expect(page.locator("#curl")).to_have_text(
        re.compile(r"^curl -s -H \"Authorization: Bearer \$JOBWIRE_TOKEN\" 'http://.*/v1/jobs/")
    )
    assert ADMIN not in page.content()  # the token is never rendered into the page
    shot(page, tmp_path, "job-failed")


def test_abort_from_the_ui_stops_a_running_job(
    service: Service, page: Page, tmp_path: pathlib.Path
) -> None:
    job = enqueue(service, "slow", kwargs={"steps": 600})
    wait_status(service, job["id"], "active")
    sign_in(page, f"{service.url}/ui/jobs/{job['id']}", ADMIN)
    expect(page.locator("#status")).to_have_text("active")
    expect(page.locator("#meta")).to_contain_text('"step"')  # live: progress arrives over SSE
    shot(page, tmp_path, "job-running")
    page.click("#abort")
    expect(page.locator("#confirm")).to_be_visible()
    page.click("#confirm-ok")
    expect(page.locator("#status")).to_have_text("aborted", timeout=20_000)
    stopped = wait_status(service, job["id"], "aborted")
    assert stopped["error"]["message"] == "aborted from the dashboard"
    step = stopped["meta"]["step"]
    time.sleep(0.5)  # a task still running would keep reporting steps
    assert service.rest.get(f"/v1/jobs/{job['id']}").json()["meta"]["step"] == step < 600
    shot(page, tmp_path, "job-aborted")


def test_retry_from_the_ui_runs_a_failed_job_again(
    service: Service, page: Page, tmp_path: pathlib.Path
) -> None:
    job = enqueue(service, "flaky", kwargs={"marker": str(tmp_path / "tried")})
    wait_status(service, job["id"], "failed")
    sign_in(page, f"{service.url}/ui/jobs/{job['id']}", ADMIN)
    expect(page.locator("#status")).to_have_text("failed")
    page.click("#retry")
    page.click("#confirm-ok")
    expect(page.locator("#status")).to_have_text("complete")
    expect(page.locator("#result")).to_have_text('"second time lucky"')
    shot(page, tmp_path, "job-retried")


def test_queue_page_filters_and_pages_server_side(
    service: Service, page: Page, tmp_path: pathlib.Path
) -> None:
    failed = enqueue(service, "boom", kwargs={"why": "for the filter"})
    wait_status(service, failed["id"], "failed")
    later = time.time() + 3600
    response = service.rest.post(
        f"/v1/queues/{QUEUE}/jobs/batch",
        json={"jobs": [{"function": "sleepy", "scheduled": later} for _ in range(25)]},
    )
    assert response.status_code == 200, response.text
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url) if "/jobs?" in r.url else None)
    sign_in(page, f"{service.url}/ui/queues/{QUEUE}?status=scheduled&limit=10", ADMIN)
    rows = page.locator("#jobs tbody tr[data-job]")
    expect(rows).to_have_count(10)
    first = set(rows.evaluate_all("rows => rows.map(r => r.dataset.job)"))
    page.click("#next")
    expect(page).to_have_url(re.compile(r"cursor=10"))
    expect(rows.first).not_to_have_attribute("data-job", re.compile("|".join(first)))
    second = set(rows.evaluate_all("rows => rows.map(r => r.dataset.job)"))
    assert len(second) == 10 and not first & second
    page.click("#next")
    expect(rows).to_have_count(5)
    expect(page.locator("#next")).to_have_count(0)
    assert all("limit=10" in url for url in requested)  # one page at a time, from the server
    # the workers attached, and a filter by status through the form
    expect(page.locator("#workers tbody tr[data-worker]")).to_have_count(1)
    expect(page.locator("#workers tbody tr[data-worker] td").nth(5)).to_have_text("http")
    page.select_option("#filter-status", "failed")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"status=failed"))
    other = page.locator('#jobs tbody tr[data-job] .status:not([data-status="failed"])')
    expect(other).to_have_count(0)  # the filtered page has replaced the scheduled jobs
    expect(rows.first).to_be_visible()
    expect(page.locator('#counts a[data-count="scheduled"]')).to_have_text("scheduled: 25")
    statuses = page.locator("#jobs tbody tr[data-job] .status")
    assert set(statuses.all_text_contents()) == {"failed"}
    shot(page, tmp_path, "queue")


def test_client_token_sees_no_delete_and_a_forged_delete_gets_403(
    service: Service, page: Page, tmp_path: pathlib.Path
) -> None:
    job = enqueue(service, "boom", kwargs={"why": "for the client"})
    wait_status(service, job["id"], "failed")
    sign_in(page, f"{service.url}/ui/jobs/{job['id']}", CLIENT)
    expect(page.locator("#role")).to_have_text("role: client")
    expect(page.locator("#retry")).to_be_visible()
    expect(page.locator("#delete")).to_have_count(0)
    status = page.evaluate(
        """async (id) => (await fetch(`/v1/jobs/${id}`, {method: "DELETE", headers:
            {authorization: `Bearer ${sessionStorage.getItem("jobwire.token")}`}})).status""",
        job["id"],
    )
    assert status == 403
    assert service.rest.get(f"/v1/jobs/{job['id']}").json()["status"] == "failed"
    assert CLIENT not in page.content()
    shot(page, tmp_path, "job-client")


def test_sign_in_is_asked_for_and_a_bad_token_refused(service: Service, page: Page) -> None:
    page.goto(service.url)  # / redirects to /ui
    expect(page).to_have_url(f"{service.url}/ui")
    page.fill("#token", "not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("form.login .error")).to_have_text("unknown token")
    page.fill("#token", ADMIN)
    page.keyboard.press("Enter")
    expect(page.locator(f'tr[data-queue="{QUEUE}"]')).to_be_visible()
    page.click("#signout")
    expect(page.locator("#token")).to_be_visible()


def test_without_tokens_on_loopback_it_opens_directly_and_fits_a_phone(
    open_url: str, browser: Browser, tmp_path: pathlib.Path
) -> None:
    url = open_url
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        response = httpx.post(f"{url}/v1/queues/phone/jobs", json={"function": "nothing"})
        assert response.status_code == 201, response.text
        page = context.new_page()
        page.goto(f"{url}/ui")
        expect(page.locator("#role")).to_have_text("role: admin")
        expect(page.locator("#signout")).to_have_count(0)
        expect(page.locator('tr[data-queue="phone"] td[data-count="queued"]')).to_have_text("1")
        expect(page.locator('tr[data-queue="phone"] td[data-field="oldest"]')).not_to_have_text("—")
        # the page itself does not scroll sideways at a phone's width (wide tables scroll
        # inside their card)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shot(page, tmp_path, "overview-phone")
        page.keyboard.press("Tab")  # skip link, then the brand, then the queue
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        expect(page).to_have_url(f"{url}/ui/queues/phone")
        expect(page.locator("#jobs tbody tr[data-job]")).to_have_count(1)
        shot(page, tmp_path, "queue-phone")
    finally:
        context.close()


def test_pages_are_static_and_carry_no_data(service: Service) -> None:
    root = httpx.get(service.url, follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/ui"
    shell = httpx.get(f"{service.url}/ui").text
    for path in ("/ui", f"/ui/queues/{QUEUE}", "/ui/jobs/some-id"):
        page = httpx.get(service.url + path, headers={"authorization": f"Bearer {ADMIN}"})
        assert page.status_code == 200
        assert page.text == shell  # the same shell whoever asks: no data, no token
        assert ADMIN not in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
    modules = [p.name for p in STATIC.iterdir() if p.name.endswith(".js")]
    assert "app.js" in modules
    for name in modules:  # the script and the modules it imports
        script = httpx.get(f"{service.url}/ui/static/{name}")
        assert script.headers["content-type"].startswith("text/javascript")
        assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", script.text)
    assert httpx.get(f"{service.url}/ui/static/missing.js").status_code == 404


def test_whoami_answers_the_role_with_the_same_checks_as_rest(service: Service) -> None:
    assert httpx.get(f"{service.url}/v1/whoami").status_code == 401
    wrong = httpx.get(f"{service.url}/v1/whoami", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    client = httpx.get(f"{service.url}/v1/whoami", headers={"authorization": f"Bearer {CLIENT}"})
    assert client.json() == {
        "role": "client",
        "permissions": ["control", "enqueue", "read"],
        "auth": True,
    }
    assert "delete" in service.rest.get("/v1/whoami").json()["permissions"]
