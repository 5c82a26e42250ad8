"""Throwaway stores of the fault suite's own: a test may stop, stall or kill them.

The session's shared Redis and PostgreSQL (tests/conftest.py) are never touched here.
"""

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator

import redis
from service_fixtures import free_port as _free_port

# Stopped "like a crash" (`-m immediate`), it must keep what it acknowledged, as a default
# server does: `synchronous_commit` stays on (off, the last commits, such as the schema the
# service just created, were lost at the stop). `fsync` off is safe here: the OS stays up.
POSTGRES_SETTINGS = {"listen_addresses": "127.0.0.1", "max_connections": "100", "fsync": "off",
                     "full_page_writes": "off"}  # fmt: skip


def _wait_for_ping(proc: subprocess.Popen[bytes], port: int, log_path: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log_path, errors="replace") as log:
                raise RuntimeError(f"redis-server exited: {log.read()}")
        with contextlib.suppress(redis.RedisError), redis.Redis(port=port, socket_timeout=0.5) as r:
            if r.ping():
                return
        time.sleep(0.05)
    raise RuntimeError(f"redis-server on {port} did not answer PING")


def _postgres_bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    if initdb := shutil.which("initdb"):
        found.append(os.path.dirname(os.path.realpath(initdb)))
    for bindir in found:
        if os.access(os.path.join(bindir, "pg_ctl"), os.X_OK):
            return bindir
    raise RuntimeError("PostgreSQL server binaries not found (make postgres-binary)")


def _postgres_user() -> str | None:
    return "postgres" if os.geteuid() == 0 else None


def _as_user(user: str | None, argv: list[str]) -> list[str]:
    return argv if user is None else ["runuser", "-u", user, "--", *argv]


def _run_checked(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed: {done.stdout}{done.stderr}")


class OwnRedis:
    """A redis-server on a free port that this suite may SIGSTOP, kill and restart."""

    def __init__(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="jobwire-faults-redis-")
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        """Its ``redis://`` URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (again) on the same port; data does not survive a restart."""
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not on PATH"
        log_path = os.path.join(self.tmp, "redis.log")
        options = {"--save": "", "--appendonly": "no", "--bind": "127.0.0.1",
                   "--port": str(self.port), "--dir": self.tmp}  # fmt: skip
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [binary, *itertools.chain.from_iterable(options.items())],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        _wait_for_ping(self.proc, self.port, log_path)

    def stop(self) -> None:
        """SIGKILL it (a crash, not a shutdown)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def pause(self) -> None:
        """SIGSTOP it: connections stay open, nothing answers."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT it."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def client(self) -> redis.Redis:
        """A synchronous client on it."""
        return redis.Redis(port=self.port, socket_timeout=5)

    def close(self) -> None:
        """Stop it for good and remove its directory."""
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


class OwnPostgres:
    """A PostgreSQL cluster of this suite's own, which it may stop, stall and restart."""

    def __init__(self) -> None:
        self.bindir = _postgres_bindir()
        self.user = _postgres_user()
        self.tmp = tempfile.mkdtemp(prefix="jobwire-faults-pg-")
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.tmp, entry.pw_uid, entry.pw_gid)
        self.data = os.path.join(self.tmp, "data")
        _run_checked(
            _as_user(self.user, [f"{self.bindir}/initdb", "-D", self.data, "-U", "postgres",
                                 "--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync"]),
            "initdb",
        )  # fmt: skip
        self.port = _free_port()
        self.start()

    @property
    def url(self) -> str:
        """Its ``postgresql://`` URL."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        _run_checked(_as_user(self.user, [f"{self.bindir}/pg_ctl", "-D", self.data, *args]),
                     f"pg_ctl {args[-1]}")  # fmt: skip

    def start(self) -> None:
        """Start it (again) on the same port and data."""
        options = [f"-p {self.port}", f"-k {self.tmp}"]
        options += [f"-c {name}={value}" for name, value in POSTGRES_SETTINGS.items()]
        log = os.path.join(self.tmp, "postgres.log")
        self._ctl("-l", log, "-w", "-t", "30", "-o", " ".join(options), "start")

    def stop(self) -> None:
        """Stop it at once (``-m immediate``: like a crash)."""
        self._ctl("-m", "immediate", "-w", "stop")

    def _postmaster_pid(self) -> int:
        with open(os.path.join(self.data, "postmaster.pid")) as pid_file:
            return int(pid_file.readline())

    def pause(self) -> list[int]:
        """SIGSTOP the postmaster and every backend; returns the pids stopped."""
        parent = self._postmaster_pid()
        done = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True)
        pids = [parent, *(int(pid) for pid in done.stdout.split())]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        return pids

    @staticmethod
    def resume(pids: list[int]) -> None:
        """SIGCONT what ``pause`` stopped."""
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def close(self) -> None:
        """Stop it and remove its files."""
        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def wait_until(predicate: "object", timeout_s: float = 10.0) -> None:
    """Poll ``predicate()`` until it is true (AssertionError after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout_s} s")


@contextlib.contextmanager
def own_redis() -> Iterator[OwnRedis]:
    """A throwaway Redis for one test or module."""
    server = OwnRedis()
    try:
        yield server
    finally:
        server.close()
