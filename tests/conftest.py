"""Session-wide fixtures: throwaway Redis and PostgreSQL servers for the whole test run
(shared by every pytest-xdist worker)."""

import contextlib
import glob
import itertools
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest
import redis

pytest_plugins = ["service_fixtures", "cluster_fixtures"]

REDIS_URL_ENV = "JOBWIRE_TEST_REDIS_URL"
REDIS_START_DEADLINE_S = 10.0


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_ping(proc: subprocess.Popen[bytes], port: int, log_path: str) -> None:
    """Block until the server on ``port`` answers PING.

    Raises:
        RuntimeError: The server exited, or did not answer within the deadline.
    """
    deadline = time.monotonic() + REDIS_START_DEADLINE_S
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log_path, encoding="utf-8", errors="replace") as log:
                output = log.read()
            raise RuntimeError(
                f"redis-server exited with code {proc.returncode} before answering PING "
                f"on port {port}:\n{output}"
            )
        client = redis.Redis(
            host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=0.5
        )
        try:
            if client.ping():
                return
        except redis.RedisError as exc:
            last_error = exc
        finally:
            client.close()
        time.sleep(0.05)
    raise RuntimeError(
        f"redis-server on 127.0.0.1:{port} did not answer PING within "
        f"{REDIS_START_DEADLINE_S:.0f} s (last error: {last_error!r})"
    )


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A private, non-persistent ``redis-server`` on a free port; its URL (database 0).

    Raises:
        RuntimeError: There is no redis-server, or it did not start.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(f"redis-server is not on PATH; install it or set ${REDIS_URL_ENV}")

    with tempfile.TemporaryDirectory(prefix="jobwire-redis-") as tmp:
        port = _free_port()
        log_path = os.path.join(tmp, "redis.log")
        with open(log_path, "wb") as log:
            options = {
                "--save": "",
                "--appendonly": "no",
                "--bind": "127.0.0.1",
                "--port": str(port),
                "--dir": tmp,
            }
            proc = subprocess.Popen(
                [binary, *itertools.chain.from_iterable(options.items())],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for_ping(proc, port, log_path)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@pytest.fixture(scope="session")
def redis_url(pytestconfig: pytest.Config) -> Iterator[str]:
    """URL of a Redis server for the tests.

    Uses the server the pytest-xdist controller shares with its workers, else
    ``$JOBWIRE_TEST_REDIS_URL`` when set; otherwise starts a private, non-persistent
    ``redis-server`` on a free port and stops it when the session ends.
    """
    url = shared_servers(pytestconfig).get("redis_url") or os.environ.get(REDIS_URL_ENV)
    if url:
        yield url
        return
    with redis_server() as url:
        yield url


@pytest.fixture
def private_redis_url(redis_url: str) -> Iterator[str]:
    """URL of a redis-server of the test's own, for a test that disrupts its server (kills
    its connections, say) while other tests use the shared one; ``redis_url`` when there is
    no redis-server binary (``$JOBWIRE_TEST_REDIS_URL`` names the server to use)."""
    if shutil.which("redis-server") is None:
        yield redis_url
        return
    with redis_server() as url:
        yield url


POSTGRES_URL_ENV = "JOBWIRE_TEST_POSTGRES_URL"
POSTGRES_START_TIMEOUT_S = 30
POSTGRES_SETTINGS = {  # a disposable server: durability off, room for many small pools
    "listen_addresses": "127.0.0.1",
    "max_connections": "500",  # shared by every xdist worker
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


def _postgres_bindir() -> str:
    """The directory holding the PostgreSQL server's ``initdb`` and ``pg_ctl``.

    Raises:
        RuntimeError: None was found (the message lists where it looked).
    """
    candidates: list[str] = []
    if pg_config := shutil.which("pg_config"):
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip():
            candidates.append(done.stdout.strip())
    versioned = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(versioned, key=lambda path: _version(path.split("/")[-2]), reverse=True)
    if initdb := shutil.which("initdb"):
        candidates.append(os.path.dirname(os.path.realpath(initdb)))
    candidates += ["/usr/local/bin", "/usr/local/pgsql/bin"]
    for bindir in candidates:
        if all(os.access(os.path.join(bindir, tool), os.X_OK) for tool in ("initdb", "pg_ctl")):
            return bindir
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found in "
        f"{candidates}; install them (`make postgres-binary`, or "
        f"`apt-get install postgresql`) or set ${POSTGRES_URL_ENV}"
    )


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def _postgres_user() -> str | None:
    """The user to run the server as: ``None`` (ourselves) unless we are root.

    Raises:
        RuntimeError: Running as root and no unprivileged user to run the server as.
    """
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError(
        "initdb refuses to run as root, and there is no 'postgres' or 'nobody' user to run "
        f"it as; create one or set ${POSTGRES_URL_ENV}"
    )


def _as_user(user: str | None, argv: list[str]) -> list[str]:
    if user is None:
        return argv
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *argv]
    return ["su", user, "-s", "/bin/sh", "-c", shlex.join(argv)]


def _run_checked(argv: list[str], what: str) -> None:
    """Run a setup command, raising with its output when it fails."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(
            f"{what} failed (exit {done.returncode}): {shlex.join(argv)}\n"
            f"{done.stdout}{done.stderr}"
        )


def _start_postgres(bindir: str, user: str | None, tmp: str) -> int:
    """initdb into ``tmp`` and start the server; return its port (retrying port clashes)."""
    data = os.path.join(tmp, "data")
    _run_checked(
        _as_user(user, [f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth=trust",
                        "--no-locale", "-E", "UTF8", "--no-sync"]),
        "initdb",
    )  # fmt: skip
    log_path = os.path.join(tmp, "postgres.log")
    for attempt in range(3):
        port = _free_port()
        options = [f"-p {port}", f"-k {tmp}"]
        options += [f"-c {name}={value}" for name, value in POSTGRES_SETTINGS.items()]
        argv = [f"{bindir}/pg_ctl", "-D", data, "-l", log_path, "-w",
                "-t", str(POSTGRES_START_TIMEOUT_S), "-o", " ".join(options), "start"]  # fmt: skip
        try:
            _run_checked(_as_user(user, argv), "pg_ctl start")
            return port
        except RuntimeError as exc:
            with open(log_path, encoding="utf-8", errors="replace") as log:
                output = log.read()
            if attempt == 2 or "already in use" not in output:
                raise RuntimeError(f"{exc}\nserver log:\n{output}") from None
    raise AssertionError("unreachable")


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A private PostgreSQL cluster, initdb'd in a temporary directory (as the ``postgres``
    user when we are root) and started on a free port with durability off; its URL. Stopped
    and removed on exit.

    Raises:
        RuntimeError: The server binaries are missing, or the server did not start.
    """
    bindir = _postgres_bindir()
    user = _postgres_user()
    tmp = tempfile.mkdtemp(prefix="jobwire-pg-")
    try:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(tmp, entry.pw_uid, entry.pw_gid)
        port = _start_postgres(bindir, user, tmp)
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            data = os.path.join(tmp, "data")
            subprocess.run(
                _as_user(user, [f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"]),
                capture_output=True,
                timeout=60,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(pytestconfig: pytest.Config) -> Iterator[str]:
    """URL of a PostgreSQL server for the tests.

    Uses the server the pytest-xdist controller shares with its workers, else
    ``$JOBWIRE_TEST_POSTGRES_URL`` when set; otherwise runs a private cluster
    (``postgres_server``) for the session.
    """
    url = shared_servers(pytestconfig).get("postgres_url") or os.environ.get(POSTGRES_URL_ENV)
    if url:
        yield url
        return
    with postgres_server() as url:
        yield url


PGBOUNCER_START_DEADLINE_S = 10.0


def _pgbouncer_binary() -> str:
    """Debian installs it in /usr/sbin, which is not on every user's PATH.

    Raises:
        RuntimeError: It is not installed.
    """
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.access(binary, os.X_OK):
        raise RuntimeError("pgbouncer not found; install it (`make pgbouncer-binary`)")
    return binary


def _pgbouncer_config(postgres_url: str, port: int, tmp: str, pool_size: int) -> str:
    """pgbouncer.ini: transaction pooling on ``port`` in front of ``postgres_url``'s server,
    any client let in and logged in as that URL's user."""
    server = urlsplit(postgres_url)
    login = f"host={server.hostname} port={server.port or 5432} user={server.username}"
    if server.password:
        login += f" password={server.password}"
    settings = {
        "listen_addr": "127.0.0.1",
        "listen_port": str(port),
        "unix_socket_dir": "",
        "auth_type": "any",
        "pool_mode": "transaction",
        "default_pool_size": str(pool_size),
        "max_client_conn": "1000",
        "pidfile": os.path.join(tmp, "pgbouncer.pid"),
    }
    lines = ["[databases]", f"* = {login}", "[pgbouncer]"]
    lines += [f"{name} = {value}" for name, value in settings.items()]
    path = os.path.join(tmp, "pgbouncer.ini")
    with open(path, "w", encoding="utf-8") as config:
        config.write("\n".join(lines) + "\n")
    return path


def _wait_for_listen(proc: subprocess.Popen[bytes], port: int, log_path: str) -> None:
    """Block until something accepts connections on ``port``.

    Raises:
        RuntimeError: The process exited, or did not listen within the deadline.
    """
    deadline = time.monotonic() + PGBOUNCER_START_DEADLINE_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log_path, encoding="utf-8", errors="replace") as log:
                output = log.read()
            raise RuntimeError(f"pgbouncer exited with code {proc.returncode}:\n{output}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on 127.0.0.1:{port} in time")


@contextlib.contextmanager
def pgbouncer_server(postgres_url: str, pool_size: int = 20) -> Iterator[str]:
    """A private PgBouncer in transaction mode in front of ``postgres_url``'s server, on a
    free port, with ``pool_size`` server connections per database; its URL (same user and
    database). pgbouncer refuses to run as root: then it runs as the server's user.

    Raises:
        RuntimeError: There is no pgbouncer binary, or it did not start.
    """
    binary = _pgbouncer_binary()
    user = _postgres_user()
    with tempfile.TemporaryDirectory(prefix="jobwire-pgbouncer-") as tmp:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(tmp, entry.pw_uid, entry.pw_gid)
        for attempt in range(3):  # a port taken before pgbouncer binds it: another one
            port = _free_port()
            config = _pgbouncer_config(postgres_url, port, tmp, pool_size)
            log_path = os.path.join(tmp, "pgbouncer.log")
            with open(log_path, "wb") as log:  # it logs to stderr
                proc = subprocess.Popen(
                    [binary, config], stdout=log, stderr=subprocess.STDOUT, user=user
                )
            try:
                _wait_for_listen(proc, port, log_path)
                break
            except RuntimeError:
                proc.kill()
                proc.wait(timeout=5)
                if attempt == 2:
                    raise
        server = urlsplit(postgres_url)
        try:
            yield urlunsplit(server._replace(netloc=f"{server.username}@127.0.0.1:{port}"))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@pytest.fixture(scope="session")
def pgbouncer_url(postgres_url: str) -> Iterator[str]:
    """URL of a PgBouncer in transaction mode in front of the tests' PostgreSQL, started
    for this process's session (a plain URL: no Jobwire options)."""
    with pgbouncer_server(postgres_url) as url:
        yield url


@pytest.fixture
def start_pgbouncer() -> Callable[..., contextlib.AbstractContextManager[str]]:
    """``pgbouncer_server``, for a test that needs a PgBouncer of its own (a pool size of
    its own): ``with start_pgbouncer(postgres_url, pool_size=2) as url: ...``."""
    return pgbouncer_server


@pytest.fixture
def pgbouncer_queue_url(pgbouncer_url: str, postgres_url: str) -> str:
    """The queue URL of the store through PgBouncer: no prepared statements, and LISTEN
    on a direct connection."""
    options = urlencode({"prepared_statements": "false", "listen_url": postgres_url})
    return f"{pgbouncer_url}{'&' if '?' in pgbouncer_url else '?'}{options}"


# Under pytest-xdist the controller starts the servers once and hands their addresses to
# every worker (``pytest_configure_node``): one Redis, one PostgreSQL, one service per store
# for the conformance suite and one for the REST and gRPC tests (``shared_services``) for
# the whole run, instead of a set per worker, each worker paying their start-up
# on a loaded machine. The tests keep out of each other's way as they do in one process:
# every test uses queues of its own, and a test that disrupts a server starts its own.
_SHARED_KEY = "jobwire_shared"
_SHARED = pytest.StashKey[dict[str, Any]]()
_SHARED_STOP = pytest.StashKey[contextlib.ExitStack]()


def shared_servers(config: pytest.Config) -> dict[str, Any]:
    """What the pytest-xdist controller started for this worker: ``redis_url``,
    ``postgres_url``, ``redis_cluster_url`` and ``services`` (store -> ``GrpcService``
    fields); empty when not a worker."""
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    return dict(workerinput.get(_SHARED_KEY, {}))


def _is_xdist_controller(config: pytest.Config) -> bool:
    return (
        config.getoption("dist", "no") != "no"
        and bool(config.getoption("tx", None))
        and not hasattr(config, "workerinput")
        and not config.getoption("collectonly")
    )


def pytest_configure(config: pytest.Config) -> None:
    """On the pytest-xdist controller: start the servers the workers share."""
    if not _is_xdist_controller(config):
        return
    from cluster_fixtures import CLUSTER_URL_ENV, local_cluster  # plugins of ours: imported
    from service_fixtures import shared_services  # once registered

    with contextlib.ExitStack() as stack:
        redis = os.environ.get(REDIS_URL_ENV) or stack.enter_context(redis_server())
        postgres = os.environ.get(POSTGRES_URL_ENV) or stack.enter_context(postgres_server())
        cluster = os.environ.get(CLUSTER_URL_ENV) or stack.enter_context(local_cluster()).url
        sqlite_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="jobwire-sqlite-"))
        services = stack.enter_context(shared_services(redis, postgres, sqlite_dir))
        config.stash[_SHARED_STOP] = stack.pop_all()  # all started: stopped at unconfigure
    config.stash[_SHARED] = {
        "redis_url": redis,
        "postgres_url": postgres,
        "redis_cluster_url": cluster,
        "services": {
            store: {"http": s.http, "target": s.target, "log_path": s.log_path}
            for store, s in services.items()
        },
    }


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Hand a pytest-xdist worker the shared servers' addresses."""
    node.workerinput[_SHARED_KEY] = node.config.stash[_SHARED]


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the shared servers (services first, then the stores)."""
    stack = config.stash.get(_SHARED_STOP, None)
    if stack is not None:
        stack.close()
