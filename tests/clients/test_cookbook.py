"""The curl cookbook of clients/README.md runs as written and names every REST route."""

import json
import re
import subprocess
from uuid import uuid4

import pytest
from clients_helpers import CLIENTS, TOKENS, Service

pytestmark = pytest.mark.slow

MARKER = "<!-- curl-cookbook -->"


def _cookbook() -> str:
    text = (CLIENTS / "README.md").read_text(encoding="utf-8")
    match = re.search(re.escape(MARKER) + r"\n```sh\n(.*?)```", text, re.S)
    assert match, f"no ```sh block after {MARKER} in clients/README.md"
    return match.group(1)


def test_cookbook_names_every_route_of_the_openapi_document() -> None:
    block = _cookbook()
    paths = json.loads((CLIENTS / "openapi.json").read_text(encoding="utf-8"))["paths"]
    missing = []
    for path, methods in paths.items():
        if path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
            continue
        pattern = re.escape(path)
        pattern = re.sub(r"\\\{[a-z_]+\\\}", r"\\$[A-Za-z0-9_]+", pattern)  # {job_id} -> $JOB
        for method in methods:
            verb = "" if method == "get" else f"-X {method.upper()} "
            if not re.search(f'{verb}"\\$JOBWIRE{pattern}[?"]', block):
                missing.append(f"{method.upper()} {path}")
    assert not missing, f"routes the cookbook does not show: {missing}"


def test_cookbook_runs_against_a_service_with_tokens(token_service: Service) -> None:
    env = {
        **token_service.env("admin"),
        "JOBWIRE": token_service.url,
        "QUEUE": f"cookbook-{uuid4().hex[:12]}",
        "JOBWIRE_TOKEN": TOKENS["admin"],
    }
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _cookbook()],
        env=env,
        capture_output=True,
        text=True,
        timeout=45,
        stdin=subprocess.DEVNULL,
    )
    output = f"{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, f"the cookbook failed (exit {done.returncode}):\n{output}"
    lines = done.stdout.splitlines()
    expected = [
        "201 200",  # enqueue, then the same Idempotency-Key
        "['queued', 'scheduled']",  # batch
        "202",  # apply with no worker
        '{"status":"active","aborted":false}',  # heartbeat
        '{"states":["active","active"]}',  # renew
        "complete",
        "failed",
        '{"settled":[true]}',
        "event: job",
        "aborted",
        "204",  # delete
        "(5, False)",  # limits stored, queue not paused
        "{'limit': 10, 'period_s': 1.0}",  # a rate's period defaults to 1 s
        "tenant-7",
        "['welcome-42']",  # listed by key prefix
        "True",  # the bulk abort's jobs deleted in bulk
        '{"status":"ready"}',
        "Jobwire",
    ]
    stripped = [line.strip() for line in lines]
    for want in expected:
        assert want in stripped, f"missing {want!r} in the cookbook's output:\n{output}"
    assert any('"code":"not_found"' in line for line in lines), output
    assert any('"code":"stale_lease"' in line for line in lines), output
    paused = [line for line in stripped if line.endswith(('"paused":true}', '"paused":false}'))]
    assert [line.endswith("true}") for line in paused] == [True, False], output
    counts = [json.loads(line)["count"] for line in stripped if line.startswith('{"count"')]
    assert len(counts) == 2 and counts[1] >= 1, output  # the retry, then the abort
