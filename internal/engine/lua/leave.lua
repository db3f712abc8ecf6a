-- leave: take a waiter that gives up out of the queue; if the lock was granted or reserved for it,
-- or is free with it first in line, hand the lock over to the next waiter.
-- KEYS[1..3]  queue, liveness, channel (see queue.lua)
-- KEYS[4]  lock key; KEYS[5]  fencing counter (see exclusive.lua)
-- ARGV[1]  token of the waiter that leaves
-- (queue.lua and exclusive.lua are prepended)
-- Returns 1 when the waiter was queued or granted the lock, 0 when neither.
local removed = dequeue(ARGV[1])
local holder = redis.call('GET', KEYS[4])
-- A direct grant whose wake-up came too late for the waiter is given up like a reservation.
if ours(holder) then
  hand()
  return 1
end
if holder == 'r:' .. ARGV[1] or (removed == 1 and not holder) then
  hand()
end
return removed
