-- racquire's fast path, run ahead of the shared code (queue.lua, rw.lua) so that a run that takes
-- it defines none of that code's functions: a first attempt (the caller cannot be queued yet), and
-- no writer holds, is reserved the lock or waits, so the reader takes its read lock. The arguments
-- are racquire.lua's; anything else falls through to it.
if ARGV[6] ~= '1' and redis.call('EXISTS', KEYS[4], KEYS[6]) == 0 then
  local ttl = tonumber(ARGV[2])
  redis.call('ZADD', KEYS[5], now() + ttl, ARGV[1])
  -- As expire_set does: the set lives at least the TTL more, never shorter for the other readers.
  local left = redis.call('PTTL', KEYS[5])
  if left == -1 or (left >= 0 and left < ttl) then
    redis.call('PEXPIRE', KEYS[5], ttl)
  end
  return 0
end
