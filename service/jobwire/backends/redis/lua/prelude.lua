-- Shared by every script (prepended when loaded). KEYS[1] is the queue's key prefix,
-- "jobwire:{<queue>}:"; the hash tag keeps all of a queue's keys in one cluster slot.
local prefix = KEYS[1]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
-- queued score = sequence - priority * 2^40: higher priority first, FIFO within one.
local PRIORITY_STEP = 1099511627776
local LIVE = {queued = true, scheduled = true, active = true, aborting = true}
local TTL_MAX = 2147483647  -- jobwire.job.LIMITS.ttl_max
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
  redis.call('PUBLISH', prefix .. 'events', id)
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

-- Flow control. A job leased while its queue had a concurrency limit carries 'held', a
-- sum of flags: 1, plus 2 when it is counted in 'running_fn' under its function, plus 4
-- when counted in 'running_key' under its concurrency key. Whatever takes a job out of
-- active/aborting calls release_slot (and clears 'held'), so the counts stay exact.

-- Add `delta` to a count in a hash (read as a number first: HINCRBY would fail on a
-- non-integer); a count that reaches 0 is removed.
local function adjust(hash, field, delta)
  local count = (tonumber(redis.call('HGET', hash, field) or '') or 0) + delta
  if count > 0 then
    redis.call('HSET', hash, field, count)
  else
    redis.call('HDEL', hash, field)
  end
end

-- Take a job out of the active index, giving back what its 'held' value counted.
-- Returns true when it held a slot under a concurrency limit (then call wake_blocked).
local function release_slot(id, key, held)
  redis.call('ZREM', prefix .. 'active', id)
  local flags = tonumber(held or '')
  if not flags then
    return false
  end
  if flags >= 2 then
    local fn, ckey = unpack(redis.call('HMGET', key, 'function', 'concurrency_key'))
    if flags % 4 >= 2 and fn then
      adjust(prefix .. 'running_fn', fn, -1)
    end
    if flags >= 4 and ckey then
      adjust(prefix .. 'running_key', ckey, -1)
    end
  end
  return true
end

-- Wake waiting leases if one was held back by a concurrency limit since the last wake.
local function wake_blocked()
  if redis.call('HDEL', prefix .. 'flow', 'blocked') == 1 then
    redis.call('PUBLISH', prefix .. 'wake', '')
  end
end
