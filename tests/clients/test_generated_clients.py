"""Clients generated from clients/openapi.json by two generators from the registries, compiled
and run against a real `jobwire serve`: typed results, typed errors.

- Python: openapi-python-client (PyPI, pinned in the dev extra) writes a package; the test
  imports it and calls enqueue / get / retry of a live job (409) / abort / get of a missing
  job (404), checking that each answer is parsed into the document's model.
- TypeScript: openapi-typescript (npm, pinned by tests/clients/generated/package-lock.json)
  writes the types, openapi-fetch calls them; `tsc` compiles src/run.ts (whose annotations
  only hold while the document types the answers) and src/drift.ts (@jobwire/client's types
  against the document's), and node runs the same calls.

After `npm ci` in tests/clients/generated (done here when node_modules is missing or older
than the lockfile) both run offline.
"""

import importlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import uuid4

import pytest
from clients_helpers import CLIENTS, TOKENS, Service, run

GENERATED_TS = Path(__file__).resolve().parent / "generated"
DOCUMENT = CLIENTS / "openapi.json"


@pytest.fixture(scope="module")
def python_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The package openapi-python-client generates from the document, imported."""
    generator = Path(sys.executable).with_name("openapi-python-client")
    if not generator.exists():
        pytest.fail("openapi-python-client is missing: pip install -e '.[dev]'")
    root = tmp_path_factory.mktemp("generated-py")
    package = root / "jobwire_generated"
    env = {**os.environ, "PATH": f"{generator.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    out = run(
        [str(generator), "generate", "--path", str(DOCUMENT), "--output-path", str(package),
         "--meta", "none"],
        cwd=root, timeout=60, env=env,
    )  # fmt: skip
    assert "Warning" not in out, out
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("jobwire_generated")
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.startswith("jobwire_generated")]:
            del sys.modules[name]


def test_python_generated_client_types_answers_and_errors(
    python_client: ModuleType, token_service: Service
) -> None:
    gen = python_client
    api = importlib.import_module("jobwire_generated.api.jobs")
    models = importlib.import_module("jobwire_generated.models")
    enqueue_job = importlib.import_module(f"{api.__name__}.enqueue_job")
    get_job = importlib.import_module(f"{api.__name__}.get_job")
    abort_job = importlib.import_module(f"{api.__name__}.abort_job")
    retry_job = importlib.import_module(f"{api.__name__}.retry_job")
    queue = f"gen-py-{uuid4().hex[:10]}"
    with gen.AuthenticatedClient(base_url=token_service.url, token=TOKENS["client"]) as client:
        _calls(client, queue, models, enqueue_job, get_job, abort_job, retry_job)
    with gen.Client(base_url=token_service.url) as anonymous:
        refused = get_job.sync_detailed("any-job", client=anonymous)
    assert refused.status_code == 401 and isinstance(refused.parsed, models.Error)


def _calls(client: Any, queue: str, models: Any, *ops: ModuleType) -> None:
    """enqueue, get, retry of a live job (409), abort, get of a missing job (404)."""
    enqueue_job, get_job, abort_job, retry_job = ops

    body = models.EnqueueRequest.from_dict(
        {"function": "send_welcome_email", "kwargs": {"user_id": 1}, "retries": 2}
    )
    created = enqueue_job.sync_detailed(queue, client=client, body=body)
    assert created.status_code == 201
    assert isinstance(created.parsed, models.EnqueuedJob), created.parsed
    assert created.parsed.duplicate is False and created.parsed.status == models.Status.QUEUED
    job_id = created.parsed.id

    job = get_job.sync(job_id, client=client)
    assert isinstance(job, models.Job) and job.id == job_id and job.attempts == 0
    assert job.kwargs.to_dict() == {"user_id": 1}

    conflict = retry_job.sync_detailed(job_id, client=client)  # still queued: 409
    assert conflict.status_code == 409
    assert isinstance(conflict.parsed, models.Error), conflict.parsed
    assert conflict.parsed.error.code == "invalid_state"

    aborted = abort_job.sync(
        job_id, client=client, body=models.AbortRequest(error="changed my mind")
    )
    assert isinstance(aborted, models.Job) and aborted.status == models.Status.ABORTED
    assert isinstance(aborted.error, models.ErrorInfo)
    assert aborted.error.message == "changed my mind"

    missing = get_job.sync_detailed("no-such-job-here", client=client)
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.Error)
    assert missing.parsed.error.code == "not_found"


@pytest.fixture(scope="module")
def typescript_generated() -> Path:
    """tests/clients/generated with its packages installed, types generated and compiled."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not on PATH: the generated-client test needs Node.js >= 18")
    installed = GENERATED_TS / "node_modules" / ".package-lock.json"
    lock = GENERATED_TS / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        run([npm, "ci", "--no-audit", "--no-fund"], GENERATED_TS, timeout=240)
    run([npm, "run", "generate"], GENERATED_TS, timeout=60)
    run([npm, "run", "build"], GENERATED_TS, timeout=120)  # one tsc: run.ts and drift.ts
    return GENERATED_TS


def test_typescript_generated_client_types_answers_and_errors(
    typescript_generated: Path, token_service: Service
) -> None:
    env = {**token_service.env("client"), "JOBWIRE_QUEUE": f"gen-ts-{uuid4().hex[:10]}"}
    script = "dist/tests/clients/generated/src/run.js"
    out = run(["node", script], typescript_generated, timeout=60, env=env)
    steps: dict[str, dict[str, Any]] = {}
    for line in out.splitlines():
        event = json.loads(line)
        steps[event["step"]] = event
    assert steps["enqueue"]["status"] == 201
    assert steps["enqueue"]["body"]["status"] == "queued"
    assert steps["enqueue"]["body"]["duplicate"] is False
    assert steps["get"]["status"] == 200 and steps["get"]["body"]["attempts"] == 0
    assert steps["retry-queued"]["status"] == 409
    assert steps["retry-queued"]["body"]["code"] == "invalid_state"
    assert steps["abort"]["body"] == {"status": "aborted", "reason": "changed my mind"}
    assert steps["get-missing"]["status"] == 404
    assert steps["get-missing"]["body"]["code"] == "not_found"
    assert steps["queue"]["body"]["aborted"] == 1
