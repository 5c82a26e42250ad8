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
-- started within each rate window, then take jobs from the head of the queue (by priority,
-- then FIFO). With queue-wide limits only, that is as many as they allow, in one
-- statement. With limits per function or per key, a walk over up to p_window queued jobs
-- takes each job no limit holds back, up to p_max: a job held by its function's or key's
-- limit stays queued and the walk goes on past it; a queue-wide limit ends the walk.
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
    v_max_active integer;           -- the queue's limits
    v_rate      jsonb;
    v_functions jsonb;              -- function -> its limits
    v_per_key   integer;            -- max_active_per_key
    v_key_rate  jsonb;              -- rate_per_key
    v_walk      boolean;            -- limits per function or per key: walk the head
    v_active    bigint := 0;        -- active or aborting jobs of the queue
    v_fn_active jsonb := '{}';      -- function -> active (functions with max_active)
    v_key_active jsonb := '{}';     -- concurrency key -> active
    v_started   bigint := 0;        -- the queue's rate window: starts, and the oldest
    v_oldest    double precision;
    v_fn_started jsonb := '{}';     -- function -> [starts, oldest] in its window
    v_key_started jsonb := '{}';    -- concurrency key -> [starts, oldest]
    v_ids       text[] := '{}';     -- the jobs taken, in dequeue order
    v_next      double precision;   -- when a held job's rate window admits one (epoch s)
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
    v_max_active := (s ->> 'max_active')::integer;
    v_rate := s -> 'rate';
    v_functions := coalesce(s -> 'functions', '{}');
    v_per_key := (s ->> 'max_active_per_key')::integer;
    v_key_rate := s -> 'rate_per_key';
    v_walk := v_functions <> '{}' OR v_per_key IS NOT NULL OR v_key_rate IS NOT NULL;

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

    -- What runs now.
    IF v_walk THEN
        SELECT * INTO v_active, v_fn_active, v_key_active
        FROM jobwire_running(p_queue, v_functions, v_per_key IS NOT NULL);
    ELSIF v_max_active IS NOT NULL THEN
        SELECT count(*) INTO v_active FROM jobwire_jobs
        WHERE queue = p_queue AND status IN ('active', 'aborting');
    END IF;

    -- What started within each rate window.
    IF v_rate IS NOT NULL THEN
        SELECT coalesce(sum(n), 0), min(at) INTO v_started, v_oldest FROM jobwire_starts
        WHERE queue = p_queue AND scope = 'queue' AND name = ''
            AND at > v_now - (v_rate ->> 'period_s')::double precision;
    END IF;
    IF v_walk THEN
        SELECT * INTO v_fn_started, v_key_started
        FROM jobwire_window_starts(p_queue, v_now, v_functions, v_key_rate);
    END IF;

    IF NOT v_walk THEN
        v_ids := ARRAY(
            SELECT id FROM jobwire_jobs
            WHERE queue = p_queue AND status = 'queued'
            ORDER BY priority DESC, seq
            LIMIT greatest(least(p_max, v_max_active - v_active,
                (v_rate ->> 'limit')::integer - v_started), 0)
        );
        IF v_started + cardinality(v_ids) >= (v_rate ->> 'limit')::integer THEN
            v_next := coalesce(v_oldest, v_now) + (v_rate ->> 'period_s')::double precision;
        END IF;
    ELSIF p_max > 0 THEN
        SELECT w.ids, w.next_at INTO v_ids, v_next FROM jobwire_walk(
            p_queue, p_max, p_window, v_now, v_max_active - v_active,
            (v_rate ->> 'limit')::integer - v_started,
            coalesce(v_oldest, v_now) + (v_rate ->> 'period_s')::double precision,
            v_functions, v_fn_active, v_fn_started, v_per_key, v_key_active, v_key_rate,
            v_key_started
        ) AS w;
    END IF;

    -- Forget starts older than the longest window.
    IF v_rate IS NOT NULL OR v_key_rate IS NOT NULL OR jsonb_path_exists(v_functions, '$.*.rate')
    THEN
        DELETE FROM jobwire_starts WHERE queue = p_queue AND at <= v_now - (
            SELECT max(p) FROM (
                SELECT (v_rate ->> 'period_s')::double precision
                UNION ALL SELECT (v_key_rate ->> 'period_s')::double precision
                UNION ALL SELECT (l.limits -> 'rate' ->> 'period_s')::double precision
                FROM jsonb_each(v_functions) AS l(name, limits)
            ) AS periods(p)
        );
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
    SELECT r.state, r.next_s, r.job FROM (
        SELECT 'limited' AS state, least(v_next, (
            SELECT min(scheduled) FROM jobwire_jobs WHERE queue = p_queue AND status = 'scheduled'
        )) - v_now AS next_s, NULL::jobwire_jobs AS job, 0 AS rank
        UNION ALL
        SELECT 'limited', NULL, l.leased_job, l.rank FROM leased AS l
    ) AS r
    ORDER BY r.rank;
END
$$;

-- The running jobs of a queue that limits per function or per key: how many, how many of
-- each function with a max_active (p_functions: function -> limits), and of each
-- concurrency key when p_per_key. One pass over the queue's active and aborting jobs.
CREATE OR REPLACE FUNCTION jobwire_running(
    p_queue text, p_functions jsonb, p_per_key boolean,
    OUT active bigint, OUT by_function jsonb, OUT by_key jsonb
)
LANGUAGE sql STABLE AS $$
    WITH running AS MATERIALIZED (
        SELECT function, concurrency_key FROM jobwire_jobs
        WHERE queue = p_queue AND status IN ('active', 'aborting')
    )
    SELECT
        (SELECT count(*) FROM running),
        (SELECT coalesce(jsonb_object_agg(function, n), '{}') FROM (
            SELECT function, count(*) AS n FROM running
            WHERE p_functions -> function ? 'max_active' GROUP BY function
        ) AS f),
        (SELECT coalesce(jsonb_object_agg(concurrency_key, n), '{}') FROM (
            SELECT concurrency_key, count(*) AS n FROM running
            WHERE p_per_key AND concurrency_key IS NOT NULL GROUP BY concurrency_key
        ) AS k)
$$;

-- Starts within the rate windows of each function with a rate (p_functions) and of each
-- concurrency key (p_key_rate, NULL: none), at p_now: name -> [starts, the oldest's time].
CREATE OR REPLACE FUNCTION jobwire_window_starts(
    p_queue text, p_now double precision, p_functions jsonb, p_key_rate jsonb,
    OUT by_function jsonb, OUT by_key jsonb
)
LANGUAGE sql STABLE AS $$
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
