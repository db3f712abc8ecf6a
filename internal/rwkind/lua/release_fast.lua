-- release's fast path, run ahead of the shared code (queue.lua, rw.lua) so that a run that takes it
-- defines none of that code's functions: a reader releases with nobody queued (the common case).
-- It drops the readers whose time is up on the way (readers do not, when they acquire). The
-- arguments are release.lua's; anything else falls through to it, which reads score from here.
local score = redis.call('ZSCORE', KEYS[5], ARGV[1])
if score and not ARGV[2] and redis.call('EXISTS', KEYS[1]) == 0 then -- (never for a requeue)
  redis.call('ZREM', KEYS[5], ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now())
  if tonumber(score) > now() then
    return 1
  end
  return 0
end
