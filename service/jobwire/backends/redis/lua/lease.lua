-- ARGV: max jobs, lease token prefix, default lease seconds, worker id.
-- Promotes due scheduled jobs, then (unless the queue is paused) pops and activates up
-- to max queued jobs in one atomic step (no window where a job is popped but not yet
-- active). A queue with limits goes on in lease_queue.lua and lease_jobs.lua (appended
-- after this file with limits.lua, so their functions are only made for such a queue).
-- Returns: seconds until more may be leased ('' if unknown: the next scheduled job is
-- due, or a rate window admits a job it held back), then each job's HGETALL.
local max_jobs, token, worker = tonumber(ARGV[1]), ARGV[2], ARGV[4]
local due = redis.call('ZRANGEBYSCORE', prefix .. 'scheduled', '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', prefix .. 'scheduled', id)
  local key = job_key(id)
  if redis.call('EXISTS', key) == 1 then
    push_queued(id, key)
  end
end
local out = {''}
local leased = 0

local function next_lease()
  return token .. '.' .. (leased + 1)
end

-- `held`: the job's 'held' value (slots.lua), nil when no concurrency limit counts it.
local function activate(id, key, lease, held)
  leased = leased + 1
  -- read before writing (not HINCRBY, which fails on a non-integer): a failure past
  -- ZPOPMIN would lose every job popped
  local attempts = math.floor(num_field(key, 'attempts', 0, 0, TTL_MAX)) + 1
  local heartbeat = num_field(key, 'heartbeat', 0, 0, SECONDS_MAX)
  local lease_s = heartbeat > 0 and heartbeat or tonumber(ARGV[3])
  local ts = stamp(now)
  if held then
    redis.call('HSET', key, 'status', 'active', 'started', ts, 'touched', ts, 'lease', lease,
      'worker', worker, 'attempts', attempts, 'held', held)
  else
    redis.call('HSET', key, 'status', 'active', 'started', ts, 'touched', ts, 'lease', lease,
      'worker', worker, 'attempts', attempts)
  end
  redis.call('ZADD', prefix .. 'active', now + lease_s, id)
  table.insert(out, redis.call('HGETALL', key))
end

-- `out` with the seconds until more may be leased: `wait_s` (nil: none) or the next
-- scheduled job's due time, whichever is sooner.
local function reply(wait_s)
  local next_due = redis.call('ZRANGE', prefix .. 'scheduled', 0, 0, 'WITHSCORES')
  if next_due[2] then
    local due_s = tonumber(next_due[2]) - now
    wait_s = math.min(wait_s or due_s, due_s)
  end
  if wait_s then
    out[1] = stamp(wait_s)
  end
  return out
end

local paused, limits = unpack(redis.call('HMGET', prefix .. 'flow', 'paused', 'limits'))
if paused then
  return out
end
if not limits then
  local popped = redis.call('ZPOPMIN', prefix .. 'queued', max_jobs)
  for j = 1, #popped, 2 do
    local id = popped[j]
    local key = job_key(id)
    if redis.call('EXISTS', key) == 1 then
      activate(id, key, next_lease(), nil)
    end
  end
  return reply(nil)
end
