-- ARGV: max jobs, lease token prefix, default lease seconds, worker id.
-- Promotes due scheduled jobs, then (unless the queue is paused) pops and activates up
-- to max queued jobs in one atomic step (no window where a job is popped but not yet
-- active). A queue with limits goes on in lease_queue.lua and lease_jobs.lua (appended
-- after this file with limits.lua); this path makes no functions: it stays as cheap as
-- before limits existed.
-- Returns: seconds until more may be leased ('' if unknown: the next scheduled job is
-- due, or a rate window admits a job it held back), then each job's HGETALL.
local due = redis.call('ZRANGEBYSCORE', prefix .. 'scheduled', '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', prefix .. 'scheduled', id)
  local key = job_key(id)
  if redis.call('EXISTS', key) == 1 then
    push_queued(id, key)
  end
end
local out = {''}
local paused, limits = unpack(redis.call('HMGET', prefix .. 'flow', 'paused', 'limits'))
if paused then
  return out
end
if not limits then
  local popped = redis.call('ZPOPMIN', prefix .. 'queued', tonumber(ARGV[1]))
  for j = 1, #popped, 2 do
    local id = popped[j]
    local key = job_key(id)
    if redis.call('EXISTS', key) == 1 then
      -- read before writing (not HINCRBY, which fails on a non-integer): a failure past
      -- ZPOPMIN would lose every job popped
      local attempts = math.floor(num_field(key, 'attempts', 0, 0, TTL_MAX)) + 1
      local heartbeat = num_field(key, 'heartbeat', 0, 0, SECONDS_MAX)
      local lease_s = heartbeat > 0 and heartbeat or tonumber(ARGV[3])
      redis.call('HSET', key, 'status', 'active', 'started', stamp(now), 'touched', stamp(now),
        'lease', ARGV[2] .. '.' .. j, 'worker', ARGV[4], 'attempts', attempts)
      redis.call('ZADD', prefix .. 'active', now + lease_s, id)
      table.insert(out, redis.call('HGETALL', key))
    end
  end
  local next_due = redis.call('ZRANGE', prefix .. 'scheduled', 0, 0, 'WITHSCORES')
  if next_due[2] then
    out[1] = stamp(tonumber(next_due[2]) - now)
  end
  return out
end
