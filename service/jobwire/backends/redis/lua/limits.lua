-- A queue's limits, for lease.lua and settings.lua. The queue's 'flow' hash keeps them as
-- codec.encode_limits writes them: 'limits' = "max_active max_active_per_key rate
-- period rate_per_key period_per_key functions" (0: none; functions: 0 no function has
-- limits, 1 some have rates only, 2 some have max_active), and per function with limits
-- 'fn:<name>' = "max_active rate period". A line that does not parse sets no limit.
-- Rates keep a sliding-window log each, a zset scored by start time: 'starts' for the
-- queue, 'starts:f:<function>' and 'starts:k:<concurrency key>'. A lease call writes one
-- entry per log it started jobs under, member "<running total>:<jobs>" (the total
-- zero-padded, so entries of one instant sort by it too): the starts within the window
-- are the newest entry's total less the total before its oldest entry.

local LIMITS_LINE = '^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$'
local FUNCTION_LINE = '^(%S+) (%S+) (%S+)$'
local NO_LIMITS = {max = 0, rate = 0, period = 0}

local function parse_limits(text)
  local a, b, c, d, e, f, g = string.match(text or '', LIMITS_LINE)
  local lim = {max_active = tonumber(a) or 0, key_max = tonumber(b) or 0,
    rate = tonumber(c) or 0, period = tonumber(d) or 0, key_rate = tonumber(e) or 0,
    key_period = tonumber(f) or 0, functions = tonumber(g) or 0}
  lim.concurrency = lim.max_active > 0 or lim.key_max > 0 or lim.functions >= 2
  lim.per_job = lim.functions > 0 or lim.key_max > 0 or lim.key_rate > 0
  return lim
end

local function_limits_cache = {}

-- A function's own limits ({max, rate, period}), read once per script call.
local function function_limits(lim, fn)
  if lim.functions == 0 then
    return NO_LIMITS
  end
  local cached = function_limits_cache[fn]
  if cached == nil then
    local line = redis.call('HGET', prefix .. 'flow', 'fn:' .. fn) or ''
    local max, rate, period = string.match(line, FUNCTION_LINE)
    cached = {max = tonumber(max) or 0, rate = tonumber(rate) or 0, period = tonumber(period) or 0}
    function_limits_cache[fn] = cached
  end
  return cached
end

-- The 'held' value of a job leased under `lim` (slots.lua; nil: no concurrency limit).
local function held_flags(lim, fn, ckey)
  if not lim.concurrency then
    return nil
  end
  local flags = 1
  if function_limits(lim, fn).max > 0 then
    flags = flags + 2
  end
  if ckey and lim.key_max > 0 then
    flags = flags + 4
  end
  return flags
end

-- Entry `index` of a rate log ({total, jobs, at}; nil past its ends). A member that
-- does not parse (left by a hand) counts as nothing rather than failing the lease.
local function log_entry(log, index)
  local entry = redis.call('ZRANGE', log, index, index, 'WITHSCORES')
  if entry[1] == nil then
    return nil
  end
  local total, jobs = string.match(entry[1], '^(%d+):(%d+)$')
  return {total = tonumber(total) or 0, jobs = tonumber(jobs) or 0, at = tonumber(entry[2])}
end

-- Starts within the window of `log` (entries that left it are dropped first).
local function rate_used(log, period)
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - period)
  local oldest = log_entry(log, 0)
  if oldest == nil then
    return 0
  end
  return math.max(log_entry(log, -1).total - oldest.total + oldest.jobs, 0)
end

-- Write `jobs` starts made now to `log`; an idle log expires a window later.
local function rate_add(log, jobs, period)
  local total, at = jobs, now
  local newest = log_entry(log, -1)
  if newest ~= nil then  -- (a clock stepping back must not reorder the log)
    total, at = newest.total + jobs, math.max(now, newest.at)
  end
  redis.call('ZADD', log, at, string.format('%015d:%d', total, jobs))
  redis.call('PEXPIRE', log, math.ceil(period * 1000) + 1000)
end

local rate_wait_cache = {}

-- Seconds until the full window of `log` (this call's starts written) admits one more
-- start: once the oldest entry whose total passes (newest total - limit) leaves it. A
-- full log takes no more starts in this call, so the answer holds for the rest of it.
local function rate_wait(log, limit, period)
  local wait = rate_wait_cache[log]
  if wait == nil then
    local admits = now
    local newest = log_entry(log, -1)
    if newest ~= nil then
      local passes = newest.total - limit
      local lo, hi = 0, redis.call('ZCARD', log) - 1  -- entries sorted by total
      while lo < hi do
        local mid = math.floor((lo + hi) / 2)
        if log_entry(log, mid).total > passes then
          hi = mid
        else
          lo = mid + 1
        end
      end
      admits = log_entry(log, lo).at + period
    end
    wait = math.max(admits - now, 0.001)
    rate_wait_cache[log] = wait
  end
  return wait
end
