"""Fixtures of the client tests: a service with tokens, and the built TypeScript package."""

import fcntl
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from clients_helpers import TOKENS, TYPESCRIPT, Service, run
from service_fixtures import start_service, stop_service


@pytest.fixture(scope="session")
def token_service(redis_url: str) -> Iterator[Service]:
    """A service on the session's Redis with tokens for each role and a 1 s sweep."""
    tokens = ",".join(f"{token}:{role}" for role, token in TOKENS.items())
    proc, url, log_path = start_service(redis_url, env={"JOBWIRE_TOKENS": tokens})
    try:
        yield Service(url, log_path)
    finally:
        stop_service(proc)


@pytest.fixture(scope="session")
def typescript_build() -> Path:
    """clients/typescript with its dependencies installed and dist/ and build/ compiled."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not on PATH: the TypeScript client's tests need Node.js >= 18 and npm")
    installed = TYPESCRIPT / "node_modules" / ".package-lock.json"
    lock = TYPESCRIPT / "package-lock.json"
    # pytest-xdist workers may each set this up: one at a time (npm ci empties node_modules).
    with open(TYPESCRIPT / ".build.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
            run([npm, "ci", "--no-audit", "--no-fund"], TYPESCRIPT, timeout=240)
        # One `tsc -b`: the package (src -> dist) and then the tests and scripts (test -> build).
        run([npm, "run", "build:test"], TYPESCRIPT, timeout=120)
    return TYPESCRIPT
