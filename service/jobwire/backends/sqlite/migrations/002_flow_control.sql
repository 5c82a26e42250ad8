-- Jobwire on SQLite, schema version 2: flow control (pause, limits, concurrency keys).

-- The job option that groups jobs for the per-key limits (NULL: no key).
ALTER TABLE jobwire_jobs ADD COLUMN concurrency_key TEXT;

-- A queue's pause state and limits, stored with it so every process sees them.
-- `settings` is QueueSettings JSON (NULL: no limits, and leases take the plain path);
-- `holds_slots` is 1 while a concurrency limit is set: a job leaving active/aborting then
-- wakes waiting leases, since its slot may let a held job start.
ALTER TABLE jobwire_queues ADD COLUMN paused INTEGER NOT NULL DEFAULT 0
    CHECK (paused IN (0, 1));
ALTER TABLE jobwire_queues ADD COLUMN settings TEXT;
ALTER TABLE jobwire_queues ADD COLUMN holds_slots INTEGER NOT NULL DEFAULT 0
    CHECK (holds_slots IN (0, 1));
-- The queue-wide rate's window (NULL: no such rate), so that a lease reads how full that
-- window is in its first statement.
ALTER TABLE jobwire_queues ADD COLUMN rate_period_s REAL;

-- The sweeper's index, widened so the concurrency limits count the active jobs by
-- function and key from it alone (no counters to keep in step with every transition, no
-- extra index to maintain; `status` makes it covering for that count).
DROP INDEX jobwire_jobs_lease;
CREATE INDEX jobwire_jobs_lease
    ON jobwire_jobs (queue, lease_expires, function, concurrency_key, status)
    WHERE status IN ('active', 'aborting');

-- The rate limits' sliding-window logs: `n` jobs of the scope started at `at`. A scope is
-- '' (the queue), 'f:' || function or 'k:' || concurrency_key. The sweeper prunes entries
-- older than the queue's longest window.
CREATE TABLE jobwire_starts (
    queue  TEXT    NOT NULL,
    scope  TEXT    NOT NULL,
    at     REAL    NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (queue, scope, at)
) WITHOUT ROWID;
