-- ARGV: action ('retry', 'delete' or 'abort'), cursor ('' to start), limit, then the
-- filter: status, function, dedup key prefix, enqueued before, enqueued after ('' for
-- any), then the error JSON an abort stores.
-- Visits about `limit` jobs (ZSCAN's COUNT is a hint: a few more at times) of the
-- indexes the action applies to, index by index and by ZSCAN cursor within each, which
-- returns every job that stays in its index throughout a pass, perhaps twice: the
-- actions skip what they have changed already, and a retry takes only jobs finished
-- before the pass began (a job retried and finished again in the same pass is not
-- retried twice). Indexes go in the order jobs move (scheduled, queued, active, then
-- finished), so a job moving its usual way during the pass is still met.
-- Cursor: "<pass start time> <index number> <ZSCAN cursor>".
-- Returns {jobs changed, next cursor ('' when the pass is done)}.
local action, limit = ARGV[1], tonumber(ARGV[3])
local want_status, want_fn, want_prefix = ARGV[4], ARGV[5], ARGV[6]
local before, after, err = tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]
local INDEXES = {
  retry = {'complete', 'failed', 'aborted'},
  abort = {'scheduled', 'queued', 'active'},
  delete = {'scheduled', 'queued', 'active', 'complete', 'failed', 'aborted'},
}
local indexes = {}
for _, index in ipairs(INDEXES[action] or {}) do
  if want_status == '' or want_status == index or (want_status == 'aborting' and index == 'active') then
    table.insert(indexes, index)
  end
end
local started, at, cursor = now, 1, '0'
if ARGV[2] ~= '' then
  local pass_start, index, scan_cursor = string.match(ARGV[2], '^(%S+) (%d+) (%d+)$')
  started, at, cursor = tonumber(pass_start) or now, tonumber(index) or 1, scan_cursor or '0'
end

local function matches(status, fn, dedup, created)
  local since = tonumber(created) or 0
  return (want_status == '' or status == want_status) and (want_fn == '' or fn == want_fn)
    and (want_prefix == '' or string.sub(dedup or '', 1, #want_prefix) == want_prefix)
    and (before == nil or since < before) and (after == nil or since >= after)
end

local changed, visited, retried = 0, 0, false
while at <= #indexes and visited < limit do
  local reply = redis.call('ZSCAN', prefix .. indexes[at], cursor, 'COUNT', limit - visited)
  cursor = reply[1]
  for i = 1, #reply[2], 2 do
    local id = reply[2][i]
    local key = job_key(id)
    local status, fn, dedup, created, completed =
      unpack(redis.call('HMGET', key, 'status', 'function', 'key', 'created', 'completed'))
    visited = visited + 1
    if status and matches(status, fn, dedup, created) then
      if action == 'delete' then
        delete_job(id, key)
        changed = changed + 1
      elseif action == 'abort' then
        changed = changed + (abort_job(id, key, status, err) and 1 or 0)
      elseif (tonumber(completed) or 0) < started and retry_job(id, key, status) == 1 then
        changed, retried = changed + 1, true
      end
    end
  end
  if cursor == '0' then
    at, cursor = at + 1, '0'
  end
end
if retried then
  wake()
end
flush_slots()
if at > #indexes then
  return {changed, ''}
end
return {changed, string.format('%.6f %d %s', started, at, cursor)}
