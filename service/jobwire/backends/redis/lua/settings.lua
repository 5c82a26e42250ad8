-- ARGV: the settings as JSON ('' for none), the 'limits' line ('' when no limit is
-- set), then per function with limits its 'fn:<name>' field and line (see limits.lua).
-- Replaces the queue's limits, recounts the active jobs they count (so the counts are
-- exact whatever was stored before) and wakes waiting leases (relaxed limits may let
-- jobs start now).
local flow = prefix .. 'flow'
local stale = {'settings', 'limits', 'blocked'}
for _, field in ipairs(redis.call('HKEYS', flow)) do
  if string.sub(field, 1, 3) == 'fn:' then
    table.insert(stale, field)
  end
end
redis.call('HDEL', flow, unpack(stale))
local lim = parse_limits(nil)
if ARGV[1] ~= '' then
  redis.call('HSET', flow, 'settings', ARGV[1])
end
if ARGV[2] ~= '' then
  redis.call('HSET', flow, 'limits', ARGV[2], unpack(ARGV, 3))
  lim = parse_limits(ARGV[2])
end
redis.call('DEL', prefix .. 'running_fn', prefix .. 'running_key')
for _, id in ipairs(redis.call('ZRANGE', prefix .. 'active', 0, -1)) do
  local key = job_key(id)
  local status, fn, ckey = unpack(redis.call('HMGET', key, 'status', 'function', 'concurrency_key'))
  local flags = status and held_flags(lim, fn or '', ckey)
  if flags then
    redis.call('HSET', key, 'held', flags)
    if flags % 4 >= 2 then
      adjust(prefix .. 'running_fn', fn or '', 1)
    end
    if flags >= 4 then
      adjust(prefix .. 'running_key', ckey, 1)
    end
  elseif status then
    redis.call('HDEL', key, 'held')
  end
end
wake()
return 1
