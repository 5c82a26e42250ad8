"""Redis URLs: one server (``redis://``, ``rediss://``) or a cluster (``redis+cluster://``,
``rediss+cluster://host:port[,host:port...]``), and Jobwire's own options in the query.

Jobwire's options (the rest of the query goes to redis-py):

- ``wait_replicas``: after each enqueue, WAIT until this many replicas have it (default 0:
  don't wait); an acknowledged enqueue then survives the loss of its master.
- ``wait_timeout_ms``: how long that wait may take (default 100); past it the enqueue is
  answered all the same, with a warning logged.
"""

import dataclasses
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import SSLConnection, parse_url

from jobwire.backends.redis.cluster import FailoverCluster

CLUSTER_SUFFIX = "+cluster"
DEFAULT_PORT = 6379
DEFAULT_WAIT_TIMEOUT_MS = 100
# On a cluster, connecting to a node that is cut off fails soon, so that the client asks
# the others who serves its slots now (the URL may say otherwise). No default read/write
# timeout: redis-py bounds writes with asyncio.wait_for, which on Python 3.11 can swallow a
# cancellation (a worker's stop hung); a hung node's calls end at the store deadline, and
# the sharded subscriptions, which PING, refresh the map of slots.
CLUSTER_CONNECT_TIMEOUT_S = 2.0
OPTIONS = ("wait_replicas", "wait_timeout_ms")  # Jobwire's, kept from redis-py


@dataclasses.dataclass(frozen=True)
class ReplicaWait:
    """WAIT after each enqueue: for ``replicas`` replicas, at most ``timeout_ms``."""

    replicas: int
    timeout_ms: int


def replica_wait(url: str, budget_s: float) -> ReplicaWait | None:
    """The URL's ``wait_replicas`` and ``wait_timeout_ms``; ``None`` when not waiting.

    Raises:
        ValueError: A value is not a whole number, or the wait would outlast ``budget_s``.
    """
    options = dict(parse_qsl(urlsplit(url).query))
    replicas = _whole(options, "wait_replicas", 0)
    timeout_ms = _whole(options, "wait_timeout_ms", DEFAULT_WAIT_TIMEOUT_MS)
    if not 0 < timeout_ms < budget_s * 1000:
        raise ValueError(
            f"wait_timeout_ms must be in 1..{int(budget_s * 1000) - 1} (the store deadline)"
        )
    return ReplicaWait(replicas, timeout_ms) if replicas else None


def open_client(url: str, budget_s: float) -> Redis | FailoverCluster:
    """A client of the server or cluster at ``url`` (connecting on first use).

    Args:
        url: The store's URL.
        budget_s: On a cluster, how long one command may retry through a failover.

    Raises:
        ValueError: The URL names no node, or a node's port is not a number.
    """
    parts = urlsplit(url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k not in OPTIONS])
    scheme = parts.scheme.lower()
    if not scheme.endswith(CLUSTER_SUFFIX):
        return Redis.from_url(urlunsplit(parts._replace(query=query)))
    userinfo, _, hosts = parts.netloc.rpartition("@")
    nodes = [_node(text, url) for text in hosts.split(",")]
    first = urlunsplit(
        parts._replace(
            scheme=scheme.removesuffix(CLUSTER_SUFFIX),
            netloc=(f"{userinfo}@" if userinfo else "") + _address(nodes[0]),
            query=query,
        )
    )
    options: dict[str, Any] = dict(parse_url(first))
    if options.pop("connection_class", None) is SSLConnection:
        options["ssl"] = True
    options.setdefault("socket_connect_timeout", CLUSTER_CONNECT_TIMEOUT_S)
    return FailoverCluster(budget_s=budget_s, startup_nodes=nodes[1:], **options)


def _node(text: str, url: str) -> ClusterNode:
    parts = urlsplit("//" + text.strip())
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        port = 0
    if not parts.hostname or not port:
        raise ValueError(f"{url!r}: {text!r} is not a host:port of a cluster node")
    return ClusterNode(parts.hostname, port)


def _address(node: ClusterNode) -> str:
    host = f"[{node.host}]" if ":" in node.host else node.host  # IPv6
    return f"{host}:{node.port}"


def _whole(options: dict[str, str], name: str, default: int) -> int:
    text = options.get(name, str(default))
    if not text.isdigit():
        raise ValueError(f"{name} must be a whole number, got {text!r}")
    return int(text)
