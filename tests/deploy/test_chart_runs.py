"""Run what the chart would run, as local processes: the service and a worker group.

Their command, args and environment come from the rendered manifests (Secrets and the
ConfigMap resolved as the kubelet would); the only changes are the ones a cluster makes
for us: the service's Service name and port become 127.0.0.1 and a free local port, and
`jobwire` is the one in this virtualenv. The store is the test Redis, given through
backend.url, so it travels through the chart's backend Secret.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import httpx
import pytest
from chart_render import (
    ROOT,
    VALUE_SETS,
    Rendered,
    container_env,
    containers,
    fullname,
    render,
)
from prometheus_client.parser import text_string_to_metric_families
from service_fixtures import free_port

from jobwire.flow import QueueSettings

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("chart-runs")]

NAME = fullname()
WORKER_COMMAND = ["jobwire", "worker", "examples.tasks.settings", "--concurrency", "5"]
READY_DEADLINE_S = 20.0
JOB_DEADLINE_S = 20.0
# A queue of this run's own, with limits and paused through the chart's `queues`.
LIMITED_QUEUE = f"chart-{uuid4().hex[:8]}"
QUEUE_VALUES = {"max_active": 3, "rate": {"limit": 10, "period_s": 2}, "paused": True}


@pytest.fixture(scope="module")
def rendered(redis_url: str) -> Rendered:
    return render(
        {
            "redis": {"enabled": False},
            "backend": {"url": redis_url},
            "config": {"logFormat": "text"},
            "workers": [{"name": "examples", "command": WORKER_COMMAND}],
            "queues": {LIMITED_QUEUE: QUEUE_VALUES},
        }
    )


def _local_command(container: dict[str, Any]) -> list[str]:
    """The container's command and args, with `jobwire` taken from this virtualenv."""
    argv = [*container["command"], *container.get("args", [])]
    assert argv[0] == "jobwire", argv
    return [sys.executable, "-m", "jobwire.cli", *argv[1:]]


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a process with only the given environment (and PATH), as in a container."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            argv,
            cwd=ROOT,  # the worker imports examples.tasks from its working directory
            env={"PATH": os.environ["PATH"], "HOME": tempfile.gettempdir(), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, as Kubernetes stops a pod; the exit code."""
    proc.terminate()
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
        raise


def _service(rendered: Rendered, port: int, grpc_port: int) -> tuple[list[str], dict[str, str]]:
    """The service container's command and environment, on 127.0.0.1:port (REST) and
    grpc_port."""
    (server,) = containers(rendered.get("Deployment", NAME))
    env = container_env(rendered, server)
    (http,) = [p for p in server["ports"] if p["name"] == "http"]
    # The chart binds all interfaces on the container port; here loopback, a free port.
    assert env["JOBWIRE_HOST"] == "0.0.0.0"
    assert env["JOBWIRE_HTTP_PORT"] == str(http["containerPort"])
    (grpc,) = [p for p in server["ports"] if p["name"] == "grpc"]  # on by default
    argv = _local_command(server)
    assert argv[-2:] == ["--grpc-port", str(grpc["containerPort"])]
    env.update(JOBWIRE_HOST="127.0.0.1", JOBWIRE_HTTP_PORT=str(port))
    return [*argv[:-1], str(grpc_port)], env


def _worker(rendered: Rendered, grpc_port: int) -> tuple[list[str], dict[str, str]]:
    """The worker container's command and environment, the service's gRPC at
    127.0.0.1:grpc_port (workers use the Work stream)."""
    (worker,) = containers(rendered.get("Deployment", f"{NAME}-worker-examples"))
    env = container_env(rendered, worker)
    target = urlsplit(env["JOBWIRE_URL"])
    (service_port,) = [
        p for p in rendered.get("Service", NAME)["spec"]["ports"] if p["name"] == "grpc"
    ]
    assert (target.scheme, target.hostname) == ("grpc", NAME)
    assert target.port == service_port["port"]
    assert service_port["targetPort"] == "grpc"  # the Service port leads to the container's
    env["JOBWIRE_URL"] = f"grpc://127.0.0.1:{grpc_port}"
    return _local_command(worker), env


@pytest.fixture(scope="module")
def deployment(
    rendered: Rendered, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The service and the worker group running; yields their URL, token, logs, processes."""
    logs = tmp_path_factory.mktemp("deploy-run")
    port, grpc_port = free_port(), free_port()
    while grpc_port == port:
        grpc_port = free_port()
    service, worker = _service(rendered, port, grpc_port), _worker(rendered, grpc_port)
    service_proc = _start(*service, logs / "service.log")
    worker_proc = _start(*worker, logs / "worker.log")
    (server,) = containers(rendered.get("Deployment", NAME))
    try:
        yield {
            "url": f"http://127.0.0.1:{port}",
            "readiness": server["readinessProbe"]["httpGet"]["path"],
            "admin": rendered.secret_data(f"{NAME}-tokens")["admin-token"],
            "logs": logs,
            "procs": {"worker": worker_proc, "service": service_proc},  # stop order
        }
    finally:
        for proc in (worker_proc, service_proc):
            if proc.poll() is None:
                _stop(proc)


def _logs(deployment: dict[str, Any]) -> str:
    return "\n".join(
        f"--- {path.name}\n{path.read_text(errors='replace')}"
        for path in sorted(deployment["logs"].iterdir())
    )


def _wait_ready(deployment: dict[str, Any]) -> None:
    deadline = time.monotonic() + READY_DEADLINE_S
    while time.monotonic() < deadline:
        if deployment["procs"]["service"].poll() is not None:
            raise AssertionError(f"the service exited:\n{_logs(deployment)}")
        try:
            url = deployment["url"] + deployment["readiness"]
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not ready at {deployment['readiness']}:\n{_logs(deployment)}")


JOB = {"function": "send_welcome_email", "kwargs": {"user_id": 7, "email": "a@example.com"}}


def _admin(deployment: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {deployment['admin']}"}


def _enqueue(deployment: dict[str, Any]) -> str:
    """Enqueue an example job with the rendered admin token; its id."""
    created = httpx.post(
        f"{deployment['url']}/v1/queues/emails/jobs",
        json={**JOB, "key": f"deploy-{uuid4().hex}"},
        headers=_admin(deployment),
        timeout=5,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_a_job_runs_through_the_rendered_service_and_worker(deployment: dict[str, Any]) -> None:
    _wait_ready(deployment)
    assert deployment["readiness"] == "/readyz"
    url, admin = deployment["url"], _admin(deployment)
    # The chart's tokens are on: no token, no job.
    assert httpx.post(f"{url}/v1/queues/emails/jobs", json=JOB, timeout=5).status_code == 401
    job_id = _enqueue(deployment)

    deadline = time.monotonic() + JOB_DEADLINE_S
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = httpx.get(f"{url}/v1/jobs/{job_id}?wait=2", headers=admin, timeout=5).json()
        if job["status"] in ("complete", "failed", "aborted"):
            break
    assert job.get("status") == "complete", f"{job}\n{_logs(deployment)}"


def _metric_names(text: str) -> set[str]:
    """The series names a scrape of this text can yield, samples or not yet (a labelled
    counter shows only its HELP and TYPE until its first increment)."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
    return {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in suffixes.get(family.type, [""])
    }


def test_metrics_the_dashboard_and_keda_read_are_served(deployment: dict[str, Any]) -> None:
    """Every metric the dashboard and the KEDA query name exists on the live /metrics."""
    _wait_ready(deployment)
    everything = render(VALUE_SETS["everything"])
    dashboard = json.loads(everything.get("ConfigMap", f"{NAME}-dashboard")["data"]["jobwire.json"])
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    (scaled,) = everything.of_kind("ScaledObject")
    exprs.append(scaled["spec"]["triggers"][0]["metadata"]["query"])
    wanted = {name for expr in exprs for name in re.findall(r"\bjobwire_\w+", expr)}

    _enqueue(deployment)  # the queue exists for the service, whatever ran before
    text = httpx.get(f"{deployment['url']}/metrics", timeout=5).text  # no token: public
    served = _metric_names(text)
    assert wanted and wanted <= served, sorted(wanted - served)
    assert re.search(r'jobwire_queue_jobs\{queue="emails",status="queued"\}', text)


def test_the_service_applies_the_charts_queues_at_start(deployment: dict[str, Any]) -> None:
    _wait_ready(deployment)
    url = f"{deployment['url']}/v1/queues/{LIMITED_QUEUE}/settings"
    answer = httpx.get(url, headers=_admin(deployment), timeout=5)
    assert answer.status_code == 200, f"{answer.text}\n{_logs(deployment)}"
    state = answer.json()
    limits = {key: value for key, value in QUEUE_VALUES.items() if key != "paused"}
    assert (state["queue"], state["paused"]) == (LIMITED_QUEUE, True), state
    assert QueueSettings.from_dict(state["settings"]) == QueueSettings.from_dict(limits), state


def test_service_and_worker_stop_cleanly_on_sigterm(deployment: dict[str, Any]) -> None:
    """Kubernetes stops a pod with SIGTERM: both shut down by themselves (the image has no
    init process, so they must handle it), both with exit code 0."""
    _wait_ready(deployment)
    exits = {name: _stop(proc) for name, proc in deployment["procs"].items()}
    assert exits == {"service": 0, "worker": 0}, _logs(deployment)
    service_log = (deployment["logs"] / "service.log").read_text()
    assert "Application shutdown complete" in service_log, service_log
