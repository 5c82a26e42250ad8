"""How the PostgreSQL store connects: its URL, its pool, its LISTEN connection.

The queue URL is what asyncpg takes plus Jobwire's own query options, which are taken out
before asyncpg sees it (asyncpg would send them to the server as settings, which it
refuses):

- ``pool_size=N`` (default 10): connections in the pool.
- ``prepared_statements=false`` (default true): keep no named prepared statements and no
  session state from one transaction to the next, as a pooler in transaction mode
  (PgBouncer's ``pool_mode=transaction``) needs, since each transaction may run on another
  server session. Every statement is then parsed anew (one more round trip for each).
- ``listen_url=postgresql://...`` (default: the URL itself): the server to LISTEN on, over
  one connection of its own. A transaction pooler cannot carry LISTEN: point this at the
  server directly. Percent-encode any ``&`` or ``?`` in it.
"""

import dataclasses
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

DEFAULT_POOL_SIZE = 10
_SCHEMES = {"postgres", "postgresql", "postgresql+asyncpg"}
_OPTIONS = {"pool_size", "prepared_statements", "listen_url"}
_BOOLEANS = {"true": True, "false": False}
# The arrays a statement may bind (``sql``: ``$n::int4[]`` and the like), every common one:
# a type missing here is still looked up when first met, only slowly through a pooler.
_ARRAY_TYPES = (
    "bool", "int2", "int4", "int8", "float4", "float8", "numeric", "text", "json", "jsonb",
    "timestamptz", "interval", "uuid", "bytea",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class ConnectOptions:
    """How a store connects, from its URL.

    Attributes:
        dsn: What asyncpg connects to (Jobwire's options removed).
        pool_size: Connections in the pool.
        prepared_statements: False when a transaction pooler sits in between.
        listen_dsn: What the LISTEN connection connects to.
    """

    dsn: str
    pool_size: int
    prepared_statements: bool
    listen_dsn: str


def parse_options(url: str) -> ConnectOptions:
    """Split a queue URL into the DSN asyncpg takes and Jobwire's options.

    Raises:
        ValueError: Not a PostgreSQL URL (or ``listen_url`` is not), or a bad option value.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in _SCHEMES:
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = {name: value for name, value in query if name in _OPTIONS}  # the last one wins
    rest = urlencode([(name, value) for name, value in query if name not in _OPTIONS])
    dsn = urlunsplit(parts._replace(scheme="postgresql", query=rest))
    listen_url = given.get("listen_url")
    return ConnectOptions(
        dsn=dsn,
        pool_size=_pool_size(given.get("pool_size")),
        prepared_statements=_boolean("prepared_statements", given.get("prepared_statements"), True),
        listen_dsn=dsn if listen_url is None else parse_options(listen_url).dsn,
    )


def _pool_size(text: str | None) -> int:
    if text is None:
        return DEFAULT_POOL_SIZE
    try:
        size = int(text)
    except ValueError:
        raise ValueError(f"pool_size must be an integer, got {text!r}") from None
    if size < 1:
        raise ValueError(f"pool_size must be >= 1, got {size}")
    return size


def _boolean(name: str, text: str | None, default: bool) -> bool:
    if text is None:
        return default
    try:
        return _BOOLEANS[text.lower()]
    except KeyError:
        raise ValueError(f"{name} must be true or false, got {text!r}") from None


async def open_pool(options: ConnectOptions) -> asyncpg.Pool:
    """A pool of ``options.pool_size`` connections (one opened now).

    Through a transaction pooler, asyncpg's reset on release (UNLISTEN, RESET ALL, unlock
    advisory locks, close cursors) would run on whichever server session the pooler picks,
    clearing nothing of ours for a round trip per call: only its client-side part runs.
    """
    if options.prepared_statements:
        return await asyncpg.create_pool(options.dsn, min_size=1, max_size=options.pool_size)
    return await asyncpg.create_pool(
        options.dsn,
        min_size=1,
        max_size=options.pool_size,
        init=_learn_types,
        reset=_keep_session,
        **_pooler_args(),
    )


async def open_listen_connection(options: ConnectOptions) -> asyncpg.Connection:
    """A new connection to LISTEN on (``options.listen_dsn``)."""
    extra = {} if options.prepared_statements else _pooler_args()
    return await asyncpg.connect(options.listen_dsn, **extra)


def _pooler_args() -> dict[str, Any]:
    """asyncpg's connection arguments for a transaction pooler.

    A named prepared statement stays on the server session that parsed it while the next
    transaction runs on another: with no statement cache, asyncpg parses each statement
    unnamed, again in the exchange that executes it. And asyncpg asks for client_encoding
    ``'utf-8'`` (quoted), which PgBouncer compares as text with the server's ``UTF8``: it
    would SET it on the server before every transaction.
    """
    return {"statement_cache_size": 0, "server_settings": {"client_encoding": "UTF8"}}


async def _learn_types(conn: asyncpg.Connection) -> None:
    """Have a new connection look up the array types statements bind, in one transaction.

    asyncpg looks a type up in the catalog the first time a connection meets it, turning
    JIT off for that session around the query (JIT compiling it takes seconds). Through a
    transaction pooler, outside a transaction, the three would run on different server
    sessions: the look-up with JIT on, and a session left with JIT off.
    """
    columns = ", ".join(f"NULL::{name}[]" for name in _ARRAY_TYPES)
    async with conn.transaction():
        await conn.fetchrow(f"SELECT {columns}")


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Reset nothing on the server (asyncpg has rolled back any transaction left open)."""
