-- Shared by every script (prepended when loaded). KEYS[1] is the queue's key prefix,
-- "jobwire:{<queue>}:"; the hash tag keeps all of a queue's keys in one cluster slot.
local prefix = KEYS[1]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
-- queued score = sequence - priority * 2^40: higher priority first, FIFO within one.
local PRIORITY_STEP = 1099511627776
local LIVE = {queued = true, scheduled = true, active = true, aborting = true}
local TTL_MAX = 2147483647  -- jobwire.job.LIMITS.ttl_max
-- Every script publishes with this command; on a cluster the backend loads the scripts
-- with SPUBLISH here (sharded: the message stays on the queue's shard).
local PUBLISH = 'PUBLISH'
local SECONDS_MAX = 1000000000  -- jobwire.job.LIMITS.seconds_max

-- A number of a job's hash, within lo..hi (`default` when missing or not a number).
-- Redis keeps the writes a script made before it failed, so nothing read back from a
-- job (which an older version or a hand may have stored) may fail a command after the
-- first write: each script reads and bounds its numbers first.
local function num_field(key, field, default, lo, hi)
  local value = tonumber(redis.call('HGET', key, field) or '')
  if value == nil or value ~= value then
    return default
  end
  return math.min(math.max(value, lo), hi)
end

local function job_key(id)
  return prefix .. 'job:' .. id
end

local function stamp(t)
  return string.format('%.6f', t)
end

local function publish(id)
  redis.call(PUBLISH, prefix .. 'events', id)
end

-- New work may be due (or a limit lets more start): wake every process's waiting leases.
-- The same channel tells of an active job aborted (see announce_abort).
local function wake()
  redis.call(PUBLISH, prefix .. 'wake', '')
end

-- An active job turned aborting: every process's abort callbacks hear its id (its worker
-- cancels it at once, not at its next renew).
local function announce_abort(id)
  redis.call(PUBLISH, prefix .. 'wake', id)
end

local function push_queued(id, key)
  local priority = num_field(key, 'priority', 0, -1000, 1000)
  local seq = redis.call('INCR', prefix .. 'seq')
  redis.call('ZADD', prefix .. 'queued', seq - priority * PRIORITY_STEP, id)
  redis.call('HSET', key, 'status', 'queued', 'queued', stamp(now), 'touched', stamp(now))
end

local function push_scheduled(id, key, due)
  redis.call('ZADD', prefix .. 'scheduled', due, id)
  redis.call('HSET', key, 'status', 'scheduled', 'scheduled', stamp(due), 'touched', stamp(now))
end

local function release_dedup_key(id, key)
  local dedup = redis.call('HGET', key, 'key')
  if dedup and redis.call('HGET', prefix .. 'keys', dedup) == id then
    redis.call('HDEL', prefix .. 'keys', dedup)
  end
end

-- Move a job to a finished status; `fields` are extra hash fields (result, error).
local function finish(id, key, status, fields)
  local ttl = math.floor(num_field(key, 'ttl', 600, -1, TTL_MAX))  -- EXPIRE takes it
  release_dedup_key(id, key)
  redis.call('SREM', prefix .. 'aborting', id)
  redis.call('HDEL', key, 'lease', 'held')
  redis.call('HSET', key, 'status', status, 'completed', stamp(now), 'touched', stamp(now))
  if #fields > 0 then
    redis.call('HSET', key, unpack(fields))
  end
  if ttl < 0 then
    redis.call('PEXPIRE', key, 1)
  elseif ttl > 0 then
    redis.call('EXPIRE', key, ttl)
    redis.call('ZADD', prefix .. status, now + ttl, id)
  else
    redis.call('ZADD', prefix .. status, '+inf', id)
  end
  redis.call('HINCRBY', prefix .. 'finished_per_minute', math.floor(now / 60), 1)
  publish(id)
end

