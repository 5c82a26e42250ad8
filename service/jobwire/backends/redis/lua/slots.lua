-- Concurrency slots, for settle, delete, bulk and settings. A job leased while its queue
-- had a concurrency limit carries 'held', a sum of flags: 1, plus 2 when it is counted in
-- 'running_fn' under its function, plus 4 when counted in 'running_key' under its
-- concurrency key. Whatever takes a job out of active/aborting calls release_slot and
-- drops 'held' (finish, a requeue, a delete), then flush_slots once, so the counts stay
-- exact.

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

local given_back = nil  -- count hash -> field -> slots given back, for flush_slots

-- Take a job out of the active index, noting what its 'held' value counted (`fn` and
-- `ckey`: its function and concurrency key).
local function release_slot(id, held, fn, ckey)
  redis.call('ZREM', prefix .. 'active', id)
  local flags = tonumber(held or '')
  if not flags then
    return
  end
  given_back = given_back or {running_fn = {}, running_key = {}}
  if flags % 4 >= 2 and fn then
    given_back.running_fn[fn] = (given_back.running_fn[fn] or 0) + 1
  end
  if flags >= 4 and ckey then
    given_back.running_key[ckey] = (given_back.running_key[ckey] or 0) + 1
  end
end

-- Write the counts release_slot noted (once per function and key), and wake waiting
-- leases if one was held back by a concurrency limit since the last wake.
local function flush_slots()
  if given_back == nil then
    return
  end
  for hash, fields in pairs(given_back) do
    for field, slots in pairs(fields) do
      adjust(prefix .. hash, field, -slots)
    end
  end
  if redis.call('HDEL', prefix .. 'flow', 'blocked') == 1 then
    wake()
  end
end
