-- leave: take a waiter that gives up out of the queue, and if it was first in line while the lock
-- is free, wake the next one.
-- KEYS[1]  lock key
-- KEYS[2]  waiter queue (see acquire.lua)
-- KEYS[3]  waiter liveness (see acquire.lua)
-- KEYS[4]  wake-up channel of the name
-- ARGV[1]  token of the waiter that leaves
-- (queue.lua is prepended: now(), head(), dequeue())
-- Returns 1 when the waiter was queued, 0 when it was not.
local first = head()
local removed = dequeue(ARGV[1])
if removed == 1 and first == ARGV[1] and redis.call('EXISTS', KEYS[1]) == 0 then
  local following = head()
  if following then
    redis.call('PUBLISH', KEYS[4], following)
  end
end
return removed
