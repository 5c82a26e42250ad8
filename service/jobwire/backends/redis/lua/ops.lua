-- One job's abort, retry and delete, shared by their scripts and by bulk.lua. Each
-- takes the job's id, hash key and current status (read by the caller).

-- Abort a live job: a queued/scheduled one ends aborted at once, an active one turns
-- 'aborting' until its worker cancels it (or its lease expires). Returns whether it
-- changed (a finished or already aborting job does not).
local function abort_job(id, key, status, err)
  if status == 'queued' or status == 'scheduled' then
    redis.call('ZREM', prefix .. status, id)
    finish(id, key, 'aborted', {'error', err})
    return true
  elseif status == 'active' then
    redis.call('HSET', key, 'status', 'aborting', 'error', err, 'touched', stamp(now))
    redis.call('SADD', prefix .. 'aborting', id)
    publish(id)
    announce_abort(id)
    return true
  end
  return false
end

-- Queue a finished job again (the caller publishes the wake-up). Returns 1 queued
-- again, 2 its dedup key belongs to another live job, 3 the job is live (unchanged).
local function retry_job(id, key, status)
  if LIVE[status] then
    return 3
  end
  local dedup = redis.call('HGET', key, 'key')
  if dedup then
    local other = redis.call('HGET', prefix .. 'keys', dedup)
    if other and other ~= id and LIVE[redis.call('HGET', job_key(other), 'status')] then
      return 2
    end
    redis.call('HSET', prefix .. 'keys', dedup, id)
  end
  redis.call('ZREM', prefix .. status, id)
  redis.call('PERSIST', key)
  redis.call('HDEL', key, 'result', 'completed')
  redis.call('HSET', key, 'progress', '0')
  push_queued(id, key)
  publish(id)
  return 1
end

-- Remove a job from every index and delete it (a worker still running it finds its
-- lease lost; the caller calls flush_slots).
local function delete_job(id, key)
  local held, fn, ckey = unpack(redis.call('HMGET', key, 'held', 'function', 'concurrency_key'))
  release_dedup_key(id, key)
  for _, index in ipairs({'queued', 'scheduled', 'complete', 'failed', 'aborted'}) do
    redis.call('ZREM', prefix .. index, id)
  end
  redis.call('SREM', prefix .. 'aborting', id)
  release_slot(id, held, fn, ckey)
  redis.call('DEL', key)
  publish(id)
end
