-- ARGV: job id. Queues a finished job again.
-- Returns {code, HGETALL}: 0 no such job, 1 queued again, 2 its dedup key belongs to
-- another live job, 3 the job is still live (unchanged).
local id = ARGV[1]
local key = job_key(id)
local status = redis.call('HGET', key, 'status')
if not status then
  return {0, {}}
end
local code = retry_job(id, key, status)
if code == 1 then
  wake()
end
return {code, redis.call('HGETALL', key)}
