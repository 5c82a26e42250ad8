"""A job already stored can never break reads of others (decoding is tolerant per job)."""

import httpx
from fault_helpers import Service, unique_name
from stores import OwnRedis


def test_undecodable_job_is_reported_and_the_listing_goes_on(
    store_service: Service, own_redis: OwnRedis
) -> None:
    if not store_service.backend.startswith("redis"):
        return  # the SQL stores' columns cannot hold such values (typed, constrained)
    queue = unique_name()
    good = httpx.post(f"{store_service.http}/v1/queues/{queue}/jobs", json={"function": "f"})
    bad = httpx.post(f"{store_service.http}/v1/queues/{queue}/jobs", json={"function": "g"})
    assert good.status_code == bad.status_code == 201
    bad_id = bad.json()["id"]
    with own_redis.client() as client:  # as a laxer version once stored it
        client.hset(f"jobwire:{{{queue}}}:job:{bad_id}", "retries", str(10**20) + "x")
    listed = httpx.get(f"{store_service.http}/v1/queues/{queue}/jobs", timeout=10)
    assert listed.status_code == 200, listed.text
    jobs = {job["id"]: job for job in listed.json()["jobs"]}
    assert jobs[good.json()["id"]]["function"] == "f"
    one = httpx.get(f"{store_service.http}/v1/jobs/{bad_id}", timeout=10)
    assert one.status_code == 200, one.text
    assert one.json()["function"] == "<undecodable>"
    assert one.json()["error"]["type"] == "Undecodable"
