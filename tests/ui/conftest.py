"""A real `jobwire serve` (SQLite, with tokens), a real worker, and headless Chromium."""

import os
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from service_fixtures import start_service, stop_service

ADMIN, CLIENT, WORKER = "ui-admin-secret", "ui-client-secret", "ui-worker-secret"
TOKENS = f"{ADMIN}:admin,{CLIENT}:client,{WORKER}:worker"
HERE = pathlib.Path(__file__).parent


class Service:
    """The service under test: its URL and an admin REST client."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.rest = httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {ADMIN}"}, timeout=30
        )


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """`jobwire serve` over SQLite with admin/client/worker tokens, and a worker on queue ui."""
    store = tmp_path_factory.mktemp("ui-store") / "jobs.db"
    proc, url, _ = start_service(f"sqlite:///{store}", env={"JOBWIRE_TOKENS": TOKENS})
    port = url.rsplit(":", 1)[1]
    python_path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    worker_env = {
        **os.environ,
        "PYTHONPATH": python_path,
        "JOBWIRE_URL": f"http://:{WORKER}@127.0.0.1:{port}",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "jobwire.cli", "worker", "ui_tasks.settings"],
        env=worker_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    served = Service(url)
    try:
        yield served
    finally:
        served.rest.close()
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        stop_service(proc)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Chromium: Debian's package, driven by Playwright (no browser download)."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("chromium not found: `make chromium` (or apt-get install chromium) installs it")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (an empty session) at a laptop's width."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


def sign_in(page: Page, url: str, token: str) -> None:
    """Open the dashboard at ``url`` and sign in with ``token``."""
    page.goto(url)
    page.fill("#token", token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#role")).to_be_visible()
