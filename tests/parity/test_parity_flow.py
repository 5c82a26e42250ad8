"""Flow control parity: pause and resume, queue settings, bulk operations by filter, the
roles each needs, listing by key prefix, and ``concurrency_key`` on jobs.

Every test runs once per transport (``[rest]``, ``[grpc]``) with the same assertions, but
the few at the end that check what only one transport can express.
"""

from typing import Any

import pytest
from grpc_helpers import GrpcService
from parity_transport import TOKENS, Connect, Transport, TransportError, lease_one, refused

from jobwire.v1 import jobwire_pb2 as pb

NO_LIMITS = {"functions": {}}
SETTINGS = {
    "max_active": 5,
    "max_active_per_key": 1,
    "rate": {"limit": 100, "period_s": 1.0},
    "rate_per_key": {"limit": 10, "period_s": 2.5},
    "functions": {"f": {"max_active": 2, "rate": {"limit": 50, "period_s": 1.0}}, "g": {}},
}


# Pause and resume.


async def test_pause_and_resume_answer_their_state_and_hold_leases(
    transport: Transport, other: Transport, queue_name: str
) -> None:
    job = (await transport.enqueue(queue_name, {"function": "f"})).job
    assert await transport.pause(queue_name) == {"queue": queue_name, "paused": True}
    assert (await other.queue_info(queue_name))["paused"] is True
    assert (await other.get_settings(queue_name))["paused"] is True
    assert (await transport.lease(queue_name, "w", max_jobs=5)).jobs == []
    enqueued = await transport.enqueue(queue_name, {"function": "f"})  # enqueue still works
    assert enqueued.job["status"] == "queued"
    assert await transport.pause(queue_name) == {"queue": queue_name, "paused": True}  # again
    assert await transport.resume(queue_name) == {"queue": queue_name, "paused": False}
    assert (await other.queue_info(queue_name))["paused"] is False
    leased = await transport.lease(queue_name, "w", max_jobs=5)
    assert sorted(j["id"] for j in leased.jobs) == sorted([job["id"], enqueued.job["id"]])


# Settings.


async def test_a_new_queue_has_no_limits_and_is_not_paused(
    transport: Transport, queue_name: str
) -> None:
    expected = {"queue": queue_name, "paused": False, "settings": NO_LIMITS}
    assert await transport.get_settings(queue_name) == expected
    info = await transport.queue_info(queue_name)
    assert (info["paused"], info["settings"]) == (False, NO_LIMITS)


async def test_settings_round_trip_through_either_transport(
    transport: Transport, other: Transport, queue_name: str
) -> None:
    answer = await transport.put_settings(queue_name, SETTINGS)
    assert answer == {"queue": queue_name, "paused": False, "settings": SETTINGS}
    assert await other.get_settings(queue_name) == answer
    assert (await other.queue_info(queue_name))["settings"] == SETTINGS
    partial = {"max_active": 3, "rate": {"limit": 7}}  # period_s defaults to 1 s
    replaced = {"max_active": 3, "rate": {"limit": 7, "period_s": 1.0}, "functions": {}}
    assert (await transport.put_settings(queue_name, partial))["settings"] == replaced
    assert (await transport.put_settings(queue_name, {}))["settings"] == NO_LIMITS
    assert (await other.get_settings(queue_name))["settings"] == NO_LIMITS


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_active": 0}, "max_active"),
        ({"max_active_per_key": -3}, "max_active_per_key"),
        ({"rate": {"limit": 5, "period_s": 0}}, "period_s"),
        ({"rate_per_key": {"limit": 2_000_000_000}}, "limit"),
        ({"rate": {"limit": 5, "period_s": 100_000}}, "period_s"),
        ({"functions": {"f": {"max_active": -1}}}, "max_active"),
        ({"functions": {"f": {"rate": {"limit": 0}}}}, "limit"),
        ({"functions": {"x" * 201: {"max_active": 1}}}, "functions"),
    ],
)
async def test_bad_settings_are_invalid_name_the_field_and_change_nothing(
    transport: Transport, queue_name: str, body: dict[str, Any], field: str
) -> None:
    error = await refused(transport.put_settings(queue_name, body))
    assert (error.kind, error.code) == ("invalid", "invalid_request"), error
    assert field in error.message, error
    assert (await transport.get_settings(queue_name))["settings"] == NO_LIMITS


# Bulk operations.


async def _jobs(transport: Transport, queue: str) -> dict[str, dict[str, Any]]:
    """Every job of ``queue`` by id."""
    page = await transport.list_jobs(queue, page_size=1000)
    return {job["id"]: job for job in page.jobs}


async def test_bulk_operations_count_what_their_filters_match(
    transport: Transport, other: Transport, queue_name: str
) -> None:
    specs = [{"function": "f", "key": "k-1"}, {"function": "f", "key": "k-2"},
             {"function": "g", "key": "other"}, {"function": "g"}]  # fmt: skip
    ids = [(await transport.enqueue(queue_name, spec)).job["id"] for spec in specs]
    assert await transport.bulk(queue_name, "abort", {"function": "g"}) == 2
    assert await transport.bulk(queue_name, "abort", {"function": "g"}) == 0  # finished now
    jobs = await _jobs(other, queue_name)
    assert [jobs[i]["status"] for i in ids] == ["queued", "queued", "aborted", "aborted"]
    assert await transport.bulk(queue_name, "retry", {"status": "aborted", "key_prefix": "o"}) == 1
    assert (await _jobs(other, queue_name))[ids[2]]["status"] == "queued"
    created = jobs[ids[0]]["created"]
    assert await transport.bulk(queue_name, "delete", {"enqueued_before": created}) == 0
    assert await transport.bulk(queue_name, "delete", {"key_prefix": "k-"}) == 2
    assert sorted(await _jobs(other, queue_name)) == sorted(ids[2:])
    assert await transport.bulk(queue_name, "retry") == 1  # no filter: every job (one aborted)
    assert await transport.bulk(queue_name, "delete", {}) == 2
    assert await _jobs(other, queue_name) == {}


async def test_bulk_abort_turns_active_jobs_aborting(transport: Transport, queue_name: str) -> None:
    await transport.enqueue(queue_name, {"function": "f"})
    leased = await lease_one(transport, queue_name)
    assert await transport.bulk(queue_name, "abort", {"status": "active"}) == 1
    assert await transport.heartbeat(queue_name, leased["id"], leased["lease"]) == "aborting"


@pytest.mark.parametrize(
    "where",
    [
        {"enqueued_before": -1},
        {"enqueued_after": 1e12},
        {"key_prefix": ""},
        {"key_prefix": "k" * 513},
        {"function": "f" * 201},
    ],
)
async def test_a_malformed_filter_is_invalid(
    transport: Transport, queue_name: str, where: dict[str, Any]
) -> None:
    await transport.enqueue(queue_name, {"function": "f"})
    error = await refused(transport.bulk(queue_name, "delete", where))
    assert (error.kind, error.code) == ("invalid", "invalid_request"), error
    assert next(iter(where)) in error.message, error


# Roles.


async def test_roles_refuse_what_only_an_admin_may_do(
    guarded_service: GrpcService, connect: Connect, queue_name: str
) -> None:
    problems = []
    for name in ("rest", "grpc"):
        for role in ("client", "worker"):
            api = connect(name, guarded_service, TOKENS[role])
            calls = {
                "pause": api.pause(queue_name),
                "resume": api.resume(queue_name),
                "put settings": api.put_settings(queue_name, {"max_active": 1}),
                "bulk delete": api.bulk(queue_name, "delete"),
            }
            if role == "worker":  # retry and abort are the client's rights, not the worker's
                calls["bulk retry"] = api.bulk(queue_name, "retry")
                calls["bulk abort"] = api.bulk(queue_name, "abort")
            for what, call in calls.items():
                error = await refused(call)
                if (error.kind, error.code) != ("forbidden", "forbidden"):
                    problems.append(f"{name} {role} {what}: {error}")
    assert not problems, problems


async def test_roles_grant_reads_and_the_clients_bulk_rights(
    guarded_service: GrpcService, connect: Connect, queue_name: str
) -> None:
    for name in ("rest", "grpc"):
        admin = connect(name, guarded_service, TOKENS["admin"])
        client = connect(name, guarded_service, TOKENS["client"])
        worker = connect(name, guarded_service, TOKENS["worker"])
        await admin.put_settings(queue_name, {"max_active": 4})
        for reader in (client, worker):
            assert (await reader.get_settings(queue_name))["settings"]["max_active"] == 4
        await client.enqueue(queue_name, {"function": "f"})
        assert await client.bulk(queue_name, "abort") == 1
        assert await client.bulk(queue_name, "retry") == 1
        assert await admin.bulk(queue_name, "delete") == 1
        assert (await admin.pause(queue_name))["paused"] is True
        assert (await admin.resume(queue_name))["paused"] is False


# Listing by key prefix; concurrency_key on jobs.


async def test_list_jobs_by_key_prefix(transport: Transport, queue_name: str) -> None:
    keys = ["k-1", None, "k-2", "other", "k-3"]
    ids = []
    for key in keys:
        spec = {"function": "f", "key": key} if key else {"function": "f"}
        ids.append((await transport.enqueue(queue_name, spec)).job["id"])
    leased = await lease_one(transport, queue_name)
    assert leased["id"] == ids[0]
    page = await transport.list_jobs(queue_name, key_prefix="k-")
    assert sorted(j["id"] for j in page.jobs) == sorted([ids[0], ids[2], ids[4]])
    queued = await transport.list_jobs(queue_name, key_prefix="k-", status="queued")
    assert sorted(j["id"] for j in queued.jobs) == sorted([ids[2], ids[4]])
    paged = await transport.list_jobs(queue_name, key_prefix="k-", page_size=2)
    assert len(paged.jobs) == 2 and paged.next is not None
    rest = await transport.list_jobs(
        queue_name, key_prefix="k-", page_size=2, page_token=paged.next
    )
    assert len(rest.jobs) == 1 and rest.next is None
    assert (await transport.list_jobs(queue_name, key_prefix="nope")).jobs == []
    assert [j["id"] for j in (await transport.list_jobs(queue_name, key_prefix="oth")).jobs] == [
        ids[3]
    ]


async def test_concurrency_key_travels_on_enqueue_and_shows_on_every_view(
    transport: Transport, other: Transport, queue_name: str
) -> None:
    one = await transport.enqueue(queue_name, {"function": "f", "concurrency_key": "tenant-1"})
    assert one.job["concurrency_key"] == "tenant-1"
    [two, three] = await transport.enqueue_batch(
        queue_name, [{"function": "f", "concurrency_key": "tenant-2"}, {"function": "f"}]
    )
    assert (two.job["concurrency_key"], three.job["concurrency_key"]) == ("tenant-2", None)
    assert (await other.get(one.job["id"]))["concurrency_key"] == "tenant-1"
    leased = await lease_one(other, queue_name)
    assert leased["concurrency_key"] == "tenant-1"
    listed = {j["id"]: j["concurrency_key"] for j in (await other.list_jobs(queue_name)).jobs}
    assert listed == {one.job["id"]: "tenant-1", two.job["id"]: "tenant-2", three.job["id"]: None}
    applied = await transport.apply(queue_name, {"function": "f", "concurrency_key": "t-3"}, 0.1)
    assert applied.job["concurrency_key"] == "t-3"


@pytest.mark.parametrize("concurrency_key", ["", "k" * 513, "a\x00b"])
async def test_a_bad_concurrency_key_is_invalid(
    transport: Transport, queue_name: str, concurrency_key: str
) -> None:
    spec = {"function": "f", "concurrency_key": concurrency_key}
    error = await refused(transport.enqueue(queue_name, spec))
    assert (error.kind, error.code) == ("invalid", "invalid_request"), error
    assert "concurrency_key" in error.message, error


# What only one transport can express.


async def test_rest_refuses_unknown_settings_and_filter_fields(
    parity_service: GrpcService, connect: Connect, queue_name: str
) -> None:
    rest = connect("rest", parity_service)
    bodies = [{"max_active": 1, "burst": 3}, {"rate": {"limit": 1, "per": "s"}},
              {"functions": {"f": {"concurrency": 1}}}]  # fmt: skip
    for body in bodies:
        error = await refused(rest.put_settings(queue_name, body))
        assert (error.kind, error.code) == ("invalid", "invalid_request"), (body, error)
    error = await refused(rest.bulk(queue_name, "retry", {"state": "failed"}))
    assert (error.kind, error.code) == ("invalid", "invalid_request"), error
    error = await refused(rest.bulk(queue_name, "retry", {"status": "lost"}))
    assert (error.kind, error.code) == ("invalid", "invalid_request"), error
    assert (await rest.get_settings(queue_name))["settings"] == NO_LIMITS


async def test_grpc_bulk_needs_an_action(
    parity_service: GrpcService, connect: Connect, queue_name: str
) -> None:
    grpc_api: Any = connect("grpc", parity_service)
    request = pb.BulkJobsRequest(queue=queue_name)
    with pytest.raises(TransportError) as caught:
        await grpc_api._call(grpc_api.queues.BulkJobs, request)
    assert (caught.value.kind, caught.value.code) == ("invalid", "invalid_request")
    assert "action" in caught.value.message
