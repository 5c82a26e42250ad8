-- ARGV: '1' to pause the queue, '0' to resume it (which wakes waiting leases).
if ARGV[1] == '1' then
  redis.call('HSET', prefix .. 'flow', 'paused', '1')
else
  redis.call('HDEL', prefix .. 'flow', 'paused')
  wake()
end
return 1
