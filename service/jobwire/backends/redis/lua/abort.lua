-- ARGV: job id, error JSON. A queued/scheduled job is aborted at once; an active one
-- turns 'aborting' until its worker cancels it (or its lease expires).
-- Returns the job's HGETALL (empty when there is no such job).
local id = ARGV[1]
local key = job_key(id)
local status = redis.call('HGET', key, 'status')
if status == 'queued' or status == 'scheduled' then
  redis.call('ZREM', prefix .. status, id)
  finish(id, key, 'aborted', {'error', ARGV[2]})
elseif status == 'active' then
  redis.call('HSET', key, 'status', 'aborting', 'error', ARGV[2], 'touched', stamp(now))
  redis.call('SADD', prefix .. 'aborting', id)
  publish(id)
end
return redis.call('HGETALL', key)
