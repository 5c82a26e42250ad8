"""The bare REST limit: what FastAPI + uvicorn + one Redis LPUSH cost, nothing else.

One process, run the way `jobwire serve` runs its REST half (service/jobwire/server/serve.py:
uvicorn with httptools, inside a uvloop event loop, lifespan on, no access log):

* ``POST /v1/queues/{queue}/jobs``: parses the same JSON body as Jobwire's enqueue
  (``{"function": ..., "kwargs": {...}}``), does one ``LPUSH`` (redis.asyncio, hiredis) and
  answers a small JSON object with 201;
* ``GET /ping``: answers ``{}`` (the bare round trip of the latency comparison).

Usage:
    python bench/bare_rest.py --port 8081 --redis-url redis://127.0.0.1:6379/0
"""

import argparse
import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import redis.asyncio as aioredis
import uvicorn
import uvloop
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field


class EnqueueBody(BaseModel):
    """The fields of the benchmark's enqueue body."""

    function: str = Field(min_length=1, max_length=200)
    kwargs: dict[str, Any] = Field(default_factory=dict)


def create_app(redis_url: str) -> FastAPI:
    """The bare app; its Redis client lives in the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.redis = aioredis.Redis.from_url(redis_url)
        try:
            yield
        finally:
            await app.state.redis.aclose()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/v1/queues/{queue}/jobs", status_code=201)
    async def enqueue(queue: str, body: EnqueueBody, request: Request) -> Response:
        job_id = uuid.uuid4().hex
        job = {"id": job_id, "function": body.function, "kwargs": body.kwargs}
        await request.app.state.redis.lpush(f"bare:{queue}", orjson.dumps(job))
        answer = orjson.dumps({"id": job_id, "queue": queue, "status": "queued"})
        return Response(answer, status_code=201, media_type="application/json")

    @app.get("/ping")
    async def ping() -> Response:
        return Response(b"{}", media_type="application/json")

    return app


async def serve(port: int, redis_url: str) -> None:
    """Serve on 127.0.0.1:``port`` until SIGTERM/SIGINT."""
    config = uvicorn.Config(
        create_app(redis_url),
        host="127.0.0.1",
        port=port,
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
    )
    await uvicorn.Server(config).serve()


def main() -> None:
    """Parse the options and serve."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.port, args.redis_url))


if __name__ == "__main__":
    main()
