-- ARGV: job id. Queues a finished job again.
-- Returns {code, HGETALL}: 0 no such job, 1 queued again, 2 its dedup key belongs to
-- another live job, 3 the job is still live (unchanged).
local id = ARGV[1]
local key = job_key(id)
local status = redis.call('HGET', key, 'status')
if not status then
  return {0, {}}
end
if LIVE[status] then
  return {3, redis.call('HGETALL', key)}
end
local dedup = redis.call('HGET', key, 'key')
if dedup then
  local other = redis.call('HGET', prefix .. 'keys', dedup)
  if other and other ~= id and LIVE[redis.call('HGET', job_key(other), 'status')] then
    return {2, redis.call('HGETALL', key)}
  end
  redis.call('HSET', prefix .. 'keys', dedup, id)
end
redis.call('ZREM', prefix .. status, id)
redis.call('PERSIST', key)
redis.call('HDEL', key, 'result', 'completed')
redis.call('HSET', key, 'progress', '0')
push_queued(id, key)
publish(id)
redis.call(PUBLISH, prefix .. 'wake', '')
return {1, redis.call('HGETALL', key)}
