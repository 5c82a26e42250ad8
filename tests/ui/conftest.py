"""A real `jobwire serve` (SQLite, with tokens), a real worker, and headless Chromium."""

import os
import pathlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from service_fixtures import start_service, stop_service
from ui_helpers import TOKENS, WORKER, Service

HERE = pathlib.Path(__file__).parent
WORKER_START_DEADLINE_S = 30.0
expect.set_options(timeout=15_000)  # waits for conditions; generous for a loaded machine


def _start_worker(url: str) -> subprocess.Popen[bytes]:
    """A worker process on queue ui of the service at ``url``, once it has attached."""
    python_path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    worker_env = {
        **os.environ,
        "PYTHONPATH": python_path,
        "JOBWIRE_URL": f"http://:{WORKER}@127.0.0.1:{url.rsplit(':', 1)[1]}",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "jobwire.cli", "worker", "ui_tasks.settings"],
        env=worker_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    headers = {"authorization": f"Bearer {WORKER}"}
    deadline = time.monotonic() + WORKER_START_DEADLINE_S
    while not httpx.get(f"{url}/v1/queues/ui", headers=headers).json()["workers"]:  # attached
        if worker.poll() is not None or time.monotonic() > deadline:
            _stop_worker(worker)
            raise RuntimeError(f"the worker did not attach (exit code {worker.poll()})")
        time.sleep(0.1)
    return worker


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=15)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """`jobwire serve` over SQLite with admin/client/worker tokens, and a worker on queue ui.

    One after the other, not side by side: on a loaded machine, processes that start
    together miss the start deadline.
    """
    store = tmp_path_factory.mktemp("ui-store") / "jobs.db"
    proc, url, _ = start_service(f"sqlite:///{store}", env={"JOBWIRE_TOKENS": TOKENS})
    try:
        worker = _start_worker(url)
    except BaseException:
        stop_service(proc)
        raise
    served = Service(url)
    try:
        yield served
    finally:
        served.rest.close()
        _stop_worker(worker)
        stop_service(proc)


@pytest.fixture(scope="module")
def open_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a `jobwire serve` without tokens, on loopback."""
    store = tmp_path_factory.mktemp("ui-open") / "jobs.db"
    proc, url, _ = start_service(f"sqlite:///{store}")
    try:
        yield url
    finally:
        stop_service(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium: Debian's package, driven by Playwright (no browser download).

    Per module, so that Playwright's event loop is gone before other tests' loops run.
    """
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
