-- leave: take a waiter that gives up out of the queue, free the slots reserved for it, and hand
-- what is free to the waiters behind it (a large request that gives up at the head no longer holds
-- up the smaller ones).
-- KEYS[1..7]  see sem.lua (queue.lua and sem.lua are prepended)
-- ARGV[1]  token of the waiter that leaves
-- Returns 1 when the waiter was queued, 0 when it was not.
local removed = dequeue(ARGV[1])
local held = {}
for _, s in ipairs(slots_of(ARGV[1])) do
  local owner = redis.call('HGET', KEYS[5], s)
  if owner == 'r:' .. ARGV[1] then
    free_slot(s)
  elseif owner == ARGV[1] then
    held[#held + 1] = s
  end
end
set_slots(ARGV[1], held)
hand()
settle()
return removed
