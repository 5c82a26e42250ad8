"""JobService over the wire: every RPC, and the status codes of bad requests."""

import asyncio
import time

import grpc
import orjson
import pytest
from grpc_helpers import Stubs, error_code, spec

from jobwire.v1 import jobwire_pb2 as pb


async def _expect_error(call: object, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == code, caught.value.details()
    return caught.value


async def _lease_one(api: Stubs, queue: str) -> pb.Job:
    reply = await api.work.Lease(pb.LeaseRequest(queue=queue, worker_id="w", max_jobs=1))
    assert len(reply.jobs) == 1
    return reply.jobs[0]


async def _complete(api: Stubs, queue: str, job: pb.Job, result: object) -> pb.Job:
    request = pb.CompleteRequest(
        queue=queue, job_id=job.id, lease=job.lease, result_json=orjson.dumps(result).decode()
    )
    return await api.work.Complete(request)


async def test_enqueue_then_a_duplicate_key_answers_the_existing_job(
    api: Stubs, queue_name: str
) -> None:
    job = spec("send", kwargs={"to": "a"}, key="k1", retries=2, priority=5, timeout=3.5)
    first = await api.jobs.Enqueue(pb.EnqueueRequest(queue=queue_name, job=job))
    assert not first.duplicate
    assert first.job.status == pb.STATUS_QUEUED
    assert orjson.loads(first.job.kwargs_json) == {"to": "a"}
    assert (first.job.key, first.job.retries, first.job.priority) == ("k1", 2, 5)
    assert first.job.timeout == 3.5 and first.job.ttl == 600 and first.job.lease == ""
    again = await api.jobs.Enqueue(pb.EnqueueRequest(queue=queue_name, job=spec("send", key="k1")))
    assert again.duplicate and again.job.id == first.job.id


async def test_enqueue_batch_answers_in_order(api: Stubs, queue_name: str) -> None:
    jobs = [spec("f", kwargs={"i": i}) for i in range(3)] + [spec("f", id="fixed-id")]
    reply = await api.jobs.EnqueueBatch(pb.EnqueueBatchRequest(queue=queue_name, jobs=jobs))
    assert [orjson.loads(r.job.kwargs_json).get("i") for r in reply.jobs] == [0, 1, 2, None]
    assert reply.jobs[3].job.id == "fixed-id"
    assert not any(r.duplicate for r in reply.jobs)
    again = await api.jobs.EnqueueBatch(
        pb.EnqueueBatchRequest(queue=queue_name, jobs=[spec("f", id="fixed-id")])
    )
    assert again.jobs[0].duplicate


async def test_apply_waits_for_the_end(api: Stubs, queue_name: str) -> None:
    apply = asyncio.ensure_future(
        api.jobs.Apply(pb.ApplyRequest(queue=queue_name, job=spec("add")), timeout=10)
    )
    await asyncio.sleep(0.2)
    assert not apply.done()
    job = await _lease_one(api, queue_name)
    await _complete(api, queue_name, job, 42)
    reply = await asyncio.wait_for(apply, 5)
    assert reply.job.status == pb.STATUS_COMPLETE
    assert orjson.loads(reply.job.result_json) == 42


async def test_apply_answers_before_its_deadline_with_the_unfinished_job(
    api: Stubs, queue_name: str
) -> None:
    started = time.monotonic()
    reply = await api.jobs.Apply(pb.ApplyRequest(queue=queue_name, job=spec("slow")), timeout=1.5)
    assert reply.job.status == pb.STATUS_QUEUED
    assert 0.8 < time.monotonic() - started < 1.5


async def test_get_job_and_its_wait(api: Stubs, queue_name: str) -> None:
    created = (await api.jobs.Enqueue(pb.EnqueueRequest(queue=queue_name, job=spec()))).job
    fetched = await api.jobs.GetJob(pb.GetJobRequest(job_id=created.id))
    assert fetched.id == created.id and fetched.queue == queue_name
    started = time.monotonic()
    waited = await api.jobs.GetJob(
        pb.GetJobRequest(job_id=created.id, queue=queue_name, wait_s=0.5)
    )
    assert waited.status == pb.STATUS_QUEUED and time.monotonic() - started >= 0.45
    waiting = asyncio.ensure_future(api.jobs.GetJob(pb.GetJobRequest(job_id=created.id, wait_s=10)))
    await _complete(api, queue_name, await _lease_one(api, queue_name), "done")
    assert (await asyncio.wait_for(waiting, 5)).status == pb.STATUS_COMPLETE


async def test_watch_job_streams_changes_until_it_finishes(api: Stubs, queue_name: str) -> None:
    created = (await api.jobs.Enqueue(pb.EnqueueRequest(queue=queue_name, job=spec()))).job
    seen: list[tuple[int, float]] = []

    async def watch() -> None:
        async for job in api.jobs.WatchJob(pb.WatchJobRequest(job_id=created.id)):
            seen.append((job.status, job.progress))

    watcher = asyncio.ensure_future(watch())
    await asyncio.sleep(0.3)
    leased = await _lease_one(api, queue_name)
    await asyncio.sleep(0.3)
    ref = pb.LeaseRef(job_id=leased.id, lease=leased.lease, progress=0.5)
    await api.work.Heartbeat(pb.HeartbeatRequest(queue=queue_name, leases=[ref]))
    await asyncio.sleep(0.3)
    await _complete(api, queue_name, leased, None)
    await asyncio.wait_for(watcher, 5)
    assert seen[0] == (pb.STATUS_QUEUED, 0.0)
    assert (pb.STATUS_ACTIVE, 0.5) in seen
    assert seen[-1] == (pb.STATUS_COMPLETE, 1.0)


async def test_watch_ends_not_found_when_the_job_is_deleted(api: Stubs, queue_name: str) -> None:
    created = (await api.jobs.Enqueue(pb.EnqueueRequest(queue=queue_name, job=spec()))).job
    call = api.jobs.WatchJob(pb.WatchJobRequest(job_id=created.id, queue=queue_name))
    first = await call.read()
    assert first.id == created.id
    await api.jobs.DeleteJob(pb.DeleteJobRequest(job_id=created.id))
    try:  # read() raises or gives EOF, depending on when the status arrived
        assert await asyncio.wait_for(call.read(), 5) is grpc.aio.EOF
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == grpc.StatusCode.NOT_FOUND
    assert await call.code() == grpc.StatusCode.NOT_FOUND


async def test_abort_retry_and_delete(api: Stubs, queue_name: str) -> None:
    created = (await api.jobs.Enqueue(pb.EnqueueRequest(queue=queue_name, job=spec()))).job
    live = await _expect_error(
        api.jobs.RetryJob(pb.RetryJobRequest(job_id=created.id)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert error_code(live) == "invalid_state"
    aborted = await api.jobs.AbortJob(pb.AbortJobRequest(job_id=created.id, reason="no more"))
    assert aborted.status == pb.STATUS_ABORTED
    assert (aborted.error.type, aborted.error.message) == ("Aborted", "no more")
    retried = await api.jobs.RetryJob(pb.RetryJobRequest(job_id=created.id, queue=queue_name))
    assert retried.status == pb.STATUS_QUEUED
    await api.jobs.DeleteJob(pb.DeleteJobRequest(job_id=created.id))
    await _expect_error(
        api.jobs.GetJob(pb.GetJobRequest(job_id=created.id)), grpc.StatusCode.NOT_FOUND
    )


async def test_list_jobs_pages_and_filters(api: Stubs, queue_name: str) -> None:
    jobs = [spec("a") for _ in range(5)] + [spec("b") for _ in range(2)]
    await api.jobs.EnqueueBatch(pb.EnqueueBatchRequest(queue=queue_name, jobs=jobs))
    first = await api.jobs.ListJobs(pb.ListJobsRequest(queue=queue_name, page_size=4))
    assert len(first.jobs) == 4 and first.next_page_token
    rest = await api.jobs.ListJobs(
        pb.ListJobsRequest(queue=queue_name, page_size=4, page_token=first.next_page_token)
    )
    assert len(rest.jobs) == 3 and not rest.next_page_token
    assert len({j.id for j in [*first.jobs, *rest.jobs]}) == 7
    only_b = await api.jobs.ListJobs(pb.ListJobsRequest(queue=queue_name, function="b"))
    assert [j.function for j in only_b.jobs] == ["b", "b"]
    done = await api.jobs.ListJobs(pb.ListJobsRequest(queue=queue_name, status=pb.STATUS_COMPLETE))
    assert list(done.jobs) == []


async def test_get_queue_and_list_queues(api: Stubs, queue_name: str) -> None:
    await api.jobs.EnqueueBatch(
        pb.EnqueueBatchRequest(queue=queue_name, jobs=[spec(), spec(), spec()])
    )
    await _lease_one(api, queue_name)
    info = await api.jobs.GetQueue(pb.GetQueueRequest(queue=queue_name))
    assert info.name == queue_name
    assert dict(info.counts) == {"queued": 2, "scheduled": 0, "active": 1, "aborting": 0,
                                 "complete": 0, "failed": 0, "aborted": 0}  # fmt: skip
    assert [w.id for w in info.workers] == ["w"]
    assert orjson.loads(info.workers[0].info_json) == {
        "functions": [],
        "concurrency": 1,
        "running": 0,
        "host": "",
        "pid": 0,
        "transport": "grpc",
    }
    listed = await api.jobs.ListQueues(pb.ListQueuesRequest())
    mine = [q for q in listed.queues if q.name == queue_name]
    assert len(mine) == 1 and mine[0].counts["queued"] == 2


@pytest.mark.parametrize(
    ("request_", "needle"),
    [
        (pb.EnqueueRequest(queue="bad name", job=spec()), "queue name"),
        (pb.EnqueueRequest(queue="q", job=spec("")), "function"),
        (pb.EnqueueRequest(queue="q", job=pb.JobSpec(function="f", kwargs_json="[1]")), "kwargs"),
        (pb.EnqueueRequest(queue="q", job=pb.JobSpec(function="f", kwargs_json="{")), ""),
        (pb.EnqueueRequest(queue="q", job=spec(priority=5000)), "priority"),
        (pb.EnqueueRequest(queue="q", job=spec(ttl=-5)), "ttl"),
        (pb.EnqueueRequest(queue="q", job=spec(id="no/slash")), "id"),
    ],
)
async def test_bad_enqueues_are_invalid_argument(
    api: Stubs, request_: pb.EnqueueRequest, needle: str
) -> None:
    error = await _expect_error(api.jobs.Enqueue(request_), grpc.StatusCode.INVALID_ARGUMENT)
    assert needle in error.details()
    assert error_code(error) == "invalid_request"


async def test_other_bad_requests(api: Stubs, queue_name: str) -> None:
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    await _expect_error(api.jobs.EnqueueBatch(pb.EnqueueBatchRequest(queue=queue_name)), invalid)
    await _expect_error(api.jobs.GetJob(pb.GetJobRequest(job_id="a b")), invalid)
    await _expect_error(api.jobs.ListJobs(pb.ListJobsRequest(queue=queue_name, page_size=5000)),
                        invalid)  # fmt: skip
    await _expect_error(
        api.jobs.ListJobs(pb.ListJobsRequest(queue=queue_name, page_token="x")), invalid
    )
    missing = await _expect_error(
        api.jobs.AbortJob(pb.AbortJobRequest(job_id="nope")), grpc.StatusCode.NOT_FOUND
    )
    assert error_code(missing) == "not_found"
