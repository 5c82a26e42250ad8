-- ARGV: job id, error JSON. A queued/scheduled job is aborted at once; an active one
-- turns 'aborting' until its worker cancels it (or its lease expires).
-- Returns the job's HGETALL (empty when there is no such job).
local id = ARGV[1]
local key = job_key(id)
abort_job(id, key, redis.call('HGET', key, 'status'), ARGV[2])
return redis.call('HGETALL', key)
