-- ARGV: default lease seconds, then (job id, lease token) pairs.
-- Extends each lease still owned by its token; returns per job its status
-- ('active' or 'aborting') or 'lost' when the token no longer owns the job.
local out = {}
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local key = job_key(id)
  local lease, status = unpack(redis.call('HMGET', key, 'lease', 'status'))
  if lease ~= token or (status ~= 'active' and status ~= 'aborting') then
    table.insert(out, 'lost')
  else
    local lease_s = num_field(key, 'heartbeat', 0, 0, SECONDS_MAX)
    if lease_s <= 0 then
      lease_s = tonumber(ARGV[1])
    end
    redis.call('ZADD', prefix .. 'active', now + lease_s, id)
    redis.call('HSET', key, 'touched', stamp(now))
    table.insert(out, status)
  end
end
return out
