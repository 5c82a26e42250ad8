"""Helpers of the gRPC tests: stubs, messages, a Work stream driven by hand (and, from
service_fixtures, a `jobwire serve` with a gRPC port)."""

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import orjson
from service_fixtures import GrpcService, start_grpc_service

from jobwire.v1 import jobwire_pb2 as pb
from jobwire.v1 import jobwire_pb2_grpc as pb_grpc

__all__ = [  # the service helpers live in service_fixtures; the gRPC tests import them here
    "GrpcService", "RawWork", "Stubs", "error_code", "spec", "start_grpc_service", "stubs",
    "unique_name",
]  # fmt: skip


@dataclasses.dataclass
class Stubs:
    """Raw stubs on one channel, with the caller's metadata."""

    channel: grpc.aio.Channel
    jobs: Any
    work: Any
    metadata: tuple[tuple[str, str], ...]


@contextlib.asynccontextmanager
async def stubs(target: str, token: str | None = None) -> AsyncIterator[Stubs]:
    """Stubs of both services on a fresh channel (closed on exit)."""
    channel = grpc.aio.insecure_channel(target)
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    try:
        yield Stubs(
            channel, pb_grpc.JobServiceStub(channel), pb_grpc.WorkerServiceStub(channel), metadata
        )
    finally:
        await channel.close()


def unique_name(prefix: str = "g") -> str:
    """A queue name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def spec(function: str = "fn", **options: Any) -> pb.JobSpec:
    """A JobSpec; ``kwargs`` given as a dict."""
    kwargs = options.pop("kwargs", {})
    return pb.JobSpec(function=function, kwargs_json=orjson.dumps(kwargs).decode(), **options)


def error_code(exc: grpc.aio.AioRpcError) -> str | None:
    """Jobwire's own error code from the trailing metadata."""
    return dict(exc.trailing_metadata() or ()).get("jobwire-error")  # type: ignore[no-any-return]


class RawWork:
    """A Work stream driven by hand: ``send`` requests, ``recv`` responses."""

    def __init__(self, api: Stubs, queue: str, worker_id: str = "raw", lease_s: float = 0) -> None:
        self._requests: asyncio.Queue[pb.WorkRequest | None] = asyncio.Queue()
        hello = pb.WorkHello(queue=queue, worker_id=worker_id, lease_s=lease_s, functions=["f"])
        self._requests.put_nowait(pb.WorkRequest(hello=hello))
        self.call = api.work.Work(self._feed(), metadata=api.metadata)
        self._responses: asyncio.Queue[Any] = asyncio.Queue()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for response in self.call:
                self._responses.put_nowait(response)
            self._responses.put_nowait(grpc.aio.EOF)
        except grpc.aio.AioRpcError as exc:
            self._responses.put_nowait(exc)

    async def _feed(self) -> AsyncIterator[pb.WorkRequest]:
        while (request := await self._requests.get()) is not None:
            yield request

    def send(self, request: pb.WorkRequest) -> None:
        """Queue a request for the stream."""
        self._requests.put_nowait(request)

    def credit(self, credits: int) -> None:
        """Grant credits."""
        self.send(pb.WorkRequest(credit=pb.WorkCredit(credits=credits)))

    async def recv(self, timeout_s: float = 5.0) -> pb.WorkResponse:
        """The next response (fails the test after ``timeout_s``)."""
        response = await asyncio.wait_for(self._responses.get(), timeout_s)
        if isinstance(response, grpc.aio.AioRpcError):
            raise response
        assert response is not grpc.aio.EOF, "the Work stream ended"
        return response  # type: ignore[no-any-return]

    async def ended(self, timeout_s: float = 5.0) -> grpc.StatusCode:
        """Wait for the end of the stream; its status code."""
        await asyncio.wait_for(self._reader, timeout_s)
        return await self.call.code()  # type: ignore[no-any-return]

    async def jobs(self, count: int, timeout_s: float = 5.0) -> list[pb.Job]:
        """Receive pushes until ``count`` jobs came (other responses are a failure)."""
        jobs: list[pb.Job] = []
        while len(jobs) < count:
            response = await self.recv(timeout_s)
            assert response.WhichOneof("kind") == "jobs", response
            jobs += response.jobs.jobs
        return jobs

    def close(self) -> None:
        """Half-close: the worker sends nothing more."""
        self._requests.put_nowait(None)
