"""Bearer tokens and roles on gRPC: the same tokens as REST, checked by one interceptor."""

from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_helpers import GrpcService, RawWork, error_code, spec, start_grpc_service, stubs
from grpc_helpers import unique_name as fresh_name
from service_fixtures import stop_service

from jobwire import Queue
from jobwire.errors import Forbidden, Unauthenticated
from jobwire.v1 import jobwire_pb2 as pb

pytestmark = pytest.mark.xdist_group("grpc-auth")  # one guarded service

TOKENS = "adm-token:admin,wrk-token:worker,cli-token:client"


@pytest.fixture(scope="module")
def guarded(redis_url: str) -> Iterator[GrpcService]:
    """A service that requires tokens."""
    service = start_grpc_service(redis_url, "--tokens", TOKENS)
    try:
        yield service
    finally:
        stop_service(service.proc)


async def _code_of(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_no_or_an_unknown_token_is_unauthenticated(
    guarded: GrpcService, token: str | None
) -> None:
    async with stubs(guarded.target, token) as api:
        request = pb.EnqueueRequest(queue=fresh_name(), job=spec())
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await api.jobs.Enqueue(request, metadata=api.metadata)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_code(caught.value) == "unauthenticated"
        stream = RawWork(api, fresh_name())
        with pytest.raises(grpc.aio.AioRpcError) as streamed:
            await stream.recv()
        assert streamed.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_roles_grant_what_they_name(guarded: GrpcService) -> None:
    queue = fresh_name()
    denied, ok = grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.OK
    enqueue = pb.EnqueueRequest(queue=queue, job=spec())
    lease = pb.LeaseRequest(queue=queue, worker_id="w")
    async with stubs(guarded.target, "cli-token") as client:
        created = await client.jobs.Enqueue(enqueue, metadata=client.metadata)
        delete = pb.DeleteJobRequest(job_id=created.job.id)
        assert await _code_of(client.work.Lease(lease, metadata=client.metadata)) == denied
        assert await _code_of(client.jobs.DeleteJob(delete, metadata=client.metadata)) == denied
        get = pb.GetJobRequest(job_id=created.job.id)
        assert await _code_of(client.jobs.GetJob(get, metadata=client.metadata)) == ok
        stream = RawWork(client, queue)
        with pytest.raises(grpc.aio.AioRpcError) as streamed:
            await stream.recv()
        assert streamed.value.code() == denied
    async with stubs(guarded.target, "wrk-token") as worker:
        followup = pb.EnqueueRequest(queue=f"{queue}-next", job=spec())  # workers may enqueue
        assert await _code_of(worker.jobs.Enqueue(followup, metadata=worker.metadata)) == ok
        abort = pb.AbortJobRequest(job_id=created.job.id)
        assert await _code_of(worker.jobs.AbortJob(abort, metadata=worker.metadata)) == denied
        assert await _code_of(worker.jobs.GetJob(get, metadata=worker.metadata)) == ok
        stream = RawWork(worker, queue)
        stream.credit(1)
        [pushed] = await stream.jobs(1)
        assert pushed.id == created.job.id
        stream.close()
    async with stubs(guarded.target, "adm-token") as admin:
        assert await _code_of(admin.jobs.DeleteJob(delete, metadata=admin.metadata)) == ok


async def test_health_and_reflection_need_no_token(guarded: GrpcService) -> None:
    async with stubs(guarded.target) as api:
        health = health_pb2_grpc.HealthStub(api.channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_the_sdk_sends_the_token_from_the_url_or_the_environment(
    guarded: GrpcService, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Queue.from_url(f"grpc://:cli-token@{guarded.target}", name=fresh_name()) as queue:
        assert await queue.enqueue("fn") is not None
        with pytest.raises(Forbidden):
            await queue.lease("w", 1)
    monkeypatch.setenv("JOBWIRE_TOKEN", "wrk-token")
    async with Queue.from_url(f"grpc://{guarded.target}", name=fresh_name()) as queue:
        assert await queue.lease("w", 1) == ([], None)
    monkeypatch.delenv("JOBWIRE_TOKEN")
    async with Queue.from_url(f"grpc://{guarded.target}", name=fresh_name()) as queue:
        with pytest.raises(Unauthenticated):
            await queue.enqueue("fn")
