"""Redis URLs (one server or a cluster, and Jobwire's own options), and the one place the
scripts name their publish command. No server is contacted."""

import importlib.resources
import re

import pytest

from jobwire.backends import backend_from_url
from jobwire.backends.redis import RedisBackend
from jobwire.backends.redis.cluster import FailoverCluster
from jobwire.backends.redis.connect import ReplicaWait, open_client, replica_wait


async def test_a_cluster_url_names_every_startup_node() -> None:
    client = open_client("redis+cluster://:secret@10.0.0.1:7000,10.0.0.2,[::1]:7002", 5.0)
    assert isinstance(client, FailoverCluster)
    assert sorted(node.name for node in client.startup_nodes) == [
        "10.0.0.1:7000",
        "10.0.0.2:6379",
        "::1:7002",
    ]
    assert client.connection_kwargs["password"] == "secret"
    assert client.budget_s == 5.0
    await client.aclose()


async def test_an_ipv6_node_may_come_first() -> None:
    client = open_client("redis+cluster://[::1]:7000,127.0.0.1:7001", 5.0)
    assert sorted(node.name for node in client.startup_nodes) == ["127.0.0.1:7001", "::1:7000"]
    await client.aclose()


async def test_rediss_cluster_is_tls() -> None:
    client = open_client("rediss+cluster://h1:7000?ssl_cert_reqs=none", 5.0)
    assert isinstance(client, FailoverCluster)
    assert client.connection_kwargs["ssl_cert_reqs"] == "none"
    await client.aclose()


@pytest.mark.parametrize(
    "url", ["redis+cluster://", "redis+cluster://h1:7000,,h2:7001", "redis+cluster://h1:port"]
)
def test_a_cluster_url_without_nodes_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="cluster node"):
        open_client(url, 5.0)


async def test_jobwire_options_are_not_passed_to_redis_py() -> None:
    backend = backend_from_url(
        "redis://127.0.0.1:1/2?wait_replicas=1&wait_timeout_ms=250&socket_timeout=3", "q",
        lease_s=30,
    )  # fmt: skip
    assert isinstance(backend, RedisBackend)
    kwargs = backend.redis.connection_pool.connection_kwargs
    assert kwargs["db"] == 2 and kwargs["socket_timeout"] == 3.0
    assert not any(name.startswith("wait") for name in kwargs)
    assert backend.for_queue("other")._wait == ReplicaWait(1, 250)
    await backend.close()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", None),
        ("wait_replicas=0", None),
        ("wait_replicas=2", ReplicaWait(2, 100)),
        ("wait_replicas=1&wait_timeout_ms=4999", ReplicaWait(1, 4999)),
    ],
)
def test_replica_wait_options(query: str, expected: ReplicaWait | None) -> None:
    assert replica_wait(f"redis+cluster://h:1?{query}", 5.0) == expected


@pytest.mark.parametrize(
    "query", ["wait_replicas=-1", "wait_replicas=one", "wait_timeout_ms=0", "wait_timeout_ms=5000"]
)
def test_bad_replica_wait_options_are_refused(query: str) -> None:
    with pytest.raises(ValueError, match="wait_"):
        replica_wait(f"redis://h:1?wait_replicas=1&{query}", 5.0)


def test_scripts_publish_only_through_the_prelude_command() -> None:
    # On a cluster the prelude's PUBLISH becomes SPUBLISH, which the subscribers read: a
    # script that names the command itself would publish where nobody listens.
    folder = importlib.resources.files("jobwire.backends.redis") / "lua"
    for script in folder.iterdir():
        text = script.read_text()
        assert not re.search(r"redis\.p?call\(\s*['\"]S?PUBLISH", text, re.I), script.name
    assert "local PUBLISH = 'PUBLISH'" in (folder / "prelude.lua").read_text()
