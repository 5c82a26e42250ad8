-- ARGV: max jobs, lease token prefix, default lease seconds, worker id.
-- Promotes due scheduled jobs, then (unless the queue is paused) pops and activates up
-- to max queued jobs in one atomic step (no window where a job is popped but not yet
-- active), within the queue's limits when it has any (limits.lua).
-- Returns: seconds until more may be leased ('' if unknown: the next scheduled job is
-- due, or a rate window admits a job it held back), then each job's HGETALL.
local max_jobs, token, worker = tonumber(ARGV[1]), ARGV[2], ARGV[4]
local SCAN_WINDOW = 1000  -- queued jobs a lease with per-job limits looks at, from the head
local SCAN_CHUNK = 100
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

-- Only queue-wide limits: the head of the queue, as without limits.
local function pop(lim, budget)
  local popped = redis.call('ZPOPMIN', prefix .. 'queued', budget)
  for j = 1, #popped, 2 do
    local id = popped[j]
    local key = job_key(id)
    if redis.call('EXISTS', key) == 1 then
      local lease = next_lease()
      activate(id, key, lease, take(lim, '', false, lease))
    end
  end
end

-- Per-job limits: lease past the jobs they hold back, scanning at most SCAN_WINDOW
-- queued jobs. Returns the seconds until a rate admits a job it held (nil: none), and
-- whether a concurrency limit held one.
local function scan(lim, budget)
  local wait, blocked = nil, false
  local visited, offset, chunk = 0, 0, math.min(SCAN_CHUNK, budget + 8)
  while leased < budget and visited < SCAN_WINDOW do
    local ids = redis.call('ZRANGE', prefix .. 'queued', offset, offset + chunk - 1)
    if #ids == 0 then
      break
    end
    local removed = 0
    for _, id in ipairs(ids) do
      visited = visited + 1
      local key = job_key(id)
      local status, fn, ckey = unpack(redis.call('HMGET', key, 'status', 'function', 'concurrency_key'))
      local verdict = status and admit(lim, fn or '', ckey) or 0
      if verdict == 'busy' then
        blocked = true
      elseif verdict > 0 then
        wait = math.min(wait or verdict, verdict)
      else
        redis.call('ZREM', prefix .. 'queued', id)
        removed = removed + 1
        if status then
          local lease = next_lease()
          activate(id, key, lease, take(lim, fn or '', ckey, lease))
        end
      end
      if leased >= budget or visited >= SCAN_WINDOW then
        break
      end
    end
    offset, chunk = offset + #ids - removed, SCAN_CHUNK
  end
  return wait, blocked
end

-- Returns the seconds until a rate admits more (nil: none held back).
local function lease_limited(lim)
  local budget, active_room = max_jobs, nil
  if lim.max_active > 0 then
    active_room = lim.max_active - redis.call('ZCARD', prefix .. 'active')
    budget = math.min(budget, active_room)
  end
  if lim.rate > 0 then
    budget = math.min(budget, rate_room(prefix .. 'rate', lim.rate, lim.period))
  end
  local wait, blocked = nil, false
  if budget > 0 then
    if lim.per_job then
      wait, blocked = scan(lim, budget)
    else
      pop(lim, budget)
    end
  end
  local active_full = active_room ~= nil and active_room <= leased
  local rate_full = lim.rate > 0 and rate_room_cache[prefix .. 'rate'] <= 0
  if (active_full or rate_full) and redis.call('ZCARD', prefix .. 'queued') > 0 then
    blocked = blocked or active_full
    if rate_full then
      local admits = rate_wait(prefix .. 'rate', lim.rate, lim.period)
      wait = math.min(wait or admits, admits)
    end
  end
  if blocked then
    redis.call('HSET', prefix .. 'flow', 'blocked', '1')
  end
  expire_rate_logs()
  return wait
end

local paused, limits = unpack(redis.call('HMGET', prefix .. 'flow', 'paused', 'limits'))
if paused then
  return out
end
local wait = nil
if limits then
  wait = lease_limited(parse_limits(limits))
else
  local popped = redis.call('ZPOPMIN', prefix .. 'queued', max_jobs)
  for j = 1, #popped, 2 do
    local id = popped[j]
    local key = job_key(id)
    if redis.call('EXISTS', key) == 1 then
      activate(id, key, next_lease(), nil)
    end
  end
end
local next_due = redis.call('ZRANGE', prefix .. 'scheduled', 0, 0, 'WITHSCORES')
if next_due[2] then
  local due_s = tonumber(next_due[2]) - now
  wait = math.min(wait or due_s, due_s)
end
if wait then
  out[1] = stamp(wait)
end
return out
