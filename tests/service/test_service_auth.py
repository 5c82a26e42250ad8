"""Bearer tokens: every role against every route group (401 / 403 / 2xx), open probes."""

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import httpx
import pytest
from service_fixtures import start_service, stop_service
from service_helpers import assert_error, enqueue, get_job, http_client, lease, unique_name

from jobwire import Queue
from jobwire.errors import Forbidden, Unauthenticated

pytestmark = pytest.mark.xdist_group("service-auth")  # its services once

TOKENS = "adm:admin,wrk:worker,cli:client"
ROLES: dict[str, str | None] = {
    "none": None,
    "unknown": "not-a-token",
    "client": "cli",
    "worker": "wrk",
    "admin": "adm",
}
# The roles each route group admits; everyone else gets 403, no/unknown token 401.
ALLOWED: dict[str, set[str]] = {
    "enqueue": {"client", "worker", "admin"},  # workers: cron ticks, follow-up jobs
    "read": {"client", "worker", "admin"},
    "control": {"client", "admin"},
    "work": {"worker", "admin"},
    "delete": {"admin"},
    "metrics": {"none", "unknown", "client", "worker", "admin"},  # public by default
}
Calls = list[tuple[str, httpx.Response, int]]  # (what, response, status when allowed)


@pytest.fixture(scope="module")
def auth_service(redis_url: str) -> Iterator[str]:
    """A service with one token per role."""
    proc, url, _ = start_service(redis_url, env={"JOBWIRE_TOKENS": TOKENS})
    try:
        yield url
    finally:
        stop_service(proc)


@pytest.fixture(scope="module")
def private_metrics_service(redis_url: str) -> Iterator[str]:
    """A service with tokens whose /metrics needs a token too."""
    env = {"JOBWIRE_TOKENS": TOKENS, "JOBWIRE_METRICS_PUBLIC": "false"}
    proc, url, _ = start_service(redis_url, env=env)
    try:
        yield url
    finally:
        stop_service(proc)


def _client(url: str, token: str | None) -> httpx.AsyncClient:
    """A client sending ``token`` as a bearer token (none when ``None``)."""
    return http_client(url, **({"authorization": f"Bearer {token}"} if token else {}))


@pytest.fixture
async def admin(auth_service: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client with the admin token, to set the scene."""
    async with _client(auth_service, "adm") as http:
        yield http


async def _enqueue_calls(who: httpx.AsyncClient, admin: httpx.AsyncClient, queue: str) -> Calls:
    """Enqueue, batch and apply as ``who``."""
    one = await who.post(f"/v1/queues/{queue}/jobs", json={"function": "f"})
    batch = await who.post(f"/v1/queues/{queue}/jobs/batch", json={"jobs": [{"function": "f"}]})
    applied = await who.post(
        f"/v1/queues/{queue}/jobs/apply", params={"wait": 0}, json={"function": "f"}
    )
    return [("enqueue", one, 201), ("batch", batch, 200), ("apply", applied, 202)]


async def _read_calls(who: httpx.AsyncClient, admin: httpx.AsyncClient, queue: str) -> Calls:
    """Read a job (also waiting and streaming) and the queue views as ``who``."""
    job = await enqueue(admin, queue)
    await admin.post(f"/v1/jobs/{job['id']}/abort")
    return [
        ("job", await who.get(f"/v1/jobs/{job['id']}"), 200),
        ("job?wait", await who.get(f"/v1/jobs/{job['id']}", params={"wait": 1}), 200),
        ("events", await who.get(f"/v1/jobs/{job['id']}/events"), 200),
        ("queues", await who.get("/v1/queues"), 200),
        ("queue", await who.get(f"/v1/queues/{queue}"), 200),
        ("jobs", await who.get(f"/v1/queues/{queue}/jobs"), 200),
    ]


async def _control_calls(who: httpx.AsyncClient, admin: httpx.AsyncClient, queue: str) -> Calls:
    """Abort a queued job, then retry it, as ``who``."""
    job = await enqueue(admin, queue)
    aborted = await who.post(f"/v1/jobs/{job['id']}/abort", json={"error": "no"})
    if aborted.status_code != 200:
        await admin.post(f"/v1/jobs/{job['id']}/abort")
        assert (await get_job(admin, job["id"]))["status"] == "aborted"
    retried = await who.post(f"/v1/jobs/{job['id']}/retry")
    return [("abort", aborted, 200), ("retry", retried, 200)]


async def _work_calls(who: httpx.AsyncClient, admin: httpx.AsyncClient, queue: str) -> Calls:
    """Lease, heartbeat, renew, complete, fail, settle and sweep as ``who``."""
    for _ in range(2):
        await enqueue(admin, queue)
    leased = await who.post(f"/v1/queues/{queue}/leases", json={"worker_id": "w", "max": 1})
    if leased.status_code == 200:
        [first] = leased.json()["jobs"]
    else:
        [first] = await lease(admin, queue)
    [second] = await lease(admin, queue)
    token = {"lease": first["lease"]}
    refs = {"leases": [{"job_id": first["id"], "lease": first["lease"]}]}
    return [
        ("lease", leased, 200),
        ("heartbeat", await who.post(f"/v1/jobs/{first['id']}/heartbeat", json=token), 200),
        ("renew", await who.post(f"/v1/queues/{queue}/leases/renew", json=refs), 200),
        ("complete", await who.post(f"/v1/jobs/{first['id']}/complete", json=token), 200),
        (
            "fail",
            await who.post(f"/v1/jobs/{second['id']}/fail", json={"lease": second["lease"]}),
            200,
        ),
        ("settle", await who.post(f"/v1/queues/{queue}/leases/settle", json={"outcomes": []}), 200),
        ("sweep", await who.post(f"/v1/queues/{queue}/sweep"), 200),
    ]


async def _delete_calls(who: httpx.AsyncClient, admin: httpx.AsyncClient, queue: str) -> Calls:
    """Delete a job as ``who``."""
    job = await enqueue(admin, queue)
    return [("delete", await who.delete(f"/v1/jobs/{job['id']}"), 204)]


async def _metrics_calls(who: httpx.AsyncClient, admin: httpx.AsyncClient, queue: str) -> Calls:
    """Scrape /metrics as ``who``."""
    return [("metrics", await who.get("/metrics"), 200)]


GROUPS: dict[str, Callable[[httpx.AsyncClient, httpx.AsyncClient, str], Awaitable[Calls]]] = {
    "enqueue": _enqueue_calls,
    "read": _read_calls,
    "control": _control_calls,
    "work": _work_calls,
    "delete": _delete_calls,
    "metrics": _metrics_calls,
}


def _expect(role: str, group: str, ok: int) -> int:
    """The status ``role`` should get from a request of ``group`` that answers ``ok``."""
    if role in ALLOWED[group]:
        return ok
    return 401 if role in ("none", "unknown") else 403


async def _check(calls: Calls, role: str, group: str) -> None:
    """Assert every call got the status the matrix says (and a JSON error when refused)."""
    for what, response, ok in calls:
        expected = _expect(role, group, ok)
        assert response.status_code == expected, (role, group, what, response.text)
        if expected == 401:
            assert_error(response, 401, "unauthenticated")
        elif expected == 403:
            error = assert_error(response, 403, "forbidden")
            assert role in error["message"]


@pytest.mark.parametrize("group", list(GROUPS))
@pytest.mark.parametrize("role", list(ROLES))
async def test_role_matrix(
    auth_service: str, admin: httpx.AsyncClient, role: str, group: str
) -> None:
    queue = unique_name("auth")
    async with _client(auth_service, ROLES[role]) as who:
        calls = await GROUPS[group](who, admin, queue)
    await _check(calls, role, group)
    if role not in ALLOWED[group]:  # a refused request changed nothing
        info = (await admin.get(f"/v1/queues/{queue}")).json()
        counts = {k: v for k, v in info["counts"].items() if v}
        expected = {
            "enqueue": {},
            "read": {"aborted": 1},
            "control": {"aborted": 1},
            "work": {"active": 2},
            "delete": {"queued": 1},
            "metrics": {},
        }[group]
        assert counts == expected, (role, group, counts)


async def test_admin_delete_then_the_job_is_gone(admin: httpx.AsyncClient) -> None:
    job = await enqueue(admin, unique_name("auth"))
    response = await admin.delete(f"/v1/jobs/{job['id']}")
    assert response.status_code == 204, response.text
    assert_error(await admin.get(f"/v1/jobs/{job['id']}"), 404, "not_found")


@pytest.mark.parametrize("role", list(ROLES))
async def test_private_metrics_need_a_token(private_metrics_service: str, role: str) -> None:
    async with _client(private_metrics_service, ROLES[role]) as who:
        response = await who.get("/metrics")
    if role in ("none", "unknown"):
        assert_error(response, 401, "unauthenticated")
    else:
        assert response.status_code == 200, response.text
        assert "jobwire_http_requests_total" in response.text


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_probes_are_open(auth_service: str, path: str) -> None:
    async with http_client(auth_service) as anonymous:
        response = await anonymous.get(path)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "header",
    ["adm", "Basic adm", "Bearer", "Bearer adm extra", "Token adm", "Bearer adm2", "Bearer ad"],
)
async def test_malformed_or_unknown_authorization_is_401(auth_service: str, header: str) -> None:
    async with http_client(auth_service, authorization=header) as who:
        response = await who.get("/v1/queues")
    assert_error(response, 401, "unauthenticated")


async def test_bearer_scheme_is_case_insensitive(auth_service: str) -> None:
    async with http_client(auth_service, authorization="bearer cli") as who:
        response = await who.get("/v1/queues")
    assert response.status_code == 200, response.text


async def test_sdk_sends_the_token_from_the_url(auth_service: str) -> None:
    host = auth_service.removeprefix("http://")
    name = unique_name("sdk")
    async with Queue.from_url(f"http://:cli@{host}", name=name) as producer:
        job = await producer.enqueue("f", n=1)
        assert job is not None
        assert (await producer.job(job.id)).kwargs == {"n": 1}
    async with Queue.from_url(f"http://:wrk@{host}", name=name) as worker_side:
        with pytest.raises(Forbidden):
            await worker_side.abort(job, "not a worker's call")
        jobs, _ = await worker_side.lease("w", 1)
        assert [j.id for j in jobs] == [job.id]
    async with Queue.from_url(f"http://:bogus@{host}", name=name) as stranger:
        with pytest.raises(Unauthenticated):
            await stranger.info()
