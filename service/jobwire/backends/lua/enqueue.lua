-- ARGV: per job: id, dedup key ('' for none), scheduled time, n, then n hash values
-- (field, value, ...). Returns clock seconds, microseconds, then per job: id, created (1/0)
-- where a duplicate returns the id of the existing job.
local out = {clock[1], clock[2]}
local wake = false
local i = 1
while i <= #ARGV do
  local id, dedup, scheduled, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
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
    redis.call('HSET', key, 'created', stamp(now), unpack(ARGV, i + 4, i + 3 + n))
    if dedup ~= '' then
      redis.call('HSET', prefix .. 'keys', dedup, id)
    end
    if scheduled > now then
      push_scheduled(id, key, scheduled)
    else
      push_queued(id, key)
    end
    wake = true
    table.insert(out, id)
    table.insert(out, 1)
  end
  i = i + 4 + n
end
if wake then
  redis.call('PUBLISH', prefix .. 'wake', '')
end
return out
