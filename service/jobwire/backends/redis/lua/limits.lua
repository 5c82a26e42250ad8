-- A queue's limits, for lease.lua and settings.lua. The queue's 'flow' hash keeps them as
-- codec.encode_limits writes them: 'limits' = "max_active max_active_per_key rate
-- period rate_per_key period_per_key functions" (0: none; functions: 0 no function has
-- limits, 1 some have rates only, 2 some have max_active), and per function with limits
-- 'fn:<name>' = "max_active rate period". A line that does not parse sets no limit.
-- Rates keep a sliding-window log each: a zset of lease tokens scored by start time,
-- 'rate' for the queue, 'rate:f:<function>' and 'rate:k:<concurrency key>'.

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

local rate_wait_cache = {}

-- Seconds until the full window of `log` admits one more start (a full log takes no
-- more starts in this call, so the answer holds for the rest of it).
local function rate_wait(log, limit, period)
  local wait = rate_wait_cache[log]
  if wait == nil then
    local index = redis.call('ZCARD', log) - limit
    local entry = redis.call('ZRANGE', log, index, index, 'WITHSCORES')
    local admits = entry[2] and tonumber(entry[2]) + period or now
    wait = math.max(admits - now, 0.001)
    rate_wait_cache[log] = wait
  end
  return wait
end
