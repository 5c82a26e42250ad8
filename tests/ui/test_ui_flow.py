"""The dashboard's operator controls in headless Chromium: bulk actions on a filter, pause
and resume, the key filter, the queue's limits, and what a client-role token may do.

Each test saves screenshots of the pages it visits under its temporary directory. Tests
that change the worker's queue confine themselves to jobs with keys of their own (bulk
actions take a key prefix) or undo what they did (pause).
"""

import pathlib
import re
import time
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from ui_helpers import ADMIN, CLIENT, QUEUE, Service, enqueue, shot, sign_in, wait_status

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ui"), pytest.mark.timeout(120)]
PAUSE_HOLDS_S = 1.5  # a paused queue's job stays queued this long (several lease rounds)


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test's jobs carry."""
    return f"t-{uuid.uuid4().hex[:8]}-"


@pytest.fixture
def resumed(service: Service) -> Iterator[None]:
    """The worker's queue is running again after the test, whatever happened in it."""
    yield
    response = service.rest.post(f"/v1/queues/{QUEUE}/resume")
    assert response.status_code == 200, response.text


def test_bulk_retry_reruns_the_failed_jobs_of_a_filter(
    service: Service, page: Page, tmp_path: pathlib.Path, prefix: str
) -> None:
    ours = [
        enqueue(service, "flaky", key=f"{prefix}{i}", kwargs={"marker": str(tmp_path / str(i))})
        for i in range(3)
    ]
    other = enqueue(service, "boom", key=f"x{prefix}", kwargs={"why": "outside the filter"})
    for job in [*ours, other]:
        wait_status(service, job["id"], "failed")
    sign_in(page, f"{service.url}/ui/queues/{QUEUE}?status=failed", ADMIN)
    page.fill("#filter-key", prefix)  # the key filter, through the form
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(rf"status=failed&key_prefix={prefix}"))
    rows = page.locator("#jobs tbody tr[data-job]")
    expect(rows).to_have_count(3)
    assert set(rows.evaluate_all("rows => rows.map(r => r.dataset.job)")) == {j["id"] for j in ours}
    shot(page, tmp_path, "queue-filtered")

    page.click("#bulk-retry")
    confirm = page.locator("#confirm-text")
    expect(confirm).to_contain_text(f'status failed, a key starting with "{prefix}"')
    shot(page, tmp_path, "bulk-confirm")
    page.click("#confirm-ok")
    expect(page.locator("#bulk-result")).to_have_text("Retried 3 jobs.")
    for job in ours:
        again = wait_status(service, job["id"], "complete")
        assert again["attempts"] == 2 and again["result"] == "second time lucky"
    expect(rows).to_have_count(0)  # the page refreshed: no failed job of the filter is left
    unchanged = service.rest.get(f"/v1/jobs/{other['id']}").json()
    assert unchanged["status"] == "failed" and unchanged["attempts"] == 1
    shot(page, tmp_path, "queue-retried")


def test_bulk_delete_asks_first_and_removes_the_jobs_of_a_filter(
    service: Service, page: Page, tmp_path: pathlib.Path, prefix: str
) -> None:
    later = time.time() + 3600
    jobs = [enqueue(service, "sleepy", key=f"{prefix}{i}", scheduled=later) for i in range(2)]
    sign_in(page, f"{service.url}/ui/queues/{QUEUE}?key_prefix={prefix}", ADMIN)
    rows = page.locator("#jobs tbody tr[data-job]")
    expect(rows).to_have_count(2)
    page.click("#bulk-delete")
    page.click("#confirm-cancel")  # nothing happens without confirmation
    expect(page.locator("#confirm")).not_to_be_visible()
    assert service.rest.get(f"/v1/jobs/{jobs[0]['id']}").status_code == 200
    page.click("#bulk-delete")
    page.click("#confirm-ok")
    expect(page.locator("#bulk-result")).to_have_text("Deleted 2 jobs.")
    expect(rows).to_have_count(0)
    for job in jobs:
        assert service.rest.get(f"/v1/jobs/{job['id']}").status_code == 404


def test_pause_stops_a_queue_and_resume_runs_its_jobs(
    service: Service, page: Page, tmp_path: pathlib.Path, resumed: None
) -> None:
    sign_in(page, f"{service.url}/ui", ADMIN)
    row = page.locator(f'tr[data-queue="{QUEUE}"]')
    expect(row.locator('[data-field="paused"]')).to_have_text("running")
    row.locator('button[data-action="pause"]').click()
    expect(page.locator("#confirm-text")).to_contain_text(f"Pause queue {QUEUE}?")
    page.click("#confirm-ok")
    expect(row.locator('[data-field="paused"]')).to_have_text("paused")
    assert service.rest.get(f"/v1/queues/{QUEUE}").json()["paused"] is True
    shot(page, tmp_path, "overview-paused")

    job = enqueue(service, "sleepy", kwargs={"seconds": 0})
    time.sleep(PAUSE_HOLDS_S)  # the worker keeps asking for jobs; none is handed out
    assert service.rest.get(f"/v1/jobs/{job['id']}").json()["status"] == "queued"
    row.get_by_role("link", name=QUEUE, exact=True).click()
    state = page.locator('#flow [data-field="paused"]')
    expect(state).to_have_text("paused")
    shot(page, tmp_path, "queue-paused")
    page.click('#flow button[data-action="resume"]')
    page.click("#confirm-ok")
    expect(state).to_have_text("running")
    assert wait_status(service, job["id"], "complete")["result"] == "rested"


def test_queue_page_shows_its_limits(service: Service, page: Page, tmp_path: pathlib.Path) -> None:
    queue = f"limited-{uuid.uuid4().hex[:6]}"  # not the worker's queue: limits would slow it
    settings = {
        "max_active": 5,
        "rate_per_key": {"limit": 10, "period_s": 1},
        "functions": {"report": {"max_active": 2, "rate": {"limit": 50, "period_s": 60}}},
    }
    response = service.rest.put(f"/v1/queues/{queue}/settings", json=settings)
    assert response.status_code == 200, response.text
    sign_in(page, f"{service.url}/ui/queues/{queue}", ADMIN)
    limits = page.locator("#limits dd")
    expect(page.locator('#limits dd[data-limit="Queue"]')).to_have_text("at most 5 active")
    expect(page.locator('#limits dd[data-limit="Each concurrency key"]')).to_have_text(
        "at most 10 started per second"
    )
    expect(page.locator('#limits dd[data-limit="Function report"]')).to_have_text(
        "at most 2 active; at most 50 started per 60 s"
    )
    expect(limits).to_have_count(3)
    shot(page, tmp_path, "queue-limits")
    page.goto(f"{service.url}/ui/queues/{QUEUE}")  # the worker's queue has none
    expect(page.locator('#limits dd[data-limit="Limits"]')).to_contain_text("none")


def test_client_token_sees_no_pause_or_bulk_delete_and_forged_ones_get_403(
    service: Service, page: Page, tmp_path: pathlib.Path, prefix: str
) -> None:
    job = enqueue(service, "sleepy", key=f"{prefix}0", scheduled=time.time() + 3600)
    sign_in(page, f"{service.url}/ui/queues/{QUEUE}", CLIENT)
    expect(page.locator("#role")).to_have_text("role: client")
    expect(page.locator("#bulk-retry")).to_be_visible()  # retry and abort: the client's rights
    expect(page.locator("#bulk-abort")).to_be_visible()
    expect(page.locator("#bulk-delete")).to_have_count(0)
    expect(page.locator('#flow [data-field="paused"]')).to_have_text("running")
    expect(page.locator(".pause-control button")).to_have_count(0)
    shot(page, tmp_path, "queue-client")
    forged = """async ([path, body]) => (await fetch(path, {method: "POST", headers: {
        authorization: `Bearer ${sessionStorage.getItem("jobwire.token")}`,
        "content-type": "application/json"}, body: JSON.stringify(body)})).status"""
    assert page.evaluate(forged, [f"/v1/queues/{QUEUE}/pause", {}]) == 403
    assert page.evaluate(forged, [f"/v1/queues/{QUEUE}/jobs/delete", {"key_prefix": prefix}]) == 403
    assert service.rest.get(f"/v1/queues/{QUEUE}").json()["paused"] is False
    assert service.rest.get(f"/v1/jobs/{job['id']}").json()["status"] == "scheduled"
    page.goto(f"{service.url}/ui")  # the overview shows the state, no button
    expect(page.locator(f'tr[data-queue="{QUEUE}"] [data-field="paused"]')).to_have_text("running")
    expect(page.locator(f'tr[data-queue="{QUEUE}"] button')).to_have_count(0)
    assert CLIENT not in page.content()
