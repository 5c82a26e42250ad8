"""Shared by the dashboard's tests: tokens, the service under test, jobs, signing in,
screenshots."""

import pathlib
import time
from typing import Any

import httpx
from playwright.sync_api import Page, expect

ADMIN, CLIENT, WORKER = "ui-admin-secret", "ui-client-secret", "ui-worker-secret"
TOKENS = f"{ADMIN}:admin,{CLIENT}:client,{WORKER}:worker"
QUEUE = "ui"  # the worker's queue


class Service:
    """The service under test: its URL and an admin REST client."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.rest = httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {ADMIN}"}, timeout=30
        )


def sign_in(page: Page, url: str, token: str) -> None:
    """Open the dashboard at ``url`` and sign in with ``token``."""
    page.goto(url)
    page.fill("#token", token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#role")).to_be_visible()


def enqueue(service: Service, function: str, **options: Any) -> dict[str, Any]:
    """Enqueue one job on the worker's queue through REST; returns it."""
    response = service.rest.post(f"/v1/queues/{QUEUE}/jobs", json={"function": function, **options})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def wait_status(service: Service, job_id: str, status: str, within_s: float = 15) -> dict[str, Any]:
    """The job once it has ``status`` (long-polling the service; fails after ``within_s``)."""
    deadline = time.monotonic() + within_s
    while True:
        job: dict[str, Any] = service.rest.get(f"/v1/jobs/{job_id}").json()
        if job["status"] == status:
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']}, not {status}"
        if status in ("complete", "failed", "aborted"):
            service.rest.get(f"/v1/jobs/{job_id}", params={"wait": 2})
        else:
            time.sleep(0.05)


def shot(page: Page, tmp_path: pathlib.Path, name: str) -> None:
    """Save a full-page screenshot as ``name``.png under the test's directory."""
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
