-- lease.lua goes on here for a queue with limits (after limits.lua). The queue's own
-- limits, max_active and rate, bound how many jobs this lease may take; without per-job
-- limits those are the head of the queue, as without limits (else lease_jobs.lua).
local lim = parse_limits(limits)
local queue_log = prefix .. 'rate'
local budget, active_room, rate_room = max_jobs, nil, nil
if lim.max_active > 0 then
  active_room = lim.max_active - redis.call('ZCARD', prefix .. 'active')
  budget = math.min(budget, active_room)
end
if lim.rate > 0 then
  redis.call('ZREMRANGEBYSCORE', queue_log, '-inf', now - lim.period)
  rate_room = lim.rate - redis.call('ZCARD', queue_log)
  budget = math.min(budget, rate_room)
end

-- The reply of a lease under limits: `wait` (seconds until a rate admits a job it held
-- back; nil: none) and `blocked` (a concurrency limit held one back), with what the
-- queue's own limits held back added.
local function limited_reply(wait, blocked)
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
  if rate_room ~= nil and leased > 0 then  -- an idle log expires
    redis.call('PEXPIRE', queue_log, math.ceil(lim.period * 1000) + 1000)
  end
  return reply(wait)
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
          redis.call('ZADD', queue_log, now, lease)
        end
        activate(id, key, lease, held)
      end
    end
  end
  return limited_reply(nil, false)
end
