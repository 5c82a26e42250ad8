-- Jobwire on SQLite, schema version 1. Times are Unix epoch seconds (REAL) from the
-- local clock; JSON columns hold orjson text.

-- Every queue's jobs, one row each. A finished job keeps its row until `expires_at`
-- (NULL: forever); readers treat a row past `expires_at` as gone.
CREATE TABLE jobwire_jobs (
    queue          TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    function       TEXT    NOT NULL,
    kwargs         TEXT    NOT NULL,               -- JSON object
    key            TEXT,                           -- dedup key
    status         TEXT    NOT NULL CHECK (status IN (
                       'queued', 'scheduled', 'active', 'aborting',
                       'complete', 'failed', 'aborted')),
    priority       INTEGER NOT NULL DEFAULT 0,
    seq            INTEGER NOT NULL DEFAULT 0,     -- FIFO order among queued jobs
    timeout        REAL,
    heartbeat      REAL    NOT NULL DEFAULT 0,
    retries        INTEGER NOT NULL DEFAULT 0,
    attempts       INTEGER NOT NULL DEFAULT 0,
    ttl            INTEGER NOT NULL DEFAULT 600,
    scheduled      REAL    NOT NULL DEFAULT 0,     -- due time while scheduled
    retry_delay    REAL    NOT NULL DEFAULT 0,
    retry_backoff  TEXT    NOT NULL DEFAULT 'false',  -- JSON: false, true or a cap
    progress       REAL    NOT NULL DEFAULT 0,
    meta           TEXT    NOT NULL DEFAULT '{}',  -- JSON object
    result         TEXT,                           -- JSON, once complete
    error          TEXT,                           -- JSON ErrorInfo
    created        REAL    NOT NULL DEFAULT 0,
    queued         REAL    NOT NULL DEFAULT 0,
    started        REAL    NOT NULL DEFAULT 0,
    completed      REAL    NOT NULL DEFAULT 0,
    touched        REAL    NOT NULL DEFAULT 0,
    worker         TEXT,
    lease          TEXT,                           -- token of the current attempt
    lease_expires  REAL,                           -- while active or aborting
    expires_at     REAL,                           -- finished with ttl > 0
    PRIMARY KEY (queue, id)
);

-- Shaped like the dequeue: highest priority first, then FIFO.
CREATE INDEX jobwire_jobs_dequeue ON jobwire_jobs (queue, status, priority DESC, seq);

-- One live job per dedup key; a finished job frees its key.
CREATE UNIQUE INDEX jobwire_jobs_live_key ON jobwire_jobs (queue, key)
    WHERE key IS NOT NULL AND status IN ('queued', 'scheduled', 'active', 'aborting');

-- Promotion of due scheduled jobs, and the next due time.
CREATE INDEX jobwire_jobs_due ON jobwire_jobs (queue, scheduled)
    WHERE status = 'scheduled';

-- The sweeper: attempts whose lease has expired.
CREATE INDEX jobwire_jobs_lease ON jobwire_jobs (queue, lease_expires)
    WHERE status IN ('active', 'aborting');

-- Finished jobs past their ttl.
CREATE INDEX jobwire_jobs_expiry ON jobwire_jobs (queue, expires_at)
    WHERE expires_at IS NOT NULL;

-- Per-queue counters: `seq` hands out FIFO positions; `work_version` moves on every commit
-- that brings new work, `job_version` on every commit that changes a job: other processes
-- poll them to wake their waiters.
CREATE TABLE jobwire_queues (
    queue        TEXT    PRIMARY KEY,
    seq          INTEGER NOT NULL DEFAULT 0,
    work_version INTEGER NOT NULL DEFAULT 0,
    job_version  INTEGER NOT NULL DEFAULT 0
);

-- Jobs finished per minute (Unix minute), for queue.info()'s throughput; an hour is kept.
CREATE TABLE jobwire_throughput (
    queue     TEXT    NOT NULL,
    minute    INTEGER NOT NULL,
    finished  INTEGER NOT NULL,
    PRIMARY KEY (queue, minute)
);

-- Workers seen lately, for queue.info().
CREATE TABLE jobwire_workers (
    queue  TEXT NOT NULL,
    id     TEXT NOT NULL,
    seen   REAL NOT NULL,
    info   TEXT NOT NULL,                          -- JSON object
    PRIMARY KEY (queue, id)
);
