"""WorkerService over the wire: the unary calls, and the Work stream's protocol."""

import asyncio
import time

import grpc
import httpx
import orjson
import pytest
from grpc_helpers import GrpcService, RawWork, Stubs, error_code, spec

from jobwire.v1 import jobwire_pb2 as pb


async def _enqueue(api: Stubs, queue: str, count: int = 1, **options: object) -> list[pb.Job]:
    jobs = [spec("f", **options) for _ in range(count)]  # type: ignore[arg-type]
    reply = await api.jobs.EnqueueBatch(pb.EnqueueBatchRequest(queue=queue, jobs=jobs))
    return [r.job for r in reply.jobs]


async def _status(api: Stubs, job_id: str) -> int:
    return int((await api.jobs.GetJob(pb.GetJobRequest(job_id=job_id))).status)


async def test_lease_heartbeat_complete(api: Stubs, queue_name: str) -> None:
    [job] = await _enqueue(api, queue_name, heartbeat=30)
    reply = await api.work.Lease(
        pb.LeaseRequest(queue=queue_name, worker_id="w1", max_jobs=5, functions=["f"])
    )
    [leased] = reply.jobs
    assert leased.id == job.id and leased.lease and leased.worker == "w1"
    assert leased.status == pb.STATUS_ACTIVE and leased.attempts == 1
    assert not reply.HasField("next_due_s")
    ref = pb.LeaseRef(job_id=job.id, lease=leased.lease, progress=0.25, meta_json='{"step": 1}')
    beat = await api.work.Heartbeat(pb.HeartbeatRequest(queue=queue_name, leases=[ref]))
    assert list(beat.states) == [pb.LEASE_STATE_ACTIVE]
    stored = await api.jobs.GetJob(pb.GetJobRequest(job_id=job.id))
    assert stored.progress == 0.25 and orjson.loads(stored.meta_json) == {"step": 1}
    done = await api.work.Complete(
        pb.CompleteRequest(queue=queue_name, job_id=job.id, lease=leased.lease, result_json='"ok"')
    )
    assert done.status == pb.STATUS_COMPLETE and orjson.loads(done.result_json) == "ok"
    stale = pb.CompleteRequest(queue=queue_name, job_id=job.id, lease=leased.lease)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.work.Complete(stale)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_code(caught.value) == "stale_lease"
    lost = await api.work.Heartbeat(
        pb.HeartbeatRequest(queue=queue_name, leases=[pb.LeaseRef(job_id=job.id, lease="old")])
    )
    assert list(lost.states) == [pb.LEASE_STATE_LOST]


async def test_fail_retries_then_fails(api: Stubs, queue_name: str) -> None:
    [job] = await _enqueue(api, queue_name, retries=1)
    error = pb.JobError(type="ValueError", message="boom")
    for expected in (pb.STATUS_QUEUED, pb.STATUS_FAILED):
        [leased] = (await api.work.Lease(pb.LeaseRequest(queue=queue_name, worker_id="w"))).jobs
        failed = await api.work.Fail(
            pb.FailRequest(queue=queue_name, job_id=job.id, lease=leased.lease, error=error)
        )
        assert failed.status == expected
        assert (failed.error.type, failed.error.message) == ("ValueError", "boom")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.work.Fail(pb.FailRequest(queue=queue_name, job_id=job.id, lease="stale"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_fail_without_retry_and_settle_and_sweep(api: Stubs, queue_name: str) -> None:
    first, second = await _enqueue(api, queue_name, 2, retries=3)
    leased = await api.work.Lease(pb.LeaseRequest(queue=queue_name, worker_id="w", max_jobs=2))
    by_id = {job.id: job for job in leased.jobs}
    final = await api.work.Fail(pb.FailRequest(
        queue=queue_name, job_id=first.id, lease=by_id[first.id].lease, no_retry=True
    ))  # fmt: skip
    assert final.status == pb.STATUS_FAILED
    outcome = pb.Outcome(job_id=second.id, lease=by_id[second.id].lease,
                         status=pb.STATUS_QUEUED, delay_s=60)  # fmt: skip
    settled = await api.work.Settle(pb.SettleRequest(queue=queue_name, outcomes=[outcome]))
    assert list(settled.settled) == [True]
    assert await _status(api, second.id) == pb.STATUS_SCHEDULED
    again = await api.work.Settle(pb.SettleRequest(queue=queue_name, outcomes=[outcome]))
    assert list(again.settled) == [False]
    [short] = await _enqueue(api, queue_name, heartbeat=0.5)
    await api.work.Lease(pb.LeaseRequest(queue=queue_name, worker_id="dead"))
    assert (await api.work.Sweep(pb.SweepRequest(queue=queue_name))).reclaimed == 0
    await asyncio.sleep(0.7)
    assert (await api.work.Sweep(pb.SweepRequest(queue=queue_name))).reclaimed == 1
    assert await _status(api, short.id) == pb.STATUS_FAILED


async def test_lease_reports_the_next_scheduled_job(api: Stubs, queue_name: str) -> None:
    await _enqueue(api, queue_name, scheduled=time.time() + 30)
    reply = await api.work.Lease(pb.LeaseRequest(queue=queue_name, worker_id="w"))
    assert list(reply.jobs) == [] and 25 < reply.next_due_s <= 30


@pytest.mark.parametrize(
    "request_",
    [
        pb.LeaseRequest(queue="q", worker_id=""),
        pb.LeaseRequest(queue="q", worker_id="w", max_jobs=5000),
        pb.LeaseRequest(queue="q", worker_id="w", lease_s=-1),
        pb.LeaseRequest(queue="a/b", worker_id="w"),
    ],
)
async def test_bad_leases_are_invalid_argument(api: Stubs, request_: pb.LeaseRequest) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.work.Lease(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_settle_refuses_a_status_no_attempt_ends_with(api: Stubs, queue_name: str) -> None:
    outcome = pb.Outcome(job_id="j", lease="l", status=pb.STATUS_ACTIVE)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.work.Settle(pb.SettleRequest(queue=queue_name, outcomes=[outcome]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_work_pushes_no_more_than_the_credits(api: Stubs, queue_name: str) -> None:
    await _enqueue(api, queue_name, 5)
    stream = RawWork(api, queue_name, "pushed")
    stream.credit(2)
    first = await stream.jobs(2)
    assert all(job.lease and job.worker == "pushed" for job in first)
    with pytest.raises(TimeoutError):
        await stream.recv(timeout_s=0.5)
    stream.credit(1)
    [third] = await stream.jobs(1)
    assert third.id not in {job.id for job in first}
    queued = await api.jobs.ListJobs(pb.ListJobsRequest(queue=queue_name, status=pb.STATUS_QUEUED))
    assert len(queued.jobs) == 2
    stream.close()


async def test_work_pushes_new_jobs_as_they_arrive(api: Stubs, queue_name: str) -> None:
    stream = RawWork(api, queue_name)
    stream.credit(10)
    await asyncio.sleep(0.3)
    [job] = await _enqueue(api, queue_name)
    [pushed] = await stream.jobs(1, timeout_s=2)
    assert pushed.id == job.id
    stream.close()


async def test_work_heartbeats_and_results_answer_by_request_id(
    api: Stubs, queue_name: str
) -> None:
    await _enqueue(api, queue_name, 2)
    stream = RawWork(api, queue_name)
    stream.credit(2)
    one, two = await stream.jobs(2)
    refs = [pb.LeaseRef(job_id=one.id, lease=one.lease), pb.LeaseRef(job_id=two.id, lease="x")]
    stream.send(pb.WorkRequest(heartbeat=pb.WorkHeartbeat(request_id=7, leases=refs)))
    outcome = pb.Outcome(job_id=one.id, lease=one.lease, status=pb.STATUS_COMPLETE,
                         result_json="[1]", function="f")  # fmt: skip
    stream.send(pb.WorkRequest(results=pb.WorkResults(request_id=8, outcomes=[outcome])))
    replies = {}
    for _ in range(2):
        response = await stream.recv()
        kind = response.WhichOneof("kind")
        replies[getattr(response, kind).request_id] = response
    assert list(replies[7].heartbeat.states) == [pb.LEASE_STATE_ACTIVE, pb.LEASE_STATE_LOST]
    assert list(replies[8].results.settled) == [True]
    stored = await api.jobs.GetJob(pb.GetJobRequest(job_id=one.id))
    assert stored.status == pb.STATUS_COMPLETE and orjson.loads(stored.result_json) == [1]
    stream.close()


@pytest.mark.parametrize("via", ["grpc", "rest"])
async def test_an_abort_is_pushed_at_once(
    api: Stubs, queue_name: str, grpc_service: GrpcService, via: str
) -> None:
    [job] = await _enqueue(api, queue_name)
    stream = RawWork(api, queue_name)
    stream.credit(1)
    [pushed] = await stream.jobs(1)
    if via == "grpc":
        await api.jobs.AbortJob(pb.AbortJobRequest(job_id=job.id, reason="stop it"))
    else:
        async with httpx.AsyncClient(base_url=grpc_service.http) as http:
            response = await http.post(f"/v1/jobs/{job.id}/abort", json={"error": "stop it"})
            assert response.status_code == 200, response.text
    response = await stream.recv(timeout_s=1)
    assert response.WhichOneof("kind") == "abort"
    assert (response.abort.job_id, response.abort.reason) == (job.id, "stop it")
    aborted = pb.Outcome(job_id=job.id, lease=pushed.lease, status=pb.STATUS_ABORTED)
    stream.send(pb.WorkRequest(results=pb.WorkResults(request_id=1, outcomes=[aborted])))
    assert list((await stream.recv()).results.settled) == [True]
    assert await _status(api, job.id) == pb.STATUS_ABORTED
    stream.close()


async def test_stop_voids_credits(api: Stubs, queue_name: str) -> None:
    stream = RawWork(api, queue_name)
    stream.credit(5)
    await asyncio.sleep(0.2)
    stream.send(pb.WorkRequest(stop=pb.WorkStop()))
    assert (await stream.recv()).WhichOneof("kind") == "stopped"
    [job] = await _enqueue(api, queue_name)
    with pytest.raises(TimeoutError):
        await stream.recv(timeout_s=0.5)
    assert await _status(api, job.id) == pb.STATUS_QUEUED
    stream.close()


async def test_the_stream_must_start_with_hello(api: Stubs) -> None:
    async def requests():  # type: ignore[no-untyped-def]
        yield pb.WorkRequest(credit=pb.WorkCredit(credits=1))

    call = api.work.Work(requests())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "hello" in (caught.value.details() or "")


async def test_a_malformed_message_ends_the_stream(api: Stubs, queue_name: str) -> None:
    stream = RawWork(api, queue_name)
    stream.credit(-1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stream.recv()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
