"""A real Redis Cluster for the tests: 3 masters with a replica each, on loopback.

Six ``redis-server --cluster-enabled yes`` processes on free ports in a temporary
directory, joined by ``redis-cli --cluster create --cluster-replicas 1``. A short node
timeout (1 s) lets a replica take over within a few seconds of its master's death, so a
test may SIGKILL a master and wait for the automatic failover.
"""

import contextlib
import dataclasses
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
import redis
from redis.cluster import key_slot
from service_fixtures import free_port

CLUSTER_URL_ENV = "JOBWIRE_TEST_REDIS_CLUSTER_URL"
NODES = 6
NODE_TIMEOUT_MS = 1000
START_DEADLINE_S = 30.0
START_ATTEMPTS = 3  # a port taken between free_port() and the bind: start again, elsewhere


@dataclasses.dataclass
class LocalCluster:
    """A running cluster of ``redis-server`` processes.

    Attributes:
        directory: Where the nodes keep their config files and logs.
        procs: Port -> the node's process.
    """

    directory: str
    procs: dict[int, subprocess.Popen[bytes]]

    @property
    def url(self) -> str:
        """Its ``redis+cluster://`` URL, naming every node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.procs)

    def client(self, port: int) -> redis.Redis:
        """A plain client of one node."""
        return redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2)

    def master_of(self, key: str) -> int:
        """The port of the master that owns ``key``'s slot (asked of a live node)."""
        slot = key_slot(key.encode())
        for port in self.alive():
            with contextlib.suppress(redis.RedisError), self.client(port) as node:
                for start, end, master, *_ in node.execute_command("CLUSTER SLOTS"):
                    if start <= slot <= end:
                        return int(master[1])
        raise RuntimeError(f"no live node knows who owns slot {slot}")

    def alive(self) -> list[int]:
        """Ports of the nodes still running."""
        return [port for port, proc in self.procs.items() if proc.poll() is None]

    def kill(self, port: int) -> None:
        """SIGKILL one node (it is not restarted)."""
        self.procs[port].send_signal(signal.SIGKILL)
        self.procs[port].wait(10)

    def wait_ok(self, deadline_s: float = START_DEADLINE_S) -> None:
        """Block until every live node says the cluster is ok, every slot is served, and
        every master's replica is in sync.

        Raises:
            RuntimeError: Not so within the deadline (with the last state seen).
        """
        deadline = time.monotonic() + deadline_s
        last = ""
        while time.monotonic() < deadline:
            last = self._state()
            if not last:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the cluster is not ok after {deadline_s:.0f} s: {last}\n{self.logs()}")

    def _state(self) -> str:
        """What is not ok yet ("" when all is)."""
        alive = self.alive()
        for port in alive:
            try:
                with self.client(port) as node:
                    info = node.cluster("INFO")
                    replication = node.info("replication")
            except redis.RedisError as exc:
                return f"{port}: {exc!r}"
            if info["cluster_state"] != "ok" or int(info["cluster_slots_ok"]) != 16384:
                return f"{port}: {info}"
            if replication["role"] == "slave" and replication["master_link_status"] != "up":
                return f"{port}: replica link {replication['master_link_status']}"
        masters = {port for port in alive if self._role(port) == "master"}
        if len(alive) == NODES and len(masters) != NODES // 2:
            return f"masters {sorted(masters)}"
        return ""

    def _role(self, port: int) -> str:
        with self.client(port) as node:
            return str(node.info("replication")["role"])

    def logs(self) -> str:
        """Every node's log (for a failure message)."""
        parts = []
        for port in self.procs:
            with open(os.path.join(self.directory, f"{port}.log"), errors="replace") as log:
                parts.append(f"--- node {port}:\n{log.read()[-3000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop every node and remove the directory."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs.values():
            proc.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)


def _start_node(binary: str, directory: str) -> tuple[int, subprocess.Popen[bytes]]:
    port, bus_port = free_port(), free_port()
    options = {
        "--port": str(port),
        "--cluster-port": str(bus_port),  # not port + 10000, which may be taken or too high
        "--bind": "127.0.0.1",
        "--cluster-enabled": "yes",
        "--cluster-config-file": f"nodes-{port}.conf",
        "--cluster-node-timeout": str(NODE_TIMEOUT_MS),
        "--cluster-replica-validity-factor": "0",  # a replica always may take over
        "--save": "",
        "--appendonly": "no",
        "--repl-diskless-sync": "yes",
        "--repl-diskless-sync-delay": "0",
        "--dir": directory,
        "--logfile": f"{port}.log",
    }
    proc = subprocess.Popen(
        [binary, *itertools.chain.from_iterable(options.items())],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return port, proc


def _wait_for_pings(cluster: LocalCluster) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    waiting = set(cluster.procs)
    while waiting and time.monotonic() < deadline:
        for port in list(waiting):
            if cluster.procs[port].poll() is not None:
                raise RuntimeError(f"redis-server on {port} exited:\n{cluster.logs()}")
            with contextlib.suppress(redis.RedisError), cluster.client(port) as node:
                if node.ping():
                    waiting.discard(port)
        time.sleep(0.05)
    if waiting:
        raise RuntimeError(f"redis-server on {sorted(waiting)} did not answer PING")


def _start_once(binary: str, cli: str) -> LocalCluster:
    cluster = LocalCluster(tempfile.mkdtemp(prefix="jobwire-cluster-"), {})
    try:
        for _ in range(NODES):
            port, proc = _start_node(binary, cluster.directory)
            cluster.procs[port] = proc
        _wait_for_pings(cluster)
        addresses = [f"127.0.0.1:{port}" for port in cluster.procs]
        done = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{done.stdout}{done.stderr}")
        cluster.wait_ok()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@contextlib.contextmanager
def local_cluster() -> Iterator[LocalCluster]:
    """A fresh cluster of 3 masters with a replica each; stopped and removed on exit.

    Raises:
        RuntimeError: redis-server or redis-cli is missing, or the cluster did not form.
    """
    binary, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if binary is None or cli is None:
        raise RuntimeError(
            f"redis-server and redis-cli must be on PATH (or set ${CLUSTER_URL_ENV})"
        )
    for attempt in range(START_ATTEMPTS):
        try:
            cluster = _start_once(binary, cli)
            break
        except RuntimeError as exc:
            if attempt == START_ATTEMPTS - 1 or "Address already in use" not in str(exc):
                raise
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(pytestconfig: pytest.Config) -> Iterator[str]:
    """URL of a Redis Cluster for the tests: the one the pytest-xdist controller shares with
    its workers, else ``$JOBWIRE_TEST_REDIS_CLUSTER_URL``, else one started for the session."""
    shared = getattr(pytestconfig, "workerinput", {}).get("jobwire_shared", {})
    url = shared.get("redis_cluster_url") or os.environ.get(CLUSTER_URL_ENV)
    if url:
        yield url
        return
    with local_cluster() as cluster:
        yield cluster.url


@pytest.fixture
def own_cluster() -> Iterator[LocalCluster]:
    """A cluster of the test's own, which it may break (kill a master, say)."""
    with local_cluster() as cluster:
        yield cluster
