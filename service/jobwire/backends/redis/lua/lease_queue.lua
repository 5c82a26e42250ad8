-- lease.lua goes on here for a queue with limits (after limits.lua). The queue's own
-- limits, max_active and rate, bound how many jobs this lease may take; without per-job
-- limits those are the head of the queue, as without limits (else lease_jobs.lua).
local max_jobs, token, worker = tonumber(ARGV[1]), ARGV[2], ARGV[4]
local leased = 0

local function next_lease()
  return token .. '.' .. (leased + 1)
end

-- As lease.lua's fast path does; `held`: the job's 'held' value (slots.lua), nil when
-- no concurrency limit counts it.
local function activate(id, key, lease, held)
  leased = leased + 1
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

local lim = parse_limits(limits)
local queue_log = prefix .. 'starts'
local starts = {}  -- rate log -> starts made in this call, written by log_starts
local budget, active_room, rate_room = max_jobs, nil, nil
if lim.max_active > 0 then
  active_room = lim.max_active - redis.call('ZCARD', prefix .. 'active')
  budget = math.min(budget, active_room)
end
if lim.rate > 0 then
  rate_room = lim.rate - rate_used(queue_log, lim.period)
  budget = math.min(budget, rate_room)
end

-- Note a start in a rate log (written as one entry per log by log_starts).
local function note_start(log, period)
  local noted = starts[log]
  if noted == nil then
    starts[log] = {period = period, jobs = 1}
  else
    noted.jobs = noted.jobs + 1
  end
end

-- Write the starts noted in `log` (all of them: nil).
local function log_starts(log)
  for name, noted in pairs(starts) do
    if log == nil or log == name then
      rate_add(name, noted.jobs, noted.period)
      starts[name] = nil
    end
  end
end

-- The reply of a lease under limits: `wait` (seconds until a rate admits a job it held
-- back; nil: none) and `blocked` (a concurrency limit held one back), with what the
-- queue's own limits held back added.
local function limited_reply(wait, blocked)
  log_starts(nil)
  local active_full = active_room ~= nil and active_room <= leased
  local rate_full = rate_room ~= nil and rate_room <= leased
  if (active_full or rate_full) and redis.call('ZCARD', prefix .. 'queued') > 0 then
    blocked = blocked or active_full
    if rate_full then
      local admits = rate_wait(queue_log, lim.rate, lim.period)
      wait = math.min(wait or admits, admits)
    end
  end
  if blocked then  -- the next freed slot wakes waiting leases (slots.lua)
    redis.call('HSET', prefix .. 'flow', 'blocked', '1')
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
end

if not lim.per_job then
  if budget > 0 then
    local held = lim.concurrency and 1 or nil
    local popped = redis.call('ZPOPMIN', prefix .. 'queued', budget)
    for j = 1, #popped, 2 do
      local id = popped[j]
      local key = job_key(id)
      if redis.call('EXISTS', key) == 1 then
        local lease = next_lease()
        if rate_room ~= nil then
          note_start(queue_log, lim.period)
        end
        activate(id, key, lease, held)
      end
    end
  end
  return limited_reply(nil, false)
end
