"""SQL of flow control on PostgreSQL: a queue's pause state and limits, the lease of a
limited queue, and bulk operations by filter.

Pause state and limits live in the queue's ``jobwire_queues`` row, which every lease reads
(see ``sql.LEASE``, and ``jobwire_lease_within_limits`` in migration 003). As in ``sql``,
``$1`` is always the queue name and each statement is one round trip.
"""

from typing import Any

from jobwire.backends.postgres.sql import (
    abort_changes,
    abortable,
    announce_abort,
    wake_if_slot_wanted,
)
from jobwire.flow import JobFilter, QueueSettings
from jobwire.job import FINISHED, LIVE, Status

LEASE_WINDOW = 1000  # queued jobs a limited lease looks at, at most (the queue's head)

_FINISHED = "(" + ", ".join(f"'{s.value}'" for s in sorted(FINISHED)) + ")"
_LIVE = "(" + ", ".join(f"'{s.value}'" for s in sorted(LIVE)) + ")"

# The stored settings and pause state (no row: never configured).
SETTINGS = "SELECT settings, paused FROM jobwire_queues WHERE name = $1"

# $2 settings JSON, $3 whether they set any limit, $4 wake channel: relaxed limits may let
# waiting leases take jobs now. The numbers limited leases read at every call are derived
# from the settings (jobwire_queue_limits); without a rate limit, the queue's rate windows
# are forgotten. Waits for leases under way (they hold the row FOR SHARE).
PUT_SETTINGS = """
WITH limits AS MATERIALIZED (
    SELECT * FROM jobwire_queue_limits($2::jsonb)
),
saved AS (
    INSERT INTO jobwire_queues AS q (
        name, settings, limited, max_active, rate_limit, rate_period_s, scoped,
        scoped_max_active, scoped_rate_limit, scoped_period_s
    )
    SELECT $1, $2::json, $3, l.max_active, l.rate_limit, l.rate_period_s, l.scoped,
        l.scoped_max_active, l.scoped_rate_limit, l.scoped_period_s
    FROM limits AS l
    ON CONFLICT (name) DO UPDATE SET
        settings = excluded.settings, limited = excluded.limited,
        max_active = excluded.max_active, rate_limit = excluded.rate_limit,
        rate_period_s = excluded.rate_period_s, scoped = excluded.scoped,
        scoped_max_active = excluded.scoped_max_active,
        scoped_rate_limit = excluded.scoped_rate_limit,
        scoped_period_s = excluded.scoped_period_s
    RETURNING pg_notify($4, '')
),
forgotten AS (
    DELETE FROM jobwire_starts
    WHERE queue = $1
        AND (SELECT rate_limit IS NULL AND scoped_rate_limit IS NULL FROM limits)
)
SELECT count(*) FROM saved
"""

# $2 paused, $3 wake channel: resuming wakes waiting leases in every process.
SET_PAUSED = """
INSERT INTO jobwire_queues AS q (name, paused) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused
RETURNING CASE WHEN NOT q.paused THEN pg_notify($3, '') END
"""

# $2 max jobs, $3 lease token prefix, $4 worker id, $5 default lease seconds, $6 the
# window. One row per leased job (sql.JOB_COLUMNS), then a row with the state
# ('unlimited', 'paused' or 'limited') and next_s.
LEASE_LIMITED = "SELECT * FROM jobwire_lease_within_limits($1, $2, $3, $4, $5, $6)"

# Bulk operations visit the queue's next jobs by id after the cursor $2 ('' at the start),
# at most $3 of them, and change those that match the filter ($4 status, $5 function,
# $6 key prefix, $7 created before, $8 created at or after; NULL: any). Ids never change,
# so a pass visits each job once, however the action moves it. The filter is tested again
# where rows are changed (it also holds for rows changed meanwhile). $9 is the events
# channel. Each returns how many jobs changed, how many were visited and the last id.
_VISITED = """
visited AS MATERIALIZED (
    SELECT id FROM jobwire_jobs WHERE queue = $1 AND id > $2 ORDER BY id LIMIT $3
)"""


def _match(ids: str = "visited") -> str:
    """The jobs of CTE ``ids`` that match the filter (``j``: jobwire_jobs)."""
    return f"""j.queue = $1 AND j.id = ANY(ARRAY(SELECT id FROM {ids}))
        AND ($4::text IS NULL OR j.status = $4)
        AND ($5::text IS NULL OR j.function = $5)
        AND ($6::text IS NULL OR starts_with(coalesce(j.key, ''), $6))
        AND ($7::float8 IS NULL OR j.created < $7)
        AND ($8::float8 IS NULL OR j.created >= $8)
        AND (j.expires_at IS NULL OR j.expires_at > jobwire_now())"""


_COUNTED = """
SELECT (SELECT count(*) FROM changed) AS changed, (SELECT count(*) FROM visited) AS visited,
    (SELECT max(id) FROM visited) AS last
"""

# Like retry.lua per job: finished jobs queue again, unless a live job holds their key (of
# finished jobs sharing a key, the first by id takes it). $10 wake channel. A key taken
# meanwhile by an enqueue raises a unique violation (the caller runs the chunk again).
BULK_RETRY = f"""
WITH {_VISITED},
matched AS MATERIALIZED (
    SELECT j.id, j.key, row_number() OVER (PARTITION BY j.key ORDER BY j.id) AS nth
    FROM jobwire_jobs AS j
    WHERE {_match()} AND j.status IN {_FINISHED}
),
chosen AS MATERIALIZED (
    SELECT id FROM matched AS m
    WHERE m.key IS NULL OR (m.nth = 1 AND NOT EXISTS (
        SELECT FROM jobwire_jobs AS o
        WHERE o.queue = $1 AND o.key = m.key AND o.key IS NOT NULL AND o.status IN {_LIVE}
    ))
    ORDER BY id
),
changed AS (
    UPDATE jobwire_jobs AS j SET
        status = 'queued', seq = nextval('jobwire_jobs_seq'), queued = jobwire_now(),
        touched = jobwire_now(), result = NULL, completed = 0, progress = 0,
        expires_at = NULL
    WHERE {_match("chosen")} AND j.status IN {_FINISHED}
    RETURNING pg_notify($9, j.id), pg_notify($10, '')
)
{_COUNTED}"""

# Like delete.lua per job. $10 wake channel (a running job of a limited queue frees a slot).
BULK_DELETE = f"""
WITH {_VISITED},
changed AS (
    DELETE FROM jobwire_jobs AS j WHERE {_match()}
    RETURNING pg_notify($9, j.id),
        {wake_if_slot_wanted("$10", "j.status IN ('active', 'aborting')")}
)
{_COUNTED}"""

# Like abort.lua per job: queued and scheduled jobs end aborted (deleted if their ttl is
# < 0), active ones turn aborting (still running: they keep their slot until settled; the
# $10 wake channel carries their ids to every process's abort callbacks). $11 the error JSON.
BULK_ABORT = f"""
WITH {_VISITED},
aborted AS (
    UPDATE jobwire_jobs AS j SET {abort_changes("j", "$11")}
    WHERE {_match()} AND {abortable("j")}
    RETURNING pg_notify($9, j.id), {announce_abort("$10")}
),
dropped AS (
    DELETE FROM jobwire_jobs AS j
    WHERE {_match()} AND j.status IN ('queued', 'scheduled') AND j.ttl < 0
    RETURNING pg_notify($9, j.id)
),
changed AS (
    SELECT FROM aborted UNION ALL SELECT FROM dropped
)
{_COUNTED}"""


def filter_args(where: JobFilter) -> list[Any]:
    """The bulk statements' filter parameters ($4..$8)."""
    return [
        None if where.status is None else Status(where.status).value,
        where.function,
        where.key_prefix,
        None if where.enqueued_before is None else float(where.enqueued_before),
        None if where.enqueued_after is None else float(where.enqueued_after),
    ]


def settings_args(settings: QueueSettings) -> list[Any]:
    """PUT_SETTINGS's parameters $2 and $3."""
    return [settings.to_json(), settings.limited]
