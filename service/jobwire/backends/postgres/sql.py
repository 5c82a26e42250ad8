"""SQL of the PostgreSQL backend: the schema migrations and one statement per primitive.

Each statement is the counterpart of one Lua script of the Redis backend and is atomic on
its own (one statement, one implicit transaction, one round trip). ``$1`` is always the
queue name; times come from ``jobwire_now()`` (the statement's start, in epoch seconds).
Notifications are sent from ``RETURNING`` clauses of data-modifying CTEs, which run for
every row they change whether or not the outer query reads them; PostgreSQL delivers
them at commit and folds duplicates (same channel and payload) into one.

Plans must not depend on statistics, which are always stale on a queue table (a burst of
jobs lands between two ANALYZEs, and a new queue is in none): the planner may believe a
queue holds one row when it holds a million. So every statement is written to have only
plans whose cost stays proportional to the rows it touches:

- a job is reached by id through the primary key ``(id, queue)`` (a per-row probe: a
  ``LATERAL`` subquery, or an ``UPDATE ... FROM`` whose only cheap path is the probe),
  or in bulk through the partial index of the one status group the query names;
- no join between two in-memory row sets (a nested loop there is quadratic when an
  estimate says one row): results come back keyed by id or input position, and the
  caller matches them to its inputs.
"""

import importlib.resources
import re

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from jobwire.job import FINISHED, LIVE, Status

# The key of the advisory lock that serializes migrations (any constant shared by all
# Jobwire processes): b"jobwire" read as a big-endian integer.
MIGRATION_LOCK_KEY = int.from_bytes(b"jobwire", "big")

JOB_COLUMNS = (
    "id", "status", "function", "kwargs", "key", "concurrency_key", "priority", "timeout",
    "heartbeat", "retries", "attempts", "ttl", "scheduled", "retry_delay", "retry_backoff",
    "progress", "meta", "result", "error", "created", "queued", "started", "completed",
    "touched", "worker", "lease",
)  # fmt: skip


def _columns(alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + name for name in JOB_COLUMNS)


def _in(statuses: frozenset[Status]) -> str:
    return "(" + ", ".join(f"'{s.value}'" for s in sorted(statuses)) + ")"


_LIVE = _in(LIVE)
_FINISHED = _in(FINISHED)
_VISIBLE = "(expires_at IS NULL OR expires_at > jobwire_now())"  # finished jobs within ttl


def abort_changes(row: str, error: str) -> str:
    """The SET list of an abort, as abort.lua's ``abort_job``: a queued or scheduled job
    ends aborted, an active one turns aborting. ``row`` names the job's columns as they
    were before (``j`` is the row updated), ``error`` the error JSON."""
    return (
        f"status = CASE WHEN {row}.status = 'active' THEN 'aborting' ELSE 'aborted' END,"
        f" error = {error}::json, touched = jobwire_now(),"
        f" completed = CASE WHEN {row}.status = 'active' THEN j.completed ELSE jobwire_now() END,"
        f" expires_at = CASE WHEN {row}.status <> 'active' AND {row}.ttl > 0"
        f" THEN jobwire_now() + {row}.ttl END"
    )


def abortable(row: str) -> str:
    """Whether ``abort_changes`` applies to the job (a queued or scheduled one whose ttl
    is < 0 is deleted instead; a finished or aborting one is left as it is)."""
    return (
        f"({row}.status = 'active' OR ({row}.status IN ('queued', 'scheduled') AND {row}.ttl >= 0))"
    )


def announce_abort(wake: str) -> str:
    """An expression, in the RETURNING of ``abort_changes``, that sends an aborting job's
    id on ``wake``: every process's abort callbacks hear it (its worker cancels it)."""
    return f"CASE WHEN j.status = 'aborting' THEN pg_notify({wake}, j.id) END"


def wake_if_slot_wanted(wake: str, when: str) -> str:
    """An expression that NOTIFYs ``wake`` when ``when`` holds (a job stops running: its
    concurrency slot is free), the queue (``$1``) has a concurrency limit and jobs are
    queued: one of them may be held back for that slot. Elsewhere no lease waits for a
    slot, and waking every process's waiting leases at each settle would send each of
    them to the store for nothing. The subquery runs once per statement."""
    return (
        f"CASE WHEN {when} AND (SELECT EXISTS (SELECT FROM jobwire_queues WHERE name = $1"
        " AND (max_active IS NOT NULL OR scoped_max_active IS NOT NULL))"
        " AND EXISTS (SELECT FROM jobwire_jobs WHERE queue = $1 AND status = 'queued'))"
        f" THEN pg_notify({wake}, '') END"
    )


GET = f"SELECT {_columns()} FROM jobwire_jobs WHERE queue = $1 AND id = $2 AND {_VISIBLE}"

REGISTER_QUEUE = "INSERT INTO jobwire_queues (name) VALUES ($1) ON CONFLICT DO NOTHING"

QUEUES = "SELECT name FROM jobwire_queues ORDER BY name"

# $1 id: the job in the first queue (by name) that has it.
FIND_JOB = f"""
SELECT queue, {_columns()} FROM jobwire_jobs WHERE id = $1 AND {_VISIBLE}
ORDER BY queue LIMIT 1
"""

# Like delete.lua: $2 id, $3 events channel, $4 wake channel (a running job of a limited
# queue frees a slot). Returns the number of jobs deleted (0 or 1).
DELETE = f"""
WITH deleted AS (
    DELETE FROM jobwire_jobs WHERE queue = $1 AND id = $2 AND {_VISIBLE}
    RETURNING pg_notify($3, id), {wake_if_slot_wanted("$4", "status IN ('active', 'aborting')")}
)
SELECT count(*) FROM deleted
"""

# The job each duplicate of an enqueue stands for: the job with its id, else the live job
# holding its key ($2 ids, $3 keys).
GET_EXISTING = f"""
SELECT d.ord, j.*
FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS d(id, key, ord)
CROSS JOIN LATERAL (
    SELECT * FROM (
        SELECT 1 AS rank, {_columns()} FROM jobwire_jobs
        WHERE queue = $1 AND id = d.id AND {_VISIBLE}
        UNION ALL
        SELECT 2, {_columns()} FROM jobwire_jobs
        WHERE queue = $1 AND key = d.key AND key IS NOT NULL AND status IN {_LIVE}
    ) AS found
    ORDER BY rank LIMIT 1
) AS j
ORDER BY d.ord
"""

# Per status, the order the Redis indexes list jobs in: queued by priority then FIFO,
# scheduled by due time, active by lease expiry, aborting by id, finished newest first
# (by ttl expiry, jobs kept forever first).
_LIST_ORDER = {
    Status.QUEUED: "priority DESC, seq",
    Status.SCHEDULED: "scheduled, id",
    Status.ACTIVE: "lease_expires_at, id",
    Status.ABORTING: "id",
    **{status: "expires_at DESC NULLS FIRST, id DESC" for status in FINISHED},
}
LIST = {
    status: f"""
SELECT {_columns()} FROM jobwire_jobs
WHERE queue = $1 AND status = '{status.value}' AND {_VISIBLE}
ORDER BY {order} LIMIT $2
"""
    for status, order in _LIST_ORDER.items()
}

# One branch per partial index (a plain GROUP BY over the queue would scan the table).
COUNTS = f"""
SELECT 'queued' AS status, count(*) AS n FROM jobwire_jobs WHERE queue = $1 AND status = 'queued'
UNION ALL
SELECT 'scheduled', count(*) FROM jobwire_jobs WHERE queue = $1 AND status = 'scheduled'
UNION ALL
SELECT status, count(*) FROM jobwire_jobs
WHERE queue = $1 AND status IN ('active', 'aborting') GROUP BY status
UNION ALL
SELECT status, count(*) FROM jobwire_jobs
WHERE queue = $1 AND status IN {_FINISHED} AND {_VISIBLE} GROUP BY status
"""

# $2 seconds: how many readable finished jobs finished within that long.
THROUGHPUT = f"""
SELECT count(*) FROM jobwire_jobs
WHERE queue = $1 AND status IN {_FINISHED} AND completed >= jobwire_now() - $2 AND {_VISIBLE}
"""

# Like enqueue.lua: per job, in order, insert unless its id exists or its key belongs to a
# live job (ON CONFLICT DO NOTHING covers both unique indexes, and rows inserted earlier in
# the same statement). $2..$17: one array per column; $18: the wake channel.
# Returns the id and key of each job inserted (the first input with that pair), and the
# clock.
ENQUEUE = """
WITH input AS (
    SELECT * FROM unnest(
        $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::integer[],
        $8::float8[], $9::float8[], $10::integer[], $11::integer[], $12::integer[],
        $13::float8[], $14::float8[], $15::text[], $16::float8[], $17::text[]
    ) WITH ORDINALITY AS t(
        id, function, kwargs, key, concurrency_key, priority, timeout, heartbeat, retries,
        attempts, ttl, scheduled, retry_delay, retry_backoff, progress, meta, ord
    )
),
inserted AS (
    INSERT INTO jobwire_jobs AS j (
        queue, id, function, kwargs, key, concurrency_key, priority, timeout, heartbeat,
        retries, attempts, ttl, scheduled, retry_delay, retry_backoff, progress, meta, status,
        created, queued, touched
    )
    SELECT $1, id, function, kwargs::json, key, concurrency_key, priority, timeout, heartbeat,
        retries, attempts, ttl, scheduled, retry_delay, retry_backoff::json, progress,
        meta::json,
        CASE WHEN scheduled > jobwire_now() THEN 'scheduled' ELSE 'queued' END,
        jobwire_now(),
        CASE WHEN scheduled > jobwire_now() THEN 0 ELSE jobwire_now() END,
        jobwire_now()
    FROM input ORDER BY ord
    ON CONFLICT DO NOTHING
    RETURNING j.id, j.key, pg_notify($18, '')
)
SELECT id, key, jobwire_now() AS now FROM inserted
"""

# Enqueue found an id taken by a finished job past its ttl (not yet swept): drop it, as
# Redis would have expired it ($2 ids).
PURGE_EXPIRED_IDS = f"""
DELETE FROM jobwire_jobs
WHERE queue = $1 AND id = ANY($2::text[]) AND status IN {_FINISHED}
    AND expires_at <= jobwire_now()
"""

# Like lease.lua: promote due scheduled jobs, then take up to $2 queued jobs (the promoted
# ones included) by priority, then FIFO, and activate them. $3 lease token prefix, $4
# worker id, $5 default lease seconds. One row per leased job, in dequeue order, plus the
# seconds until the next scheduled job (a single row with NULL job columns if none leased)
# and the queue's flags: a paused or limited queue leases nothing here (a limited one
# leases through flow.LEASE_LIMITED). The queue's row is read FOR SHARE: a change of its
# flags waits for this lease, or this lease for it (and then sees the new flags). `gate` is
# tested where jobs are taken only: each reference costs planning time, which this
# statement pays at every call (custom plans).
LEASE = f"""
WITH gate AS MATERIALIZED (
    SELECT paused, limited FROM jobwire_queues WHERE name = $1 FOR SHARE
),
due AS MATERIALIZED (
    SELECT id, priority, scheduled FROM jobwire_jobs
    WHERE queue = $1 AND status = 'scheduled' AND scheduled <= jobwire_now()
        AND NOT EXISTS (SELECT FROM gate WHERE paused OR limited)
    ORDER BY scheduled, id
    LIMIT 1000
    FOR UPDATE SKIP LOCKED
),
promoted AS MATERIALIZED (
    SELECT id, priority, nextval('jobwire_jobs_seq') AS seq FROM due ORDER BY scheduled, id
),
candidates AS MATERIALIZED (
    SELECT id, priority, seq FROM jobwire_jobs
    WHERE queue = $1 AND status = 'queued'
        AND NOT EXISTS (SELECT FROM gate WHERE paused OR limited)
    ORDER BY priority DESC, seq
    LIMIT $2
    FOR UPDATE SKIP LOCKED
),
picked AS MATERIALIZED (
    SELECT id, row_number() OVER (ORDER BY priority DESC, seq) AS rank
    FROM (SELECT * FROM candidates UNION ALL SELECT * FROM promoted) AS c
    ORDER BY priority DESC, seq
    LIMIT $2
),
leased AS (
    UPDATE jobwire_jobs AS j SET
        status = 'active',
        attempts = j.attempts + 1,
        queued = CASE WHEN j.status = 'scheduled' THEN jobwire_now() ELSE j.queued END,
        started = jobwire_now(),
        touched = jobwire_now(),
        lease = $3 || '.' || p.rank,
        worker = $4,
        lease_expires_at = jobwire_now() + CASE WHEN j.heartbeat > 0 THEN j.heartbeat ELSE $5 END
    FROM picked AS p
    WHERE j.queue = $1 AND j.id = p.id
    RETURNING p.rank, {_columns("j")}
),
requeued AS (
    UPDATE jobwire_jobs AS j SET
        status = 'queued', seq = p.seq, queued = jobwire_now(), touched = jobwire_now()
    FROM promoted AS p
    WHERE j.queue = $1 AND j.id = p.id AND p.id NOT IN (SELECT id FROM picked)
),
next_due AS (
    SELECT min(scheduled) - jobwire_now() AS next_due_s FROM jobwire_jobs
    WHERE queue = $1 AND status = 'scheduled' AND id NOT IN (SELECT id FROM due)
)
SELECT n.next_due_s, g.paused, g.limited, l.*
FROM next_due AS n LEFT JOIN gate AS g ON true LEFT JOIN leased AS l ON true
ORDER BY l.rank
"""

# Like renew.lua: extend each lease its token still owns ($2 ids, $3 tokens, $4 default
# lease seconds). Returns (id, lease, status) of each job renewed; a pair not returned has
# lost its lease. Rows are locked in id order, so batches touching the same jobs (a renew
# and a settle) cannot deadlock.
RENEW = """
WITH input AS MATERIALIZED (
    SELECT * FROM unnest($2::text[], $3::text[]) AS t(id, lease) ORDER BY id
),
locked AS MATERIALIZED (  -- no status test here: pushed into the probe, it would let the
    SELECT j.* FROM input AS i CROSS JOIN LATERAL (  -- planner scan all active jobs instead
        SELECT id, status FROM jobwire_jobs
        WHERE queue = $1 AND id = i.id AND lease = i.lease
        FOR UPDATE
    ) AS j
),
renewed AS (
    UPDATE jobwire_jobs AS j SET
        lease_expires_at = jobwire_now() + CASE WHEN j.heartbeat > 0 THEN j.heartbeat ELSE $4 END,
        touched = jobwire_now()
    FROM (SELECT DISTINCT id FROM locked WHERE status IN ('active', 'aborting')) AS o
    WHERE j.queue = $1 AND j.id = o.id
    RETURNING j.id, j.lease, j.status
)
SELECT id, lease, status FROM renewed
"""

# Like update.lua: $2 id, $3 token, $4 progress (NULL keeps it), $5 meta JSON (NULL keeps
# it), $6 the events channel. Returns how many jobs changed (0: stale lease).
UPDATE = """
WITH updated AS (
    UPDATE jobwire_jobs SET
        progress = coalesce($4, progress),
        meta = coalesce($5::json, meta),
        touched = jobwire_now()
    WHERE queue = $1 AND id = $2 AND lease = $3 AND status IN ('active', 'aborting')
    RETURNING pg_notify($6, id)
)
SELECT count(*) FROM updated
"""

# Like settle.lua. Per outcome ($2 ids, $3 tokens, $4 statuses, $5 result JSON, $6 error
# JSON, $7 retry delays, $8 only-if-expired): nothing unless the token owns the job (and,
# with only-if-expired, its lease has lapsed); an aborting job ends aborted (keeping the
# abort's error) unless it completed; 'queued' runs it again (after the delay: scheduled;
# without an error it was handed back unstarted, and its attempt is given back);
# a finished job's ttl sets its expiry (0: kept, < 0: deleted now). $9 events channel,
# $10 wake channel (a requeued job, or any job that frees a concurrency slot a queued job
# may wait for: see wake_if_slot_wanted). The first outcome for a job wins; rows are
# locked in id order.
# Returns the input position (1-based) of each outcome settled.
SETTLE = f"""
WITH input AS MATERIALIZED (
    SELECT * FROM unnest(
        $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[], $8::boolean[]
    ) WITH ORDINALITY AS t(id, lease, status, result, error, delay_s, only_if_expired, ord)
    ORDER BY id, ord
),
locked AS MATERIALIZED (  -- tested after locking (see RENEW)
    SELECT i.*, j.status AS current, j.ttl, j.lease_expires_at
    FROM input AS i CROSS JOIN LATERAL (
        SELECT status, ttl, lease_expires_at FROM jobwire_jobs
        WHERE queue = $1 AND id = i.id AND lease = i.lease
        FOR UPDATE
    ) AS j
),
outcomes AS MATERIALIZED (
    SELECT id, ord, ttl, result, delay_s,
        CASE WHEN current = 'aborting' AND status <> 'complete'
            THEN 'aborted' ELSE status END AS status,
        CASE WHEN current = 'aborting' AND status <> 'complete'
            THEN NULL ELSE error END AS error,
        CASE WHEN status = 'queued' AND current = 'active' AND delay_s <= 0
            THEN nextval('jobwire_jobs_seq') END AS seq
    FROM (
        SELECT DISTINCT ON (id) * FROM locked
        WHERE current IN ('active', 'aborting')
            AND (NOT only_if_expired OR lease_expires_at <= jobwire_now())
        ORDER BY id, ord
    ) AS first
    ORDER BY ord
),
requeued AS (
    UPDATE jobwire_jobs AS j SET
        status = CASE WHEN o.delay_s > 0 THEN 'scheduled' ELSE 'queued' END,
        scheduled = CASE WHEN o.delay_s > 0 THEN jobwire_now() + o.delay_s ELSE j.scheduled END,
        seq = coalesce(o.seq, j.seq),
        queued = CASE WHEN o.delay_s > 0 THEN j.queued ELSE jobwire_now() END,
        touched = jobwire_now(),
        error = coalesce(o.error::json, j.error),
        attempts = CASE WHEN o.error IS NULL THEN greatest(j.attempts - 1, 0) ELSE j.attempts END,
        lease = NULL,
        lease_expires_at = NULL
    FROM outcomes AS o
    WHERE j.queue = $1 AND j.id = o.id AND o.status = 'queued'
    RETURNING o.ord, pg_notify($9, j.id), pg_notify($10, '')
),
finished AS (
    UPDATE jobwire_jobs AS j SET
        status = o.status,
        completed = jobwire_now(),
        touched = jobwire_now(),
        result = CASE WHEN o.status = 'complete' THEN o.result::json ELSE j.result END,
        progress = CASE WHEN o.status = 'complete' THEN 1 ELSE j.progress END,
        error = coalesce(o.error::json, j.error),
        lease = NULL,
        lease_expires_at = NULL,
        expires_at = CASE WHEN o.ttl > 0 THEN jobwire_now() + o.ttl END
    FROM outcomes AS o
    WHERE j.queue = $1 AND j.id = o.id AND o.status IN {_FINISHED} AND o.ttl >= 0
    RETURNING o.ord, pg_notify($9, j.id), {wake_if_slot_wanted("$10", "true")}
),
dropped AS (
    DELETE FROM jobwire_jobs AS j USING outcomes AS o
    WHERE j.queue = $1 AND j.id = o.id AND o.status IN {_FINISHED} AND o.ttl < 0
    RETURNING o.ord, pg_notify($9, j.id), {wake_if_slot_wanted("$10", "true")}
)
SELECT ord FROM requeued UNION ALL SELECT ord FROM finished UNION ALL SELECT ord FROM dropped
"""

# Like abort.lua: $2 id, $3 error JSON, $4 events channel, $5 wake channel. A
# queued/scheduled job ends aborted at once (deleted if its ttl is < 0); an active one
# turns aborting (its id on the wake channel: every process's abort callbacks hear it);
# any other is left as it is. Returns the job (``how``: changed, dropped or unchanged), or no row.
ABORT = f"""
WITH target AS MATERIALIZED (
    SELECT {_columns()} FROM jobwire_jobs
    WHERE queue = $1 AND id = $2 AND {_VISIBLE}
    FOR UPDATE
),
changed AS (
    UPDATE jobwire_jobs AS j SET {abort_changes("t", "$3")}
    FROM target AS t
    WHERE j.queue = $1 AND j.id = $2 AND t.id = $2 AND {abortable("t")}
    RETURNING {_columns("j")}, pg_notify($4, j.id), {announce_abort("$5")}
),
dropped AS (
    DELETE FROM jobwire_jobs AS j USING target AS t
    WHERE j.queue = $1 AND j.id = $2 AND t.status IN ('queued', 'scheduled') AND t.ttl < 0
    RETURNING {_columns("j")}, pg_notify($4, j.id)
)
SELECT 'changed' AS how, {_columns()} FROM changed
UNION ALL SELECT 'dropped', {_columns()} FROM dropped
UNION ALL SELECT 'unchanged', {_columns()} FROM target
    WHERE status NOT IN ('queued', 'scheduled', 'active')
"""

# Like retry.lua: $2 id, $3 events channel, $4 wake channel. Queue a finished job again
# (code 1), unless it is live (3) or another live job holds its key (2). Returns the code
# and the job, or no row when there is no such job. A key taken between the check and the
# update raises a unique violation (the caller reports it as code 2).
RETRY = f"""
WITH target AS MATERIALIZED (
    SELECT {_columns()} FROM jobwire_jobs
    WHERE queue = $1 AND id = $2 AND {_VISIBLE}
    FOR UPDATE
),
held AS MATERIALIZED (
    SELECT EXISTS (
        SELECT 1 FROM jobwire_jobs AS o JOIN target AS t ON o.key = t.key AND o.id <> t.id
        WHERE o.queue = $1 AND o.key IS NOT NULL AND o.status IN {_LIVE}
    ) AS held
),
requeued AS (
    UPDATE jobwire_jobs AS j SET
        status = 'queued', seq = nextval('jobwire_jobs_seq'), queued = jobwire_now(),
        touched = jobwire_now(), result = NULL, completed = 0, progress = 0,
        expires_at = NULL
    FROM target AS t, held AS h
    WHERE j.queue = $1 AND j.id = $2 AND t.status IN {_FINISHED} AND NOT h.held
    RETURNING {_columns("j")}, pg_notify($3, j.id), pg_notify($4, '')
)
SELECT 1 AS code, {_columns()} FROM requeued
UNION ALL
SELECT CASE WHEN t.status IN {_LIVE} THEN 3 ELSE 2 END, {_columns("t")}
FROM target AS t WHERE NOT EXISTS (SELECT 1 FROM requeued)
"""

# Like expired.lua: delete up to $3 finished jobs past their ttl, then return up to $2
# active/aborting jobs whose lease has lapsed.
EXPIRED = f"""
WITH purged AS (
    DELETE FROM jobwire_jobs
    WHERE queue = $1 AND id = ANY(ARRAY(
        SELECT id FROM jobwire_jobs
        WHERE queue = $1 AND status IN {_FINISHED} AND expires_at <= jobwire_now()
        LIMIT $3
        FOR UPDATE SKIP LOCKED
    ))
)
SELECT {_columns()} FROM jobwire_jobs
WHERE queue = $1 AND status IN ('active', 'aborting') AND lease_expires_at <= jobwire_now()
ORDER BY lease_expires_at, id
LIMIT $2
"""

# $2 worker id, $3 info JSON; also forgets workers unseen for an hour.
TOUCH_WORKER = """
WITH seen AS (
    INSERT INTO jobwire_workers AS w (queue, id, seen, info)
    VALUES ($1, $2, jobwire_now(), $3::json)
    ON CONFLICT (queue, id) DO UPDATE SET seen = excluded.seen, info = excluded.info
)
DELETE FROM jobwire_workers WHERE queue = $1 AND id <> $2 AND seen < jobwire_now() - 3600
"""

# $2 seconds: workers seen within that long.
WORKERS = """
SELECT id, seen, info FROM jobwire_workers
WHERE queue = $1 AND seen >= jobwire_now() - $2
ORDER BY seen, id
"""


def migrations() -> list[tuple[int, str, str]]:
    """The schema migrations shipped with the package: ``(version, name, sql)``, in order."""
    folder = importlib.resources.files("jobwire.backends.postgres") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d+)_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text()))
    return sorted(found)


async def migrate(conn: asyncpg.Connection | PoolConnectionProxy) -> list[int]:
    """Bring the schema up to date, applying each missing migration once.

    Runs in one transaction under ``pg_advisory_xact_lock``, so processes starting at the
    same time apply each migration exactly once (the others wait, then find it done).

    Returns:
        The versions applied by this call (empty when the schema was current).
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS jobwire_migrations (
                version    integer     PRIMARY KEY,
                name       text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        done = {
            row["version"] for row in await conn.fetch("SELECT version FROM jobwire_migrations")
        }
        applied = []
        for version, name, sql in migrations():
            if version not in done:
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO jobwire_migrations (version, name) VALUES ($1, $2)", version, name
                )
                applied.append(version)
        return applied
