-- ARGV: job id. Removes the job from every index and deletes it. Returns 1, or 0 if
-- there was no such job. A worker still running it finds its lease lost.
local id = ARGV[1]
local key = job_key(id)
if not redis.call('HGET', key, 'status') then
  return 0
end
delete_job(id, key)
flush_slots()
return 1
