"""Small consistencies of the service's replies."""

from uuid import uuid4

import httpx


def test_a_new_and_a_duplicate_enqueue_reply_have_the_same_types(service_url: str) -> None:
    url = f"{service_url}/v1/queues/replies-{uuid4().hex[:8]}/jobs"
    body = {"function": "f", "key": f"k-{uuid4().hex}"}
    created = httpx.post(url, json=body)
    duplicate = httpx.post(url, json=body)
    assert (created.status_code, duplicate.status_code) == (201, 200)
    first, again = created.json(), duplicate.json()
    assert again["duplicate"] is True and again["id"] == first["id"]
    for field in ("heartbeat", "timeout", "ttl", "retries", "priority", "progress"):
        assert (type(first[field]), first[field]) == (type(again[field]), again[field]), field
    assert first["heartbeat"] == 0.0 and isinstance(first["heartbeat"], float)
