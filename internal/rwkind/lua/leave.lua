-- leave: take a waiter that gives up out of the queue and the waiting writers, drop what was
-- reserved for it, and hand what is now free to the next waiters.
-- KEYS[1..7]  see rw.lua (queue.lua and rw.lua are prepended)
-- ARGV[1]  token of the waiter that leaves
-- Returns 1 when the waiter was queued, 0 when it was not.
local removed = dequeue(ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
if redis.call('GET', KEYS[4]) == 'r:' .. ARGV[1] then
  redis.call('DEL', KEYS[4])
end
local score = redis.call('ZSCORE', KEYS[5], ARGV[1])
if score then
  redis.call('ZREM', KEYS[5], ARGV[1])
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  hand()
end
return removed
