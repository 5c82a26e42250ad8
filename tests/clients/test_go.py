"""The Go client (clients/go): gofmt-clean, vetted, and its `go test` passing against a real
`jobwire serve` (the test runs every integration test: none may skip)."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from clients_helpers import GO, Service, run

pytestmark = pytest.mark.slow

GO_TEST_TIMEOUT_S = 150  # a cold build cache compiles net/http and friends first


def _go_binary() -> str:
    found = shutil.which("go") or next(
        (
            path
            for path in ("/usr/lib/go/bin/go", "/usr/local/go/bin/go")
            if os.access(path, os.X_OK)
        ),
        None,
    )
    if found is None:
        pytest.fail("go is not installed: `make go-toolchain` installs it (Debian's golang-go)")
    return found


def _go_env(service: Service) -> dict[str, str]:
    env = service.env("admin")
    env.update(GOPROXY="off", GOFLAGS="", GOTOOLCHAIN="local")  # stdlib only: never download
    home = env.get("HOME", "")
    if not home or not os.access(home, os.W_OK):  # keep Go's caches in the (ignored) repo dir
        env.update(GOCACHE=str(GO / ".cache" / "build"), GOPATH=str(GO / ".cache" / "path"))
    return env


@pytest.mark.timeout(GO_TEST_TIMEOUT_S + 30)
def test_go_client_is_formatted_vetted_and_passes_against_the_service(
    token_service: Service,
) -> None:
    go = _go_binary()
    env = _go_env(token_service)
    gofmt = str(Path(go).with_name("gofmt"))
    unformatted = run([gofmt if os.access(gofmt, os.X_OK) else "gofmt", "-l", "."], GO, 60, env)
    assert unformatted.strip() == "", f"not gofmt'd: {unformatted}"
    run([go, "vet", "./..."], GO, GO_TEST_TIMEOUT_S, env)
    try:
        done = subprocess.run(
            [go, "test", "-count=1", "-v", "./..."],
            cwd=GO,
            env=env,
            capture_output=True,
            text=True,
            timeout=GO_TEST_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"go test timed out:\n{exc.stdout}\n{exc.stderr}")
    output = f"{done.stdout}\n{done.stderr}\nservice log:\n{token_service.log()}"
    assert done.returncode == 0, f"go test exited {done.returncode}:\n{output}"
    assert "--- SKIP" not in done.stdout, f"tests were skipped:\n{output}"
    passed = re.findall(r"^--- PASS: (\w+)", done.stdout, re.M)
    assert len(passed) >= 16 and "TestApply" in passed and "TestTokens" in passed, output
    expected = {"ExampleClient_Enqueue", "ExampleWorker", "TestWorkerRunsFailsAbortsAndTimesOut",
                "TestWorkerStopHandsBackRunningJobs", "TestWorkerStopsWithOneLineOnARefusedToken",
                "TestAContextEndingDuringBackoffWinsOverTheTransportError",
                "TestJitterIsSeededPerProcess", "TestPauseAndResume", "TestQueueSettingsRoundTrip",
                "TestConcurrencyKeyAndAPerKeyLimit", "TestBulkRetryAbortDeleteAndKeyPrefix",
                "TestFlowControlRoles"}  # fmt: skip
    assert expected <= set(passed), output
