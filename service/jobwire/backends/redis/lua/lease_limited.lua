-- The rest of lease.lua for a queue with limits (with limits.lua before it): only the
-- jobs no limit holds back are leased, scanning a bounded window of the queue's head
-- when limits apply per job (per function or concurrency key).
local SCAN_WINDOW = 1000  -- queued jobs a lease with per-job limits looks at, from the head
local SCAN_CHUNK = 100

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

-- Per-job limits: lease past the jobs they hold back, looking at most SCAN_WINDOW queued
-- jobs. Returns the seconds until a rate admits a job it held (nil: none), and whether
-- a concurrency limit held one.
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
        redis.call('ZREM', prefix .. 'queued', id)  -- leased, or gone (no job hash)
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

-- Leases within `lim`; returns the seconds until a rate admits more (nil: none held).
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
  if blocked then  -- the next freed slot wakes waiting leases (slots.lua)
    redis.call('HSET', prefix .. 'flow', 'blocked', '1')
  end
  expire_rate_logs()
  return wait
end

return reply(lease_limited(parse_limits(limits)))
