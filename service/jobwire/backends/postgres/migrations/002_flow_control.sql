-- Flow control (issue 15): a job's concurrency key, a queue's pause state and limits, the
-- log of lease starts that rate limits count, and the lease of a limited queue.
-- Idempotent, like 001.

ALTER TABLE jobwire_jobs ADD COLUMN IF NOT EXISTS concurrency_key text;

-- The queue's row carries its flow control. Leases of a queue that is neither paused nor
-- limited take the fast statement, which reads this row FOR SHARE (so a change of the row
-- waits for leases under way, and leases that waited see the new row); leases of a limited
-- queue take jobwire_lease_limited, which locks it FOR UPDATE: one at a time per queue.
ALTER TABLE jobwire_queues
    ADD COLUMN IF NOT EXISTS paused   boolean NOT NULL DEFAULT false,
    -- QueueSettings.to_json(); NULL: never configured
    ADD COLUMN IF NOT EXISTS settings json,
    -- the settings set at least one limit
    ADD COLUMN IF NOT EXISTS limited  boolean NOT NULL DEFAULT false;

-- Rate limits' sliding windows: n jobs of the queue started at `at` (one row per lease call
-- and bucket). scope 'queue' (name ''), 'function' (the function) or 'key' (the
-- concurrency key). Rows older than the longest window are pruned by the next lease.
CREATE TABLE IF NOT EXISTS jobwire_starts (
    queue text             NOT NULL,
    scope text             NOT NULL CONSTRAINT jobwire_starts_scope CHECK (
        scope IN ('queue', 'function', 'key')
    ),
    name  text             NOT NULL,
    at    double precision NOT NULL,
    n     integer          NOT NULL
);

-- One bucket's window.
CREATE INDEX IF NOT EXISTS jobwire_starts_window ON jobwire_starts (queue, scope, name, at);

-- Pruning.
CREATE INDEX IF NOT EXISTS jobwire_starts_age ON jobwire_starts (queue, at);

-- The lease of a limited or paused queue, atomic with its limits (see flow.QueueSettings):
-- with the queue's row locked, count what runs (active and aborting jobs) and what
-- started within each rate window, then walk the head of the queue (up to p_window queued
-- jobs, by priority then FIFO) taking each job no limit holds back, up to p_max. A job
-- held by its function's or key's limit stays queued and the walk goes on past it; a
-- queue-wide limit ends the walk.
--
-- A volatile PL/pgSQL function takes a new snapshot per statement, so the statements after
-- the row lock see every lease committed before it: two leases never count without each
-- other. Its own clock is read after the lock (clock_timestamp), so starts are logged in
-- the order they happened.
--
-- Returns a first row (state, next_s, NULL): state 'unlimited' (nothing to enforce: use
-- the fast statement), 'paused' or 'limited'; next_s the seconds until a scheduled job is
-- due or a rate window that held a job back admits one (NULL: neither). Then one row per
-- leased job, in dequeue order, its lease token p_token || '.' || rank.
CREATE OR REPLACE FUNCTION jobwire_lease_limited(
    p_queue text, p_max integer, p_token text, p_worker text, p_lease_s double precision,
    p_window integer
) RETURNS TABLE (state text, next_s double precision, job jobwire_jobs)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_paused    boolean;
    v_limited   boolean;
    s           jsonb;              -- the settings
    v_now       double precision;
    v_functions jsonb;              -- function -> its limits
    v_per_key   integer;            -- max_active_per_key
    v_rate      jsonb;              -- the queue's rate
    v_key_rate  jsonb;              -- rate_per_key
    v_active    bigint := 0;        -- active or aborting jobs of the queue
    v_fn_active jsonb := '{}';      -- function -> active (functions with max_active)
    v_key_active jsonb := '{}';     -- concurrency key -> active
    v_started   bigint := 0;        -- the queue's rate window: starts, and the oldest
    v_oldest    double precision;
    v_fn_started jsonb := '{}';     -- function -> [starts, oldest] in its window
    v_key_started jsonb := '{}';    -- concurrency key -> [starts, oldest]
    v_taken     jsonb := '{}';      -- 'f:' || function / 'k:' || key -> taken by this call
    v_ids       text[] := '{}';
    v_next      double precision;   -- when a held job's rate window admits one (epoch s)
    v_due       double precision;
    v_max_period double precision;
    c           record;
    -- The head of the queue. A bound cursor is planned for its first rows (the walk
    -- usually stops early): the dequeue index, in order, whatever the statistics say.
    head CURSOR (lim integer) FOR
        SELECT id, function, concurrency_key FROM jobwire_jobs
        WHERE queue = p_queue AND status = 'queued'
        ORDER BY priority DESC, seq
        LIMIT lim;
    f           jsonb;
    n_f         bigint;
    n_k         bigint;
BEGIN
    SELECT q.paused, q.limited, q.settings::jsonb INTO v_paused, v_limited, s
    FROM jobwire_queues AS q WHERE q.name = p_queue FOR UPDATE;
    IF NOT FOUND OR NOT (v_paused OR v_limited) THEN
        RETURN QUERY SELECT 'unlimited', NULL::double precision, NULL::jobwire_jobs;
        RETURN;
    ELSIF v_paused THEN
        RETURN QUERY SELECT 'paused', NULL::double precision, NULL::jobwire_jobs;
        RETURN;
    END IF;
    v_now := extract(epoch FROM clock_timestamp());
    v_functions := coalesce(s -> 'functions', '{}');
    v_per_key := (s ->> 'max_active_per_key')::integer;
    v_rate := s -> 'rate';
    v_key_rate := s -> 'rate_per_key';

    -- Due scheduled jobs join the queue, in due order (as the fast statement does).
    UPDATE jobwire_jobs AS j SET status = 'queued', seq = d.seq, queued = v_now, touched = v_now
    FROM (
        SELECT id, nextval('jobwire_jobs_seq') AS seq FROM (
            SELECT id, scheduled FROM jobwire_jobs
            WHERE queue = p_queue AND status = 'scheduled' AND scheduled <= v_now
            ORDER BY scheduled, id
            LIMIT 1000
            FOR UPDATE SKIP LOCKED
        ) AS due ORDER BY scheduled, id
    ) AS d
    WHERE j.queue = p_queue AND j.id = d.id;

    -- What runs now: one pass over the queue's active jobs.
    IF s ? 'max_active' OR v_per_key IS NOT NULL OR jsonb_path_exists(v_functions, '$.*.max_active')
    THEN
        WITH running AS MATERIALIZED (
            SELECT function, concurrency_key FROM jobwire_jobs
            WHERE queue = p_queue AND status IN ('active', 'aborting')
        )
        SELECT
            (SELECT count(*) FROM running),
            (SELECT coalesce(jsonb_object_agg(function, n), '{}') FROM (
                SELECT function, count(*) AS n FROM running
                WHERE v_functions -> function ? 'max_active' GROUP BY function
            ) AS by_function),
            (SELECT coalesce(jsonb_object_agg(concurrency_key, n), '{}') FROM (
                SELECT concurrency_key, count(*) AS n FROM running
                WHERE v_per_key IS NOT NULL AND concurrency_key IS NOT NULL
                GROUP BY concurrency_key
            ) AS by_key)
        INTO v_active, v_fn_active, v_key_active;
    END IF;

    -- What started within each rate window.
    IF v_rate IS NOT NULL THEN
        SELECT coalesce(sum(n), 0), min(at) INTO v_started, v_oldest FROM jobwire_starts
        WHERE queue = p_queue AND scope = 'queue' AND name = ''
            AND at > v_now - (v_rate ->> 'period_s')::double precision;
    END IF;
    IF jsonb_path_exists(v_functions, '$.*.rate') THEN
        SELECT coalesce(jsonb_object_agg(name, jsonb_build_array(n, oldest)), '{}')
        INTO v_fn_started FROM (
            SELECT st.name, sum(st.n) AS n, min(st.at) AS oldest
            FROM jsonb_each(v_functions) AS l(name, limits)
            JOIN jobwire_starts AS st ON st.queue = p_queue AND st.scope = 'function'
                AND st.name = l.name
                AND st.at > v_now - (l.limits -> 'rate' ->> 'period_s')::double precision
            WHERE l.limits ? 'rate'
            GROUP BY st.name
        ) AS windows;
    END IF;
    IF v_key_rate IS NOT NULL THEN
        SELECT coalesce(jsonb_object_agg(name, jsonb_build_array(n, oldest)), '{}')
        INTO v_key_started FROM (
            SELECT name, sum(n) AS n, min(at) AS oldest FROM jobwire_starts
            WHERE queue = p_queue AND scope = 'key'
                AND at > v_now - (v_key_rate ->> 'period_s')::double precision
            GROUP BY name
        ) AS windows;
    END IF;

    -- The walk. Each test below asks: would one more start exceed this limit?
    FOR c IN head(CASE WHEN p_max > 0 THEN p_window ELSE 0 END) LOOP
        EXIT WHEN v_active + cardinality(v_ids) >= (s ->> 'max_active')::integer;
        IF v_started + cardinality(v_ids) >= (v_rate ->> 'limit')::integer THEN
            v_next := least(v_next, coalesce(v_oldest, v_now) + (v_rate ->> 'period_s')::float8);
            EXIT;
        END IF;
        f := v_functions -> c.function;
        IF f IS NOT NULL THEN
            n_f := coalesce((v_taken ->> ('f:' || c.function))::bigint, 0);
            CONTINUE WHEN coalesce((v_fn_active ->> c.function)::bigint, 0) + n_f
                >= (f ->> 'max_active')::integer;
            IF coalesce((v_fn_started -> c.function ->> 0)::bigint, 0) + n_f
                >= (f -> 'rate' ->> 'limit')::integer
            THEN
                v_next := least(v_next, coalesce((v_fn_started -> c.function ->> 1)::float8,
                    v_now) + (f -> 'rate' ->> 'period_s')::float8);
                CONTINUE;
            END IF;
        END IF;
        IF c.concurrency_key IS NOT NULL AND (v_per_key IS NOT NULL OR v_key_rate IS NOT NULL)
        THEN
            n_k := coalesce((v_taken ->> ('k:' || c.concurrency_key))::bigint, 0);
            CONTINUE WHEN coalesce((v_key_active ->> c.concurrency_key)::bigint, 0) + n_k
                >= v_per_key;
            IF coalesce((v_key_started -> c.concurrency_key ->> 0)::bigint, 0) + n_k
                >= (v_key_rate ->> 'limit')::integer
            THEN
                v_next := least(v_next, coalesce((v_key_started -> c.concurrency_key ->> 1)::float8,
                    v_now) + (v_key_rate ->> 'period_s')::float8);
                CONTINUE;
            END IF;
            v_taken := v_taken || jsonb_build_object('k:' || c.concurrency_key, n_k + 1);
        END IF;
        IF f IS NOT NULL THEN
            v_taken := v_taken || jsonb_build_object('f:' || c.function, n_f + 1);
        END IF;
        v_ids := v_ids || c.id;
        EXIT WHEN cardinality(v_ids) >= p_max;
    END LOOP;

    -- Forget starts older than the longest window.
    SELECT max(p) INTO v_max_period FROM (
        SELECT (v_rate ->> 'period_s')::double precision
        UNION ALL SELECT (v_key_rate ->> 'period_s')::double precision
        UNION ALL SELECT (l.limits -> 'rate' ->> 'period_s')::double precision
        FROM jsonb_each(v_functions) AS l(name, limits)
    ) AS periods(p);
    IF v_max_period IS NOT NULL THEN
        DELETE FROM jobwire_starts WHERE queue = p_queue AND at <= v_now - v_max_period;
    END IF;

    SELECT min(scheduled) INTO v_due FROM jobwire_jobs
    WHERE queue = p_queue AND status = 'scheduled';
    RETURN QUERY SELECT 'limited', least(v_due, v_next) - v_now, NULL::jobwire_jobs;

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
            started = v_now,
            touched = v_now,
            lease = p_token || '.' || p.rank,
            worker = p_worker,
            lease_expires_at = v_now
                + CASE WHEN j.heartbeat > 0 THEN j.heartbeat ELSE p_lease_s END
        FROM picked AS p
        WHERE j.queue = p_queue AND j.id = p.id AND p.status = 'queued'
        RETURNING p.rank, j.function, j.concurrency_key, j AS leased_job
    ),
    logged AS (
        INSERT INTO jobwire_starts (queue, scope, name, at, n)
        SELECT p_queue, b.scope, b.name, v_now, count(*)
        FROM leased AS l CROSS JOIN LATERAL (VALUES
            ('queue', '', v_rate IS NOT NULL),
            ('function', l.function, v_functions -> l.function ? 'rate'),
            ('key', l.concurrency_key, v_key_rate IS NOT NULL AND l.concurrency_key IS NOT NULL)
        ) AS b(scope, name, wanted)
        WHERE b.wanted
        GROUP BY b.scope, b.name
    )
    SELECT 'limited', NULL::double precision, l.leased_job FROM leased AS l ORDER BY l.rank;
END
$$;
