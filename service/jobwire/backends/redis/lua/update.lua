-- ARGV: job id, lease token, progress ('' to keep), meta JSON ('' to keep).
-- Returns 1, or 0 when the token no longer owns the job.
local id = ARGV[1]
local key = job_key(id)
local lease, status = unpack(redis.call('HMGET', key, 'lease', 'status'))
if lease ~= ARGV[2] or (status ~= 'active' and status ~= 'aborting') then
  return 0
end
if ARGV[3] ~= '' then
  redis.call('HSET', key, 'progress', ARGV[3])
end
if ARGV[4] ~= '' then
  redis.call('HSET', key, 'meta', ARGV[4])
end
redis.call('HSET', key, 'touched', stamp(now))
publish(id)
return 1
