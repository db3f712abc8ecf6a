-- release's fast path, run ahead of the shared helpers (queue.lua, exclusive.lua) so that a run
-- that takes it defines none of them: the lock holds our token, so nobody queued while we held it
-- (the common case; a holder is never queued where it holds, as taking the lock dequeues it), and
-- the release is a plain delete. The arguments are release.lua's; anything else falls through to
-- it, which reads holder from here. (A requeue, ARGV[2] set, always falls through.)
local holder = redis.call('GET', KEYS[4])
if holder == ARGV[1] and not ARGV[2] then
  redis.call('DEL', KEYS[4])
  return 1
end
