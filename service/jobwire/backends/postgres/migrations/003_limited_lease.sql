-- Flow control, part 2: limited leases that cost little while no limit is near. Idempotent,
-- like 001; written over 002, which databases may already have.
--
-- The numbers a limited lease needs at every call are kept in columns of the queue's row,
-- derived from its settings (jobwire_queue_limits, run by flow.PUT_SETTINGS and below for
-- queues configured before): the queue's own max_active and rate, and among the limits
-- per function or per concurrency key whether there are any, the lowest max_active, the
-- lowest rate limit and the longest window.
ALTER TABLE jobwire_queues
    ADD COLUMN IF NOT EXISTS max_active        integer,
    ADD COLUMN IF NOT EXISTS rate_limit        integer,
    ADD COLUMN IF NOT EXISTS rate_period_s     double precision,
    ADD COLUMN IF NOT EXISTS scoped            boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS scoped_max_active integer,
    ADD COLUMN IF NOT EXISTS scoped_rate_limit integer,
    ADD COLUMN IF NOT EXISTS scoped_period_s   double precision;

-- Those numbers, from settings (QueueSettings.to_json(), as jsonb).
CREATE OR REPLACE FUNCTION jobwire_queue_limits(
    p_settings jsonb,
    OUT max_active integer, OUT rate_limit integer, OUT rate_period_s double precision,
    OUT scoped boolean, OUT scoped_max_active integer, OUT scoped_rate_limit integer,
    OUT scoped_period_s double precision
)
LANGUAGE sql IMMUTABLE AS $$
    WITH scopes AS (
        SELECT (f.limits ->> 'max_active')::integer AS max_active, f.limits -> 'rate' AS rate
        FROM jsonb_each(coalesce(p_settings -> 'functions', '{}')) AS f(name, limits)
        UNION ALL
        SELECT (p_settings ->> 'max_active_per_key')::integer, p_settings -> 'rate_per_key'
    )
    SELECT
        (p_settings ->> 'max_active')::integer,
        (p_settings -> 'rate' ->> 'limit')::integer,
        (p_settings -> 'rate' ->> 'period_s')::double precision,
        coalesce(bool_or(max_active IS NOT NULL OR rate IS NOT NULL), false),
        min(max_active),
        min((rate ->> 'limit')::integer),
        max((rate ->> 'period_s')::double precision)
    FROM scopes
$$;

UPDATE jobwire_queues AS q SET
    max_active = l.max_active, rate_limit = l.rate_limit, rate_period_s = l.rate_period_s,
    scoped = l.scoped, scoped_max_active = l.scoped_max_active,
    scoped_rate_limit = l.scoped_rate_limit, scoped_period_s = l.scoped_period_s
FROM jobwire_queues AS o CROSS JOIN LATERAL jobwire_queue_limits(o.settings::jsonb) AS l
WHERE q.name = o.name AND o.settings IS NOT NULL;

-- Each rate log row carries its bucket's starts so far (total), so a window's starts are
-- the newest row's total less the total before the window's first row: two probes, however
-- many rows the window holds; leases forget rows older than the longest window at every
-- hundredth start. Every start of a queue with any rate now goes to its 'queue' bucket
-- (under 002, only with a queue-wide rate): a queue that had none gets one row per
-- time its functions' and keys' rows have, counting their starts (a start in both a
-- function's and a key's bucket counts twice: a window holds no fewer than it did).
ALTER TABLE jobwire_starts ADD COLUMN IF NOT EXISTS total bigint;
INSERT INTO jobwire_starts (queue, scope, name, at, n)
SELECT s.queue, 'queue', '', s.at, sum(s.n) FROM jobwire_starts AS s
WHERE s.total IS NULL AND NOT EXISTS (
    SELECT FROM jobwire_starts AS o WHERE o.queue = s.queue AND o.scope = 'queue'
)
GROUP BY s.queue, s.at;
UPDATE jobwire_starts AS s SET total = t.total
FROM (
    SELECT ctid, sum(n) OVER (PARTITION BY queue, scope, name ORDER BY at ROWS UNBOUNDED
        PRECEDING) AS total
    FROM jobwire_starts
) AS t
WHERE s.ctid = t.ctid AND s.total IS NULL;
ALTER TABLE jobwire_starts ALTER COLUMN total SET NOT NULL;

-- One bucket's window, its first and newest rows (total breaks a tie of clocks).
DROP INDEX IF EXISTS jobwire_starts_window;
CREATE INDEX IF NOT EXISTS jobwire_starts_bucket
    ON jobwire_starts (queue, scope, name, at, total);

-- A row of the limited lease's answer: its state and next_s (the last row), or a leased
-- job's columns (sql.JOB_COLUMNS), flat: a composite column would cost a copy per job.
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

-- 002's lease and running counts, replaced by the functions below (under other names: a
-- function cannot change the shape of its answer, and 002 stays runnable again).
DROP FUNCTION IF EXISTS jobwire_lease_limited(
    text, integer, text, text, double precision, integer
);
DROP FUNCTION IF EXISTS jobwire_running(text, jsonb, boolean);

-- The lease of a limited or paused queue (flow.LEASE_LIMITED), atomic with its limits (see
-- flow.QueueSettings).
--
-- jobwire_lease_within_limits locks the queue's row FOR UPDATE, so leases of a limited
-- queue take turns. A volatile PL/pgSQL function takes a new snapshot per statement: the
-- statements after the lock see every lease committed before it, so two leases never
-- count without each other. The clock is read after the lock (clock_timestamp): starts
-- are logged in the order they happened.
--
-- It counts what runs (active and aborting jobs) and what started within the rate windows,
-- then takes jobs from the head of the queue (by priority, then FIFO):
-- * as many as the queue-wide limits allow, in one statement shaped like the fast one
--   (sql.LEASE), when no limit per function or per key can hold a job back in this lease:
--   none is set, or there is room for a whole lease under the lowest of them (a function
--   or a key counts at most what the whole queue does);
-- * else by a walk (jobwire_lease_walk) over up to p_window queued jobs, taking each that
--   no limit holds back, up to p_max: a job held by its function's or key's limit stays
--   queued and the walk goes on past it; a queue-wide limit ends it.
--
-- Answers jobwire_lease_row rows: one per leased job in dequeue order (its lease token
-- p_token || '.' || rank), then a last row with the state ('unlimited': nothing to enforce,
-- lease with the fast statement; 'paused'; 'limited') and next_s, the seconds until a
-- scheduled job is due or a rate window that held a job back admits one (NULL: neither).
CREATE OR REPLACE FUNCTION jobwire_lease_within_limits(
    p_queue text, p_max integer, p_token text, p_worker text, p_lease_s double precision,
    p_window integer
) RETURNS SETOF jobwire_lease_row
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    q           record;             -- the queue's flow control (jobwire_queues)
    last_row    jobwire_lease_row;
    v_now       double precision;
    v_max_period double precision;  -- the longest rate window
    v_active    bigint;             -- active or aborting jobs of the queue
    v_total     bigint;             -- the queue's starts so far (its newest log row)
    v_started   bigint;             -- ... within its rate window, the oldest of those at
    v_oldest    double precision;
    v_scoped_started bigint;        -- ... within the longest window of the scoped rates
    v_room      integer;            -- jobs the queue-wide limits let this lease take
    v_taken     bigint;
BEGIN
    SELECT paused, limited, max_active, rate_limit, rate_period_s, scoped, scoped_max_active,
        scoped_rate_limit, scoped_period_s,
        CASE WHEN scoped THEN settings::jsonb END AS settings
    INTO q FROM jobwire_queues WHERE name = p_queue FOR UPDATE;
    IF NOT FOUND OR NOT (q.paused OR q.limited) THEN
        last_row.state := 'unlimited';
        RETURN NEXT last_row;
        RETURN;
    ELSIF q.paused THEN
        last_row.state := 'paused';
        RETURN NEXT last_row;
        RETURN;
    END IF;
    v_now := extract(epoch FROM clock_timestamp());
    v_max_period := greatest(q.rate_period_s, q.scoped_period_s);

    -- What runs and what started, in one statement: the queue's running jobs; its starts
    -- so far (the newest log row's total), within its rate window and within the longest
    -- scoped one (less the total before each window's first row).
    SELECT
        CASE WHEN q.max_active IS NOT NULL OR q.scoped_max_active IS NOT NULL THEN (
            SELECT count(*) FROM jobwire_jobs
            WHERE queue = p_queue AND status IN ('active', 'aborting')
        ) END,
        newest.total, newest.total - first.total + first.n, first.at,
        newest.total - scoped_first.total + scoped_first.n
    INTO v_active, v_total, v_started, v_oldest, v_scoped_started
    FROM (SELECT) AS one
    LEFT JOIN LATERAL (
        SELECT st.total FROM jobwire_starts AS st
        WHERE v_max_period IS NOT NULL
            AND st.queue = p_queue AND st.scope = 'queue' AND st.name = ''
        ORDER BY st.at DESC, st.total DESC LIMIT 1
    ) AS newest ON true
    LEFT JOIN LATERAL (
        SELECT st.total, st.n, st.at FROM jobwire_starts AS st
        WHERE q.rate_period_s IS NOT NULL
            AND st.queue = p_queue AND st.scope = 'queue' AND st.name = ''
            AND st.at > v_now - q.rate_period_s
        ORDER BY st.at, st.total LIMIT 1
    ) AS first ON true
    LEFT JOIN LATERAL (
        SELECT st.total, st.n FROM jobwire_starts AS st
        WHERE q.scoped_period_s IS NOT NULL
            AND st.queue = p_queue AND st.scope = 'queue' AND st.name = ''
            AND st.at > v_now - q.scoped_period_s
        ORDER BY st.at, st.total LIMIT 1
    ) AS scoped_first ON true;
    v_active := coalesce(v_active, 0);
    v_total := coalesce(v_total, 0);
    v_started := coalesce(v_started, 0);
    v_scoped_started := coalesce(v_scoped_started, 0);

    IF q.scoped AND NOT (
        (q.scoped_max_active IS NULL OR v_active + p_max <= q.scoped_max_active)
        AND (q.scoped_rate_limit IS NULL OR v_scoped_started + p_max <= q.scoped_rate_limit)
    ) THEN
        RETURN QUERY SELECT * FROM jobwire_lease_walk(
            p_queue, p_max, p_token, p_worker, p_lease_s, p_window, v_now, q.settings,
            q.max_active - v_active, q.rate_limit - v_started,
            coalesce(v_oldest, v_now) + q.rate_period_s, v_max_period IS NOT NULL, v_total
        );
        GET DIAGNOSTICS v_taken = ROW_COUNT;
        v_taken := v_taken - 1;  -- (its last row says how it went)
        IF v_max_period IS NOT NULL AND v_total / 100 <> (v_total + v_taken) / 100 THEN
            DELETE FROM jobwire_starts WHERE queue = p_queue AND at <= v_now - v_max_period;
        END IF;
        RETURN;
    END IF;

    -- The head of the queue, as many jobs as the queue-wide limits allow.
    v_room := greatest(least(p_max, q.max_active - v_active, q.rate_limit - v_started), 0);
    RETURN QUERY
    WITH due AS MATERIALIZED (
        SELECT id, priority, scheduled FROM jobwire_jobs
        WHERE queue = p_queue AND status = 'scheduled' AND scheduled <= v_now
        ORDER BY scheduled, id
        LIMIT 1000
        FOR UPDATE SKIP LOCKED
    ),
    promoted AS MATERIALIZED (
        SELECT id, priority, nextval('jobwire_jobs_seq') AS seq FROM due ORDER BY scheduled, id
    ),
    candidates AS MATERIALIZED (
        SELECT id, priority, seq FROM jobwire_jobs
        WHERE queue = p_queue AND status = 'queued'
        ORDER BY priority DESC, seq
        LIMIT v_room
        FOR UPDATE SKIP LOCKED
    ),
    picked AS MATERIALIZED (
        SELECT id, row_number() OVER (ORDER BY priority DESC, seq) AS rank
        FROM (SELECT * FROM candidates UNION ALL SELECT * FROM promoted) AS c
        ORDER BY priority DESC, seq
        LIMIT v_room
    ),
    leased AS (
        UPDATE jobwire_jobs AS j SET
            status = 'active',
            attempts = j.attempts + 1,
            queued = CASE WHEN j.status = 'scheduled' THEN v_now ELSE j.queued END,
            started = v_now,
            touched = v_now,
            lease = p_token || '.' || p.rank,
            worker = p_worker,
            lease_expires_at = v_now
                + CASE WHEN j.heartbeat > 0 THEN j.heartbeat ELSE p_lease_s END
        FROM picked AS p
        WHERE j.queue = p_queue AND j.id = p.id
        RETURNING p.rank, j.*
    ),
    requeued AS (
        UPDATE jobwire_jobs AS j SET
            status = 'queued', seq = p.seq, queued = v_now, touched = v_now
        FROM promoted AS p
        WHERE j.queue = p_queue AND j.id = p.id AND p.id NOT IN (SELECT id FROM picked)
    ),
    logged_queue AS (  -- a rate of the queue alone: its bucket only
        INSERT INTO jobwire_starts (queue, scope, name, at, n, total)
        SELECT p_queue, 'queue', '', v_now, count(*), v_total + count(*)
        FROM leased WHERE v_max_period IS NOT NULL AND NOT q.scoped HAVING count(*) > 0
    ),
    logged AS (
        SELECT jobwire_log_starts(
            p_queue, v_now, q.settings, true, v_total,
            array_agg(l.function), array_agg(l.concurrency_key)
        ) FROM leased AS l WHERE v_max_period IS NOT NULL AND q.scoped HAVING count(*) > 0
    )
    SELECT NULL::text, NULL::double precision, l.id, l.status, l.function, l.kwargs, l.key,
        l.concurrency_key, l.priority, l.timeout, l.heartbeat, l.retries, l.attempts, l.ttl,
        l.scheduled, l.retry_delay, l.retry_backoff, l.progress, l.meta, l.result, l.error,
        l.created, l.queued, l.started, l.completed, l.touched, l.worker, l.lease
    FROM leased AS l LEFT JOIN logged ON true ORDER BY l.rank;
    GET DIAGNOSTICS v_taken = ROW_COUNT;
    -- Forget starts older than the longest window at every hundredth start (by the queue's
    -- total): the log stays short, and most leases delete nothing.
    IF v_max_period IS NOT NULL AND v_total / 100 <> (v_total + v_taken) / 100 THEN
        DELETE FROM jobwire_starts WHERE queue = p_queue AND at <= v_now - v_max_period;
    END IF;

    last_row.state := 'limited';
    last_row.next_s := least(
        (SELECT min(j.scheduled) FROM jobwire_jobs AS j
         WHERE j.queue = p_queue AND j.status = 'scheduled'),
        CASE WHEN v_started + v_taken >= q.rate_limit  -- the rate held the rest
            THEN coalesce(v_oldest, v_now) + q.rate_period_s END
    ) - v_now;
    RETURN NEXT last_row;
END
$$;

-- Logs the starts of a lease at p_now: the jobs' functions and concurrency keys, in
-- p_functions and p_keys. One row in the queue's bucket (when p_any_rate; its total so far
-- is p_total), one per function with a rate and one per key under rate_per_key (p_settings,
-- NULL: no limit per function or key). (PL/pgSQL: its plan is kept, where a SQL function's
-- would be made again at every call.)
CREATE OR REPLACE FUNCTION jobwire_log_starts(
    p_queue text, p_now double precision, p_settings jsonb, p_any_rate boolean,
    p_total bigint, p_functions text[], p_keys text[]
) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO jobwire_starts (queue, scope, name, at, n, total)
    SELECT p_queue, b.scope, b.name, p_now, b.n, b.n + CASE
        WHEN b.scope = 'queue' THEN p_total
        ELSE coalesce((
            SELECT st.total FROM jobwire_starts AS st
            WHERE st.queue = p_queue AND st.scope = b.scope AND st.name = b.name
            ORDER BY st.at DESC, st.total DESC LIMIT 1
        ), 0)
    END
    FROM (
        SELECT w.scope, w.name, count(*) AS n
        FROM unnest(p_functions, p_keys) AS l(function, concurrency_key)
        CROSS JOIN LATERAL (VALUES
            ('queue', '', p_any_rate),
            ('function', l.function, p_settings -> 'functions' -> l.function ? 'rate'),
            ('key', l.concurrency_key,
                p_settings ? 'rate_per_key' AND l.concurrency_key IS NOT NULL)
        ) AS w(scope, name, wanted)
        WHERE w.wanted
        GROUP BY w.scope, w.name
    ) AS b;
END
$$;

-- The walk of jobwire_lease_within_limits, for a queue with limits per function or per key
-- (p_settings) near one of them. Room left under the queue's own limits: p_room_active
-- (max_active), p_room_rate (its rate, whose window admits more at p_rate_at); NULL: no
-- such limit. p_any_rate: the queue has a rate limit; p_total: its starts so far.
CREATE OR REPLACE FUNCTION jobwire_lease_walk(
    p_queue text, p_max integer, p_token text, p_worker text, p_lease_s double precision,
    p_window integer, p_now double precision, p_settings jsonb, p_room_active bigint,
    p_room_rate bigint, p_rate_at double precision, p_any_rate boolean, p_total bigint
) RETURNS SETOF jobwire_lease_row
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    last_row    jobwire_lease_row;
    v_functions jsonb := coalesce(p_settings -> 'functions', '{}');
    v_per_key   integer := (p_settings ->> 'max_active_per_key')::integer;
    v_key_rate  jsonb := p_settings -> 'rate_per_key';
    v_fn_active jsonb;              -- function -> active (functions with max_active)
    v_key_active jsonb;             -- concurrency key -> active
    v_fn_started jsonb;             -- function -> [starts, oldest] in its window
    v_key_started jsonb;            -- concurrency key -> [starts, oldest]
    v_ids       text[] := '{}';     -- the jobs taken, in dequeue order
    v_next      double precision;   -- when a held job's rate window admits one (epoch s)
BEGIN
    -- Due scheduled jobs join the queue, in due order (as the fast statement does).
    UPDATE jobwire_jobs AS j SET status = 'queued', seq = d.seq, queued = p_now, touched = p_now
    FROM (
        SELECT id, nextval('jobwire_jobs_seq') AS seq FROM (
            SELECT id, scheduled FROM jobwire_jobs
            WHERE queue = p_queue AND status = 'scheduled' AND scheduled <= p_now
            ORDER BY scheduled, id
            LIMIT 1000
            FOR UPDATE SKIP LOCKED
        ) AS due ORDER BY scheduled, id
    ) AS d
    WHERE j.queue = p_queue AND j.id = d.id;

    SELECT r.by_function, r.by_key INTO v_fn_active, v_key_active
    FROM jobwire_running_counts(p_queue, v_functions, v_per_key IS NOT NULL) AS r;
    SELECT w.by_function, w.by_key INTO v_fn_started, v_key_started
    FROM jobwire_window_starts(p_queue, p_now, v_functions, v_key_rate) AS w;
    IF p_max > 0 THEN
        SELECT w.ids, w.next_at INTO v_ids, v_next FROM jobwire_walk(
            p_queue, p_max, p_window, p_now, p_room_active, p_room_rate, p_rate_at,
            v_functions, v_fn_active, v_fn_started, v_per_key, v_key_active, v_key_rate,
            v_key_started
        ) AS w;
    END IF;

    -- Lease the jobs taken and log their starts. Each is locked by a probe of its id, then
    -- tested (one that changed meanwhile is skipped): a status test in the UPDATE would let
    -- the planner read the whole backlog through the dequeue index instead.
    RETURN QUERY
    WITH picked AS MATERIALIZED (
        SELECT p.id, p.rank, j.status
        FROM unnest(v_ids) WITH ORDINALITY AS p(id, rank) CROSS JOIN LATERAL (
            SELECT status FROM jobwire_jobs WHERE queue = p_queue AND id = p.id FOR UPDATE
        ) AS j
    ),
    leased AS (
        UPDATE jobwire_jobs AS j SET
            status = 'active',
            attempts = j.attempts + 1,
            started = p_now,
            touched = p_now,
            lease = p_token || '.' || p.rank,
            worker = p_worker,
            lease_expires_at = p_now
                + CASE WHEN j.heartbeat > 0 THEN j.heartbeat ELSE p_lease_s END
        FROM picked AS p
        WHERE j.queue = p_queue AND j.id = p.id AND p.status = 'queued'
        RETURNING p.rank, j.*
    ),
    logged AS (
        SELECT jobwire_log_starts(
            p_queue, p_now, p_settings, p_any_rate, p_total,
            array_agg(l.function), array_agg(l.concurrency_key)
        ) FROM leased AS l HAVING count(*) > 0
    )
    SELECT NULL::text, NULL::double precision, l.id, l.status, l.function, l.kwargs, l.key,
        l.concurrency_key, l.priority, l.timeout, l.heartbeat, l.retries, l.attempts, l.ttl,
        l.scheduled, l.retry_delay, l.retry_backoff, l.progress, l.meta, l.result, l.error,
        l.created, l.queued, l.started, l.completed, l.touched, l.worker, l.lease
    FROM leased AS l LEFT JOIN logged ON true ORDER BY l.rank;

    last_row.state := 'limited';
    last_row.next_s := least(v_next, (
        SELECT min(j.scheduled) FROM jobwire_jobs AS j
        WHERE j.queue = p_queue AND j.status = 'scheduled'
    )) - p_now;
    RETURN NEXT last_row;
END
$$;

-- The running jobs of a queue that limits per function or per key: how many of each
-- function with a max_active (p_functions: function -> limits), and of each concurrency
-- key when p_per_key. One pass over the queue's active and aborting jobs.
CREATE OR REPLACE FUNCTION jobwire_running_counts(
    p_queue text, p_functions jsonb, p_per_key boolean,
    OUT by_function jsonb, OUT by_key jsonb
)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    WITH running AS MATERIALIZED (
        SELECT function, concurrency_key FROM jobwire_jobs
        WHERE queue = p_queue AND status IN ('active', 'aborting')
    )
    SELECT
        (SELECT coalesce(jsonb_object_agg(function, n), '{}') FROM (
            SELECT function, count(*) AS n FROM running
            WHERE p_functions -> function ? 'max_active' GROUP BY function
        ) AS f),
        (SELECT coalesce(jsonb_object_agg(concurrency_key, n), '{}') FROM (
            SELECT concurrency_key, count(*) AS n FROM running
            WHERE p_per_key AND concurrency_key IS NOT NULL GROUP BY concurrency_key
        ) AS k)
    INTO by_function, by_key;
END
$$;

-- Starts within the rate windows of each function with a rate (p_functions) and of each
-- concurrency key (p_key_rate, NULL: none), at p_now: name -> [starts, the oldest's time].
CREATE OR REPLACE FUNCTION jobwire_window_starts(
    p_queue text, p_now double precision, p_functions jsonb, p_key_rate jsonb,
    OUT by_function jsonb, OUT by_key jsonb
)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    SELECT
        (SELECT coalesce(jsonb_object_agg(name, jsonb_build_array(n, oldest)), '{}') FROM (
            SELECT st.name, sum(st.n) AS n, min(st.at) AS oldest
            FROM jsonb_each(p_functions) AS l(name, limits)
            JOIN jobwire_starts AS st ON st.queue = p_queue AND st.scope = 'function'
                AND st.name = l.name
                AND st.at > p_now - (l.limits -> 'rate' ->> 'period_s')::double precision
            WHERE l.limits ? 'rate'
            GROUP BY st.name
        ) AS f),
        (SELECT coalesce(jsonb_object_agg(name, jsonb_build_array(n, oldest)), '{}') FROM (
            SELECT name, sum(n) AS n, min(at) AS oldest FROM jobwire_starts
            WHERE p_key_rate IS NOT NULL AND queue = p_queue AND scope = 'key'
                AND at > p_now - (p_key_rate ->> 'period_s')::double precision
            GROUP BY name
        ) AS k)
    INTO by_function, by_key;
END
$$;

-- The walk over the head of a queue with limits per function or per key: up to p_window
-- queued jobs in dequeue order, taking each that no limit holds back, up to p_max. Room
-- left under the queue's own limits: p_room_active (max_active), p_room_rate (its rate,
-- whose window admits more at p_rate_at); NULL: unlimited. A function's or key's limits
-- count its running jobs (p_*_active: name -> n) and its window's starts (p_*_started:
-- name -> [n, oldest]). Returns the ids taken and the earliest time a rate window that
-- held a job back admits one (NULL: none did).
CREATE OR REPLACE FUNCTION jobwire_walk(
    p_queue text, p_max integer, p_window integer, p_now double precision,
    p_room_active bigint, p_room_rate bigint, p_rate_at double precision,
    p_functions jsonb, p_fn_active jsonb, p_fn_started jsonb,
    p_per_key integer, p_key_active jsonb, p_key_rate jsonb, p_key_started jsonb,
    OUT ids text[], OUT next_at double precision
)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    -- A bound cursor is planned for its first rows (the walk usually stops early): the
    -- dequeue index, in order, whatever the statistics say.
    head CURSOR FOR
        SELECT id, function, concurrency_key FROM jobwire_jobs
        WHERE queue = p_queue AND status = 'queued'
        ORDER BY priority DESC, seq
        LIMIT p_window;
    c      record;
    f      jsonb;           -- the job's function's limits
    v_taken jsonb := '{}';  -- 'f:' || function / 'k:' || key -> taken by this walk
    n_f    bigint;
    n_k    bigint;
BEGIN
    ids := '{}';
    -- Each test asks: would one more start exceed this limit?
    FOR c IN head LOOP
        EXIT WHEN cardinality(ids) >= p_room_active;
        IF cardinality(ids) >= p_room_rate THEN
            next_at := least(next_at, p_rate_at);
            EXIT;
        END IF;
        f := p_functions -> c.function;
        IF f IS NOT NULL THEN
            n_f := coalesce((v_taken ->> ('f:' || c.function))::bigint, 0);
            CONTINUE WHEN coalesce((p_fn_active ->> c.function)::bigint, 0) + n_f
                >= (f ->> 'max_active')::integer;
            IF coalesce((p_fn_started -> c.function ->> 0)::bigint, 0) + n_f
                >= (f -> 'rate' ->> 'limit')::integer
            THEN
                next_at := least(next_at, coalesce((p_fn_started -> c.function ->> 1)::float8,
                    p_now) + (f -> 'rate' ->> 'period_s')::float8);
                CONTINUE;
            END IF;
        END IF;
        IF c.concurrency_key IS NOT NULL AND (p_per_key IS NOT NULL OR p_key_rate IS NOT NULL)
        THEN
            n_k := coalesce((v_taken ->> ('k:' || c.concurrency_key))::bigint, 0);
            CONTINUE WHEN coalesce((p_key_active ->> c.concurrency_key)::bigint, 0) + n_k
                >= p_per_key;
            IF coalesce((p_key_started -> c.concurrency_key ->> 0)::bigint, 0) + n_k
                >= (p_key_rate ->> 'limit')::integer
            THEN
                next_at := least(next_at, coalesce(
                    (p_key_started -> c.concurrency_key ->> 1)::float8, p_now
                ) + (p_key_rate ->> 'period_s')::float8);
                CONTINUE;
            END IF;
            v_taken := v_taken || jsonb_build_object('k:' || c.concurrency_key, n_k + 1);
        END IF;
        IF f IS NOT NULL THEN
            v_taken := v_taken || jsonb_build_object('f:' || c.function, n_f + 1);
        END IF;
        ids := ids || c.id;
        EXIT WHEN cardinality(ids) >= p_max;
    END LOOP;
END
$$;
