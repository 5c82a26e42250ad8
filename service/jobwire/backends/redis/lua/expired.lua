-- ARGV: limit. Drops finished-job index entries past their ttl and throughput buckets
-- older than an hour, then returns the
-- HGETALL of up to `limit` jobs whose lease has expired.
for _, status in ipairs({'complete', 'failed', 'aborted'}) do
  redis.call('ZREMRANGEBYSCORE', prefix .. status, '-inf', now)
end
local oldest_minute = math.floor(now / 60) - 60  -- keep an hour of throughput buckets
for _, minute in ipairs(redis.call('HKEYS', prefix .. 'finished_per_minute')) do
  local bucket = tonumber(minute)
  if bucket == nil or bucket < oldest_minute then
    redis.call('HDEL', prefix .. 'finished_per_minute', minute)
  end
end
local out = {}
local ids = redis.call('ZRANGEBYSCORE', prefix .. 'active', '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(ids) do
  local fields = redis.call('HGETALL', job_key(id))
  if #fields == 0 then
    redis.call('ZREM', prefix .. 'active', id)  -- deleted while active
  else
    table.insert(out, fields)
  end
end
return out
