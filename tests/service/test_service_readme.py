"""The README's quick start: its CLI block and its curl walk-through, run with bash exactly
as written against a real service with the example worker running, and its metrics table
against a live /metrics."""

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service_fixtures import start_service, stop_service

from jobwire.server.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def block(marker: str, language: str = "sh") -> str:
    """The fenced block right after ``<!-- marker -->`` in the README."""
    text = README.read_text(encoding="utf-8")
    tag = f"<!-- {marker} -->"
    assert tag in text, f"{tag} not found in {README}"
    after = text.split(tag, 1)[1]
    match = re.match(rf"\s*```{language}\n(.*?)\n```", after, flags=re.DOTALL)
    assert match, f"no ```{language} block right after {tag}"
    return match.group(1) + "\n"


@pytest.fixture(scope="module")
def quickstart_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A service of its own on the embedded store (an SQLite file of its own, as `make run`
    has), with the example worker pulling from it, started as `make worker` starts it
    (from the repository's root). Each pytest-xdist worker that runs these tests gets its
    own, so jobs of one block never show in another's listing."""
    database = tmp_path_factory.mktemp("quickstart") / "jobwire.db"
    proc, url, _ = start_service(f"sqlite:///{database}")
    env = {**os.environ, "JOBWIRE_URL": url}
    worker = subprocess.Popen(
        [sys.executable, "-m", "jobwire.cli", "worker", "examples.tasks.settings"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield url
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        stop_service(proc)


def run_bash(script: str, cwd: Path, url: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with bash in ``cwd``, pointed at the service at ``url``."""
    path = cwd / "block.sh"
    path.write_text(script)
    return subprocess.run(
        ["bash", "-e", str(path)],
        cwd=cwd,
        env={**os.environ, "JOBWIRE": url, "JOBWIRE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_quickstart_runs_and_every_job_completes(
    quickstart_service: str, tmp_path: Path
) -> None:
    # `.venv/bin/jobwire` as written: here, the jobwire of the interpreter running the tests.
    shim = tmp_path / ".venv" / "bin" / "jobwire"
    shim.parent.mkdir(parents=True)
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m jobwire.cli "$@"\n')
    shim.chmod(0o755)
    done = run_bash(block("cli-quickstart"), tmp_path, quickstart_service)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    statuses = re.findall(r'^  "status": "(\w+)"', done.stdout, flags=re.MULTILINE)
    assert statuses == ["complete", "complete"], done.stdout
    assert '"failed": 0' in done.stdout, done.stdout  # info's counts come last
    table = [line.split() for line in done.stdout.splitlines() if re.match(r"[0-9a-f]{32} ", line)]
    assert {row[-1] for row in table} == {"send_welcome_email", "process_export"}, done.stdout
    assert {row[1] for row in table} == {"complete"}, done.stdout


def test_the_curl_walkthrough_runs(quickstart_service: str, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed; the README's walk-through needs it")
    done = run_bash(block("curl-walkthrough"), tmp_path, quickstart_service)
    output = done.stdout
    assert done.returncode == 0, f"exit {done.returncode}\n{output}\n{done.stderr}"
    assert done.stderr == "", done.stderr
    lines = output.splitlines()
    assert lines[:2] == ["complete", "aborted"], output  # the worker ran the first job
    assert '"name":"emails"' in lines[2], output  # the queue's counts came last
    assert '"failed":0' in lines[2], output
    assert list(tmp_path.iterdir()) == [tmp_path / "block.sh"]  # it leaves no files


def readme_metrics() -> dict[str, tuple[str, tuple[str, ...]]]:
    """The README's metrics table: name -> (type, labels)."""
    text = README.read_text(encoding="utf-8").split("<!-- metrics -->", 1)[1]
    rows = {}
    for line in text.strip().splitlines()[2:]:
        if not line.startswith("| `"):
            break
        name, kind, labels, _ = (cell.strip() for cell in line.strip("|").split("|"))
        rows[name.strip("`")] = (kind, tuple(label.strip(" `") for label in labels.split(",")))
    return rows


def test_the_readme_lists_every_metric_with_its_labels(service_url: str) -> None:
    documented = readme_metrics()
    metrics = Metrics()
    declared = {}
    for collector in metrics.registry._collector_to_names:  # every family, used or not
        suffix = "_total" if collector._type == "counter" else ""  # type: ignore[attr-defined]
        name = collector._name + suffix  # type: ignore[attr-defined]
        declared[name] = (collector._type, tuple(collector._labelnames))  # type: ignore[attr-defined]
    assert documented == declared

    httpx.post(f"{service_url}/v1/queues/readme-metrics/jobs", json={"function": "f"})
    served = httpx.get(f"{service_url}/metrics").text
    families = dict(re.findall(r"^# TYPE (\S+) (\S+)$", served, flags=re.MULTILINE))
    assert families == {name: kind for name, (kind, _) in documented.items()}
    assert "_created" not in served
    assert 'jobwire_jobs_enqueued_total{function="f",queue="readme-metrics"}' in served


def test_job_histograms_reach_hours_and_their_buckets_can_be_set(tmp_path: Path) -> None:
    buckets = Metrics().run_seconds._upper_bounds  # type: ignore[attr-defined]
    assert 3600 in buckets and max(b for b in buckets if b != float("inf")) >= 86400
    env = {"JOBWIRE_WAIT_SECONDS_BUCKETS": "[1, 90]", "JOBWIRE_RUN_SECONDS_BUCKETS": "[2, 120]"}
    proc, url, _ = start_service(f"sqlite:///{tmp_path}/jobwire.db", env=env)
    try:
        queue = f"readme-{time.monotonic_ns()}"
        httpx.post(f"{url}/v1/queues/{queue}/jobs", json={"function": "f"})
        leased = httpx.post(f"{url}/v1/queues/{queue}/leases", json={"worker_id": "w", "max": 1})
        assert leased.status_code == 200, leased.text
        served = httpx.get(f"{url}/metrics").text
    finally:
        stop_service(proc)
    bounds = re.findall(r'^jobwire_job_queue_wait_seconds_bucket\{.*le="([^"]+)"', served, re.M)
    assert bounds == ["1.0", "90.0", "+Inf"], served
