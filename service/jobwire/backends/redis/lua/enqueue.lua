-- ARGV: per job: id, dedup key ('' for none), scheduled time, priority, n, then n hash
-- values (field, value, ...). Returns clock seconds, microseconds, then per job: id,
-- created (1/0) where a duplicate returns the id of the existing job.
local out = {clock[1], clock[2]}
local ts = stamp(now)
local wake = false
local i = 1
while i <= #ARGV do
  local id, dedup, scheduled, priority = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local n = tonumber(ARGV[i + 4])
  local key = job_key(id)
  local existing = nil
  if redis.call('EXISTS', key) == 1 then
    existing = id
  elseif dedup ~= '' then
    local other = redis.call('HGET', prefix .. 'keys', dedup)
    if other and LIVE[redis.call('HGET', job_key(other), 'status')] then
      existing = other
    end
  end
  if existing then
    table.insert(out, existing)
    table.insert(out, 0)
  else
    if dedup ~= '' then
      redis.call('HSET', prefix .. 'keys', dedup, id)
    end
    if scheduled > now then
      redis.call('HSET', key, 'status', 'scheduled', 'created', ts, 'touched', ts, unpack(ARGV, i + 5, i + 4 + n))
      redis.call('ZADD', prefix .. 'scheduled', scheduled, id)
    else
      redis.call('HSET', key, 'status', 'queued', 'created', ts, 'queued', ts, 'touched', ts,
        unpack(ARGV, i + 5, i + 4 + n))
      redis.call('ZADD', prefix .. 'queued', redis.call('INCR', prefix .. 'seq') - priority * PRIORITY_STEP, id)
    end
    wake = true
    table.insert(out, id)
    table.insert(out, 1)
  end
  i = i + 5 + n
end
if wake then
  redis.call(PUBLISH, prefix .. 'wake', '')
end
return out
