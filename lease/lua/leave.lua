-- leave: take a waiter that gives up out of the queue; if the lock was reserved for it, or free
-- with it first in line, hand the lock over to the next waiter.
-- KEYS[1]  lock key (see acquire.lua)
-- KEYS[2]  waiter queue (see acquire.lua)
-- KEYS[3]  waiter liveness (see acquire.lua)
-- KEYS[4]  wake-up channel of the name
-- ARGV[1]  token of the waiter that leaves
-- (queue.lua is prepended: now(), head(), dequeue(), handover())
-- Returns 1 when the waiter was queued, 0 when it was not.
local removed = dequeue(ARGV[1])
local holder = redis.call('GET', KEYS[1])
if holder == 'r:' .. ARGV[1] or (removed == 1 and not holder) then
  handover()
end
return removed
