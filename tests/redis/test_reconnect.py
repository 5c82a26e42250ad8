"""Redis-specific resilience: the pub/sub listener survives a dropped connection."""

import asyncio
from uuid import uuid4

from redis.asyncio import Redis

from jobwire import Queue, Worker


async def add(ctx: dict[str, object], *, a: int, b: int) -> int:
    return a + b


async def test_wake_ups_and_waits_survive_a_killed_pubsub_connection(
    private_redis_url: str,
) -> None:
    # A server of its own: the kill below hits every pub/sub connection of the server.
    redis_url = private_redis_url
    queue = Queue.from_url(redis_url, name=f"reconnect-{uuid4().hex[:8]}")
    # A long poll interval: if pub/sub did not come back, the job would wait 30 s.
    worker = Worker(queue, [add], poll_interval_s=30, handle_signals=False)
    running = asyncio.create_task(worker.start())
    admin = Redis.from_url(redis_url)
    try:
        assert await queue.apply("add", a=1, b=2, wait_timeout=5) == 3
        assert await admin.client_kill_filter(_type="pubsub") >= 1

        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await queue.apply("add", a=2, b=2, wait_timeout=5) == 4
        assert loop.time() - started < 3
    finally:
        await worker.stop()
        await running
        await queue.close()
        await admin.aclose()
