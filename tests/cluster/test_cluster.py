"""Redis Cluster specifics: wake-ups follow the queue's slot to a new master, scripts come
back after a failover (a promoted replica has none cached), and WAIT for replicas."""

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
from cluster_fixtures import LocalCluster

from jobwire import Job, Queue, Worker
from jobwire.backends.redis.cluster import QUIET_CHECK_S
from jobwire.errors import Unavailable

pytestmark = pytest.mark.slow  # clusters of their own
FAILOVER_DEADLINE_S = 20.0
WAKE_UP_S = 2.0  # the workers poll every 30 s: only a wake-up is this fast
# A hung master's calls end at the store deadline until a quiet subscription's unanswered
# PING (two quiet checks) refreshes the client's map of slots.
HUNG_MASTER_S = 2 * QUIET_CHECK_S + 15


async def add(ctx: dict[str, object], *, a: int, b: int) -> int:
    return a + b


@contextlib.asynccontextmanager
async def _sleepy_worker(url: str, name: str) -> AsyncIterator[Queue]:
    """A queue and a worker on it that polls every 30 s: jobs start on wake-ups only."""
    queue = Queue.from_url(url, name=name)
    worker = Worker(queue, [add], poll_interval_s=30, handle_signals=False)
    running = asyncio.create_task(worker.start())
    try:
        yield queue
    finally:
        await worker.stop()
        await running
        await queue.close()


async def _applied_quickly(queue: Queue, a: int) -> None:
    started = time.monotonic()
    assert await queue.apply("add", a=a, b=1, wait_timeout=10) == a + 1
    assert time.monotonic() - started < WAKE_UP_S


async def _enqueued_within(queue: Queue, deadline_s: float) -> None:
    """Enqueue, trying again while the store is unavailable (a client's retries)."""
    async with asyncio.timeout(deadline_s):
        while True:
            with contextlib.suppress(Unavailable):
                await queue.enqueue("add", a=0, b=0)
                return


def _replica_of(cluster: LocalCluster, master: int) -> int:
    for port in cluster.alive():
        with cluster.client(port) as node:
            info = node.info("replication")
        if info["role"] == "slave" and int(info["master_port"]) == master:
            return port
    raise AssertionError(f"master {master} has no replica")


async def _wait_for_master(
    cluster: LocalCluster, key: str, port: int, deadline_s: float = FAILOVER_DEADLINE_S
) -> None:
    async with asyncio.timeout(deadline_s):
        while True:
            with contextlib.suppress(RuntimeError):
                if cluster.master_of(key) == port:
                    return
            await asyncio.sleep(0.05)


async def _manual_failover(cluster: LocalCluster, key: str, replica: int) -> None:
    """CLUSTER FAILOVER on ``replica``, asked again if it timed out (a loaded machine)."""
    for _ in range(4):
        with cluster.client(replica) as node:
            node.cluster("FAILOVER")
        with contextlib.suppress(TimeoutError):
            await _wait_for_master(cluster, key, replica, deadline_s=FAILOVER_DEADLINE_S / 4)
            return
    raise AssertionError(f"{replica} did not take over {key}'s slot")


@pytest.mark.parametrize("how", ["manual", "sigkill", "sigstop"])
async def test_wake_ups_and_scripts_follow_the_slot_to_a_new_master(
    own_cluster: LocalCluster, how: str
) -> None:
    name = f"follow-{uuid4().hex[:8]}"
    key = f"jobwire:{{{name}}}:"
    master = own_cluster.master_of(key)
    replica = _replica_of(own_cluster, master)
    async with _sleepy_worker(own_cluster.url, name) as queue:
        await _applied_quickly(queue, 1)
        if how == "manual":  # the old master stays up, as a replica: it unsubscribes us
            await _manual_failover(own_cluster, key, replica)
        elif how == "sigkill":
            own_cluster.kill(master)
            await _wait_for_master(own_cluster, key, replica)
        else:  # it hangs: calls to it neither fail nor answer until the map is refreshed
            own_cluster.procs[master].send_signal(signal.SIGSTOP)
            await _wait_for_master(own_cluster, key, replica)
            await _enqueued_within(queue, HUNG_MASTER_S)
        # The first job may wait for the subscription to move; the next are woken at once.
        assert await queue.apply("add", a=2, b=1, wait_timeout=15) == 3
        for a in range(3, 6):
            await _applied_quickly(queue, a)


async def test_scripts_load_again_after_a_script_flush(own_cluster: LocalCluster) -> None:
    name = f"flush-{uuid4().hex[:8]}"
    async with _sleepy_worker(own_cluster.url, name) as queue:
        await _applied_quickly(queue, 1)
        for port in own_cluster.alive():
            with own_cluster.client(port) as node:
                node.script_flush()
        await _applied_quickly(queue, 2)
    waiting = Queue.from_url(own_cluster.url + "?wait_replicas=1", name=name)
    try:
        for port in own_cluster.alive():
            with own_cluster.client(port) as node:
                node.script_flush()
        assert await waiting.enqueue("add", a=1, b=1) is not None
    finally:
        await waiting.close()


@pytest.mark.parametrize("store", ["cluster", "redis"])
async def test_wait_replicas_acknowledges_enqueues(
    store: str,
    redis_cluster_url: str,
    private_redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = redis_cluster_url if store == "cluster" else private_redis_url
    name = f"wait-{uuid4().hex[:8]}"
    async with Queue.from_url(url + "?wait_replicas=1&wait_timeout_ms=1000", name=name) as queue:
        with caplog.at_level(logging.WARNING, logger="jobwire.redis"):
            assert await queue.enqueue("add", a=1, b=1) is not None
            jobs = await queue.enqueue_many(Job("add", kwargs={"a": i, "b": 1}) for i in range(700))
        assert all(jobs)
        assert len(await queue.jobs(limit=1000)) == 701
    warned = [r.getMessage() for r in caplog.records if "replicas acknowledged" in r.getMessage()]
    if store == "cluster":  # each master has a replica
        assert not warned
    else:  # no replica: answered all the same, with a warning per call
        assert warned == [f"enqueue on {name}: 0 of 1 replicas acknowledged it within 1000 ms"] * 2


async def test_more_replicas_than_there_are_is_a_warning(
    redis_cluster_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"wait-{uuid4().hex[:8]}"
    url = redis_cluster_url + "?wait_replicas=2&wait_timeout_ms=50"
    async with Queue.from_url(url, name=name) as queue:
        with caplog.at_level(logging.WARNING, logger="jobwire.redis"):
            job = await queue.enqueue("add", a=1, b=1)
        assert job is not None and await queue.job(job.id) is not None
    assert "1 of 2 replicas acknowledged it within 50 ms" in caplog.text
