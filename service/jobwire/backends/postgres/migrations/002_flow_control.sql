-- Flow control (issue 15): a job's concurrency key, a queue's pause state and limits, and
-- the log of lease starts that rate limits count. The lease of a limited queue is in 003.
-- Idempotent, like 001.

ALTER TABLE jobwire_jobs ADD COLUMN IF NOT EXISTS concurrency_key text;

-- The queue's row carries its flow control. Leases of a queue that is neither paused nor
-- limited take the fast statement, which reads this row FOR SHARE (so a change of the row
-- waits for leases under way, and leases that waited see the new row); leases of a limited
-- queue take jobwire_lease_limited, which locks it FOR UPDATE: one at a time per queue.
-- Besides the settings as stored, the numbers the limited lease needs at every call are
-- kept in columns (flow.settings_args derives them), so it parses no JSON unless a limit
-- per function or per key may hold a job back.
ALTER TABLE jobwire_queues
    ADD COLUMN IF NOT EXISTS paused           boolean NOT NULL DEFAULT false,
    -- QueueSettings.to_json(); NULL: never configured
    ADD COLUMN IF NOT EXISTS settings         json,
    -- the settings set at least one limit
    ADD COLUMN IF NOT EXISTS limited          boolean NOT NULL DEFAULT false,
    -- the queue's own limits (NULL: none)
    ADD COLUMN IF NOT EXISTS max_active       integer,
    ADD COLUMN IF NOT EXISTS rate_limit       integer,
    ADD COLUMN IF NOT EXISTS rate_period_s    double precision,
    -- limits per function or per concurrency key: whether there are any, the lowest
    -- max_active and rate limit among them, and their longest rate window
    ADD COLUMN IF NOT EXISTS scoped           boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS scoped_max_active integer,
    ADD COLUMN IF NOT EXISTS scoped_rate_limit integer,
    ADD COLUMN IF NOT EXISTS scoped_period_s  double precision;

-- Rate limits' sliding windows: n jobs of the queue started at `at` (one row per lease call
-- and bucket), total the bucket's starts so far (so the starts within a window are the
-- newest row's total less the total before the window's first row: two probes, however
-- many rows the window holds). scope 'queue' (name ''; every start of a queue with any
-- rate), 'function' (a function with a rate) or 'key' (a concurrency key, under
-- rate_per_key). Leases prune rows older than the longest window once some are older than
-- two.
CREATE TABLE IF NOT EXISTS jobwire_starts (
    queue text             NOT NULL,
    scope text             NOT NULL CONSTRAINT jobwire_starts_scope CHECK (
        scope IN ('queue', 'function', 'key')
    ),
    name  text             NOT NULL,
    at    double precision NOT NULL,
    n     integer          NOT NULL,
    total bigint           NOT NULL
);

-- One bucket's window, its first and newest rows (total breaks a tie of clocks).
CREATE INDEX IF NOT EXISTS jobwire_starts_window
    ON jobwire_starts (queue, scope, name, at, total);

-- Pruning.
CREATE INDEX IF NOT EXISTS jobwire_starts_age ON jobwire_starts (queue, at);

-- A row of the limited lease's answer: its state and next_s (first row), or a leased job's
-- columns (sql.JOB_COLUMNS), flat: a composite column would cost a copy per job.
DO $$ BEGIN
    CREATE TYPE jobwire_lease_row AS (
        state text, next_s double precision,
        id text, status text, function text, kwargs json, key text, concurrency_key text,
        priority integer, timeout double precision, heartbeat double precision,
        retries integer, attempts integer, ttl integer, scheduled double precision,
        retry_delay double precision, retry_backoff json, progress double precision,
        meta json, result json, error json, created double precision, queued double precision,
        started double precision, completed double precision, touched double precision,
        worker text, lease text
    );
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
