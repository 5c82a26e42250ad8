-- A queue's limits, for lease.lua and settings.lua. The queue's 'flow' hash keeps them as
-- codec.encode_limits writes them: 'limits' = "max_active max_active_per_key rate
-- period rate_per_key period_per_key functions" (0: none; functions: 0 no function has
-- limits, 1 some have rates only, 2 some have max_active), and per function with limits
-- 'fn:<name>' = "max_active rate period".
-- Rates keep a sliding-window log each: a zset of lease tokens scored by start time,
-- 'rate' for the queue, 'rate:f:<function>' and 'rate:k:<concurrency key>'.

local NO_LIMITS = {max = 0, rate = 0, period = 0}

local LIMITS_LINE = '^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$'
local FUNCTION_LINE = '^(%S+) (%S+) (%S+)$'

-- (A line that does not parse sets no limit.)
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

-- The 'held' value of a job leased under `lim` (nil: no concurrency limit to count).
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

local running_cache = {}

-- Jobs counted under `field` of the count hash `hash` ('running_fn' or 'running_key').
local function running(hash, field)
  local cache = running_cache[hash]
  if cache == nil then
    cache = {}
    running_cache[hash] = cache
  end
  local count = cache[field]
  if count == nil then
    count = tonumber(redis.call('HGET', prefix .. hash, field) or '') or 0
    cache[field] = count
  end
  return count
end

local function count_in(hash, field)
  local count = running(hash, field) + 1
  running_cache[hash][field] = count
  redis.call('HSET', prefix .. hash, field, count)
end

local rate_room_cache = {}
local rate_periods = {}  -- logs written to, for their expiry

-- Starts the window of `log` admits now (old entries pruned once per script call).
local function rate_room(log, limit, period)
  local room = rate_room_cache[log]
  if room == nil then
    redis.call('ZREMRANGEBYSCORE', log, '-inf', now - period)
    room = limit - redis.call('ZCARD', log)
    rate_room_cache[log] = room
  end
  return room
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

local function rate_record(log, member, period)
  redis.call('ZADD', log, now, member)
  rate_room_cache[log] = (rate_room_cache[log] or 1) - 1
  rate_periods[log] = period
end

-- Logs expire a window after their last start (idle keys leave nothing behind).
local function expire_rate_logs()
  for log, period in pairs(rate_periods) do
    redis.call('PEXPIRE', log, math.ceil(period * 1000) + 1000)
  end
end

-- Whether a job of function `fn` and concurrency key `ckey` may start under its
-- function's and key's limits: 0 yes, 'busy' when a concurrency limit is full (a freed
-- slot wakes the lease), else the seconds until its rate windows admit it.
local function admit(lim, fn, ckey)
  local f = function_limits(lim, fn)
  if f.max > 0 and running('running_fn', fn) >= f.max then
    return 'busy'
  end
  local keyed = ckey and true or false
  if keyed and lim.key_max > 0 and running('running_key', ckey) >= lim.key_max then
    return 'busy'
  end
  local wait = 0
  if f.rate > 0 and rate_room(prefix .. 'rate:f:' .. fn, f.rate, f.period) <= 0 then
    wait = rate_wait(prefix .. 'rate:f:' .. fn, f.rate, f.period)
  end
  if keyed and lim.key_rate > 0 then
    local log = prefix .. 'rate:k:' .. ckey
    if rate_room(log, lim.key_rate, lim.key_period) <= 0 then
      wait = math.max(wait, rate_wait(log, lim.key_rate, lim.key_period))
    end
  end
  return wait
end

-- Record a start under every limit that counts it; returns its 'held' value.
local function take(lim, fn, ckey, lease)
  if lim.rate > 0 then
    rate_record(prefix .. 'rate', lease, lim.period)
  end
  local f = function_limits(lim, fn)
  if f.rate > 0 then
    rate_record(prefix .. 'rate:f:' .. fn, lease, f.period)
  end
  if ckey and lim.key_rate > 0 then
    rate_record(prefix .. 'rate:k:' .. ckey, lease, lim.key_period)
  end
  local flags = held_flags(lim, fn, ckey)
  if flags and flags % 4 >= 2 then
    count_in('running_fn', fn)
  end
  if flags and flags >= 4 then
    count_in('running_key', ckey)
  end
  return flags
end
