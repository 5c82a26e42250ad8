"""Helpers of the client tests: paths, the token service's description, build steps."""

import dataclasses
import os
import subprocess
from pathlib import Path

import pytest

CLIENTS = Path(__file__).resolve().parents[2] / "clients"
TYPESCRIPT = CLIENTS / "typescript"
GO = CLIENTS / "go"
TOKENS = {"admin": "tok-admin-1", "client": "tok-client-1", "worker": "tok-worker-1"}


@dataclasses.dataclass(frozen=True)
class Service:
    """A running `jobwire serve` with one token per role."""

    url: str
    log_path: str

    def url_with(self, role: str) -> str:
        """The service URL carrying ``role``'s token as its password (the Python SDK's form)."""
        return self.url.replace("http://", f"http://:{TOKENS[role]}@", 1)

    def env(self, role: str = "admin") -> dict[str, str]:
        """Environment for a client process: URL, the role's token, the other roles' tokens."""
        return {
            **os.environ,
            "JOBWIRE_URL": self.url,
            "JOBWIRE_TOKEN": TOKENS[role],
            "JOBWIRE_TEST_CLIENT_TOKEN": TOKENS["client"],
            "JOBWIRE_TEST_WORKER_TOKEN": TOKENS["worker"],
        }

    def log(self) -> str:
        """The service's log so far (for failure messages)."""
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            return log.read()[-5000:]


def run(argv: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None) -> str:
    """Run a build step; fail the test with its output if it fails."""
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(argv)} timed out after {timeout} s:\n{exc.stdout}\n{exc.stderr}")
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(argv)} exited {done.returncode} in {cwd}:\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout
