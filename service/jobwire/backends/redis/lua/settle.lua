-- ARGV: per outcome: job id, lease token, status, result JSON ('' for none),
-- error JSON ('' for none), retry delay seconds, only-if-expired ('1'/'0'). 'queued'
-- without an error hands the job back unstarted: its attempt is given back.
-- Returns 1 per settled outcome, 0 where the lease was stale (nothing changed).
local out = {}
local wake = false
for i = 1, #ARGV, 7 do
  local id, token, status, result, err = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local key = job_key(id)
  local lease, current, held, fn, ckey =
    unpack(redis.call('HMGET', key, 'lease', 'status', 'held', 'function', 'concurrency_key'))
  local owned = lease == token and (current == 'active' or current == 'aborting')
  if owned and ARGV[i + 6] == '1' then
    local expires = redis.call('ZSCORE', prefix .. 'active', id)
    owned = expires ~= false and tonumber(expires) <= now
  end
  if owned then
    release_slot(id, held, fn, ckey)
    if current == 'aborting' and status ~= 'complete' then
      status, err = 'aborted', ''  -- the abort's own error is already stored
    end
    if status == 'queued' then
      redis.call('HDEL', key, 'lease', 'held')
      if err ~= '' then
        redis.call('HSET', key, 'error', err)
      elseif num_field(key, 'attempts', 0, 0, TTL_MAX) >= 1 then
        redis.call('HINCRBY', key, 'attempts', -1)  -- handed back unstarted: not an attempt
      end
      local delay = tonumber(ARGV[i + 5])
      if delay > 0 then
        push_scheduled(id, key, now + delay)
      else
        push_queued(id, key)
      end
      publish(id)
      wake = true
    else
      local fields = {}
      if status == 'complete' then
        fields = {'result', result, 'progress', '1'}
      end
      if err ~= '' then
        table.insert(fields, 'error')
        table.insert(fields, err)
      end
      finish(id, key, status, fields)
    end
  end
  table.insert(out, owned and 1 or 0)
end
if wake then
  redis.call(PUBLISH, prefix .. 'wake', '')
end
flush_slots()
return out
