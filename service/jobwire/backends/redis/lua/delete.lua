-- ARGV: job id. Removes the job from every index and deletes it. Returns 1, or 0 if
-- there was no such job. A worker still running it finds its lease lost.
local id = ARGV[1]
local key = job_key(id)
local status = redis.call('HGET', key, 'status')
if not status then
  return 0
end
release_dedup_key(id, key)
for _, index in ipairs({'queued', 'scheduled', 'active', 'complete', 'failed', 'aborted'}) do
  redis.call('ZREM', prefix .. index, id)
end
redis.call('SREM', prefix .. 'aborting', id)
redis.call('DEL', key)
publish(id)
return 1
