-- Jobwire's PostgreSQL schema, version 1. Every statement is idempotent; the backend runs
-- it once, under pg_advisory_xact_lock, and records it in jobwire_migrations.
--
-- Times are Unix epoch seconds (double precision) from the database clock, like the
-- Redis backend's TIME-based stamps; 0 means "not yet". JSON columns use `json`, not
-- `jsonb`: `json` keeps the exact text orjson wrote (jsonb would reorder keys and turn a
-- float such as 1e20 into an integer), and nothing here queries inside the documents.

-- The clock every statement uses: one value per statement, like TIME at a script's start.
CREATE OR REPLACE FUNCTION jobwire_now() RETURNS double precision
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT extract(epoch FROM statement_timestamp())::double precision $$;

-- FIFO order within one priority: a job takes the next value each time it is queued.
CREATE SEQUENCE IF NOT EXISTS jobwire_jobs_seq AS bigint;

CREATE TABLE IF NOT EXISTS jobwire_jobs (
    queue            text             NOT NULL,
    id               text             NOT NULL,
    status           text             NOT NULL CONSTRAINT jobwire_jobs_status CHECK (
        status IN ('queued', 'scheduled', 'active', 'aborting', 'aborted', 'failed', 'complete')
    ),
    seq              bigint           NOT NULL DEFAULT nextval('jobwire_jobs_seq'),
    function         text             NOT NULL,
    kwargs           json             NOT NULL,
    key              text,
    priority         integer          NOT NULL DEFAULT 0,
    timeout          double precision,
    heartbeat        double precision NOT NULL DEFAULT 0,
    retries          integer          NOT NULL DEFAULT 0,
    attempts         integer          NOT NULL DEFAULT 0,
    ttl              integer          NOT NULL DEFAULT 600,
    scheduled        double precision NOT NULL DEFAULT 0,
    retry_delay      double precision NOT NULL DEFAULT 0,
    retry_backoff    json             NOT NULL DEFAULT 'false',
    progress         double precision NOT NULL DEFAULT 0,
    meta             json             NOT NULL DEFAULT '{}',
    result           json,
    error            json,
    created          double precision NOT NULL DEFAULT 0,
    queued           double precision NOT NULL DEFAULT 0,
    started          double precision NOT NULL DEFAULT 0,
    completed        double precision NOT NULL DEFAULT 0,
    touched          double precision NOT NULL DEFAULT 0,
    worker           text,
    lease            text,
    -- active/aborting: when the lease lapses unless renewed (NULL otherwise).
    lease_expires_at double precision,
    -- finished with ttl > 0: when the job stops being readable (NULL: kept, or not finished).
    expires_at       double precision,
    -- id first: a lookup by id is an exact probe whatever the planner believes about the
    -- queue's size (statistics of a queue table are always stale), and nothing can range-scan
    -- a whole queue through it; per-queue access goes through the partial indexes below,
    -- which hold one status group each.
    PRIMARY KEY (id, queue)
);

ALTER SEQUENCE jobwire_jobs_seq OWNED BY jobwire_jobs.seq;

-- Four partial indexes (queued, scheduled, active/aborting, finished) split every job by
-- status, so each per-queue query reads only the jobs of the status group it names.

-- Shaped like the dequeue query: WHERE queue = $1 AND status = 'queued'
-- ORDER BY priority DESC, seq LIMIT n. Only queued jobs are in it, so it stays as small as
-- the backlog and a dequeue reads just the first n entries.
CREATE INDEX IF NOT EXISTS jobwire_jobs_dequeue
    ON jobwire_jobs (queue, priority DESC, seq) WHERE status = 'queued';

-- Due scheduled jobs (promotion at each dequeue) and the next due time.
CREATE INDEX IF NOT EXISTS jobwire_jobs_scheduled
    ON jobwire_jobs (queue, scheduled) WHERE status = 'scheduled';

-- Leases that lapsed (the sweeper).
CREATE INDEX IF NOT EXISTS jobwire_jobs_leases
    ON jobwire_jobs (queue, lease_expires_at) WHERE status IN ('active', 'aborting');

-- Finished jobs: counts, listing newest first, and housekeeping of those past their ttl.
CREATE INDEX IF NOT EXISTS jobwire_jobs_finished
    ON jobwire_jobs (queue, status, expires_at) WHERE status IN ('aborted', 'complete', 'failed');

-- Dedup: at most one live job per key and queue. A finished job leaves the index, which
-- frees its key; jobs without a key are not in it (so it is small, and no query on status
-- alone can pick it over the indexes above).
CREATE UNIQUE INDEX IF NOT EXISTS jobwire_jobs_live_key
    ON jobwire_jobs (queue, key)
    WHERE key IS NOT NULL AND status IN ('queued', 'scheduled', 'active', 'aborting');

CREATE TABLE IF NOT EXISTS jobwire_workers (
    queue text             NOT NULL,
    id    text             NOT NULL,
    seen  double precision NOT NULL,
    info  json             NOT NULL DEFAULT '{}',
    PRIMARY KEY (queue, id)
);

-- Every queue that ever had a job (registered at its first enqueue in each process).
CREATE TABLE IF NOT EXISTS jobwire_queues (
    name text PRIMARY KEY
);
