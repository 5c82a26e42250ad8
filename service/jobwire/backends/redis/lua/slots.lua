-- Concurrency slots, for settle, delete, bulk and settings. A job leased while its queue
-- had a concurrency limit carries 'held', a sum of flags: 1, plus 2 when it is counted in
-- 'running_fn' under its function, plus 4 when counted in 'running_key' under its
-- concurrency key. Whatever takes a job out of active/aborting calls release_slot and
-- drops 'held' (finish, a requeue, a delete), so the counts stay exact.

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
