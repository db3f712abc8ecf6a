-- release: give up every slot the token holds or is reserved on this node, take it out of the
-- queue, and hand the free slots to the waiters, in queue order.
-- KEYS[1..7]  see sem.lua (queue.lua and sem.lua are prepended)
-- ARGV[1]  token
-- Returns the slots the token held (not those merely reserved for it); none when it had expired.
purge()
local released = {}
for _, s in ipairs(slots_of(ARGV[1])) do
  local owner = redis.call('HGET', KEYS[5], s)
  if owner == ARGV[1] then
    released[#released + 1] = s
  end
  if owner == ARGV[1] or owner == 'r:' .. ARGV[1] then
    free_slot(s)
  end
end
set_slots(ARGV[1], {})
dequeue(ARGV[1])
hand()
settle()
return released
