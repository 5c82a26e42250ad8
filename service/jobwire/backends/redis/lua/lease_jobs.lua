-- lease_queue.lua goes on here when limits apply per job (per function or concurrency
-- key): the jobs they hold back stay queued and later ones are leased past them,
-- looking at a bounded window of the queue's head.
local SCAN_WINDOW = 1000  -- queued jobs one lease looks at, from the head
local SCAN_CHUNK = 100
local running_cache = {}  -- count hash -> field -> count (written once, by write_counts)
local rate_room_cache = {}

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

local counted = {}  -- count hash -> fields this call counted in

local function count_in(hash, field)
  running_cache[hash][field] = running(hash, field) + 1
  counted[hash] = counted[hash] or {}
  counted[hash][field] = true
end

local function write_counts()
  for hash, fields in pairs(counted) do
    for field in pairs(fields) do
      redis.call('HSET', prefix .. hash, field, running_cache[hash][field])
    end
  end
end

-- Starts the window of `log` admits now (old entries pruned once per script call).
local function rate_left(log, limit, period)
  local room = rate_room_cache[log]
  if room == nil then
    room = limit - rate_used(log, period)
    rate_room_cache[log] = room
  end
  return room
end

local function rate_record(log, period)
  note_start(log, period)
  rate_room_cache[log] = (rate_room_cache[log] or 1) - 1
end

-- Seconds until the full window of `log` admits one more (its starts written first).
local function log_wait(log, limit, period)
  log_starts(log)
  return rate_wait(log, limit, period)
end

-- Whether a job of function `fn` and concurrency key `ckey` may start under its
-- function's and key's limits: 0 yes, 'busy' when a concurrency limit is full (a freed
-- slot wakes the lease), else the seconds until its rate windows admit it.
local function admit(fn, ckey)
  local f = function_limits(lim, fn)
  if f.max > 0 and running('running_fn', fn) >= f.max then
    return 'busy'
  end
  if ckey and lim.key_max > 0 and running('running_key', ckey) >= lim.key_max then
    return 'busy'
  end
  local wait = 0
  if f.rate > 0 and rate_left(prefix .. 'starts:f:' .. fn, f.rate, f.period) <= 0 then
    wait = log_wait(prefix .. 'starts:f:' .. fn, f.rate, f.period)
  end
  if ckey and lim.key_rate > 0 then
    local log = prefix .. 'starts:k:' .. ckey
    if rate_left(log, lim.key_rate, lim.key_period) <= 0 then
      wait = math.max(wait, log_wait(log, lim.key_rate, lim.key_period))
    end
  end
  return wait
end

-- Record a start under every limit that counts it; returns its 'held' value.
local function take(fn, ckey)
  if rate_room ~= nil then
    note_start(queue_log, lim.period)
  end
  local f = function_limits(lim, fn)
  if f.rate > 0 then
    rate_record(prefix .. 'starts:f:' .. fn, f.period)
  end
  if ckey and lim.key_rate > 0 then
    rate_record(prefix .. 'starts:k:' .. ckey, lim.key_period)
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

-- Lease up to `budget` jobs no limit holds back (they leave the queued index together at
-- the end). Returns the seconds until a rate admits a job it held (nil: none), and
-- whether a concurrency limit held one.
local function scan()
  local wait, blocked, taken = nil, false, {}
  local visited, offset, chunk = 0, 0, math.min(SCAN_CHUNK, budget + 8)
  while leased < budget and visited < SCAN_WINDOW do
    local ids = redis.call('ZRANGE', prefix .. 'queued', offset, offset + chunk - 1)
    if #ids == 0 then
      break
    end
    for _, id in ipairs(ids) do
      visited = visited + 1
      local key = job_key(id)
      local status, fn, ckey = unpack(redis.call('HMGET', key, 'status', 'function', 'concurrency_key'))
      local verdict = status and admit(fn or '', ckey) or 0
      if verdict == 'busy' then
        blocked = true
      elseif verdict > 0 then
        wait = math.min(wait or verdict, verdict)
      else
        table.insert(taken, id)  -- leased, or gone (no job hash)
        if status then
          local lease = next_lease()
          activate(id, key, lease, take(fn or '', ckey))
        end
      end
      if leased >= budget or visited >= SCAN_WINDOW then
        break
      end
    end
    offset, chunk = offset + #ids, SCAN_CHUNK
  end
  for i = 1, #taken, 1000 do  -- (unpack takes a few thousand values at most)
    redis.call('ZREM', prefix .. 'queued', unpack(taken, i, math.min(i + 999, #taken)))
  end
  write_counts()
  return wait, blocked
end

local wait, blocked = nil, false
if budget > 0 then
  wait, blocked = scan()
end
return limited_reply(wait, blocked)
