-- release: give up every slot the token holds or is reserved on this node, take it out of the
-- queue (a requeue: put it back in line), and hand the free slots to the waiters, in queue order.
-- KEYS[1..7]  see sem.lua (release_fast.lua, queue.lua and sem.lua are prepended)
-- ARGV[1]  token
-- ARGV[2..4]  only for a requeue (the undo of a round by a waiter that goes on waiting, see
--          engine.Requeuer): its arrival score, TTL in milliseconds and weight
-- Returns the slots the token held (not those merely reserved for it); none when it had expired.
-- (The fastest path, the only holder releasing with nobody queued, ran in release_fast.lua.)
-- The token's own slots first, with no purge: one of ours whose time is up was not held any more.
local released, freed = {}, false
for _, s in ipairs(slots_of(ARGV[1])) do
  local owner = redis.call('HGET', KEYS[5], s)
  if owner == ARGV[1] then
    local until_ms = redis.call('ZSCORE', KEYS[4], s)
    if until_ms and tonumber(until_ms) > now() then
      released[#released + 1] = s
    end
  end
  if owner == ARGV[1] or owner == 'r:' .. ARGV[1] then
    free_slot(s)
    freed = true
  end
end
set_slots(ARGV[1], {})
-- With waiters queued: leave the queue if we were in it, drop the slots whose time is up (the
-- waiters count what is free), and hand the free slots over.
local queued = redis.call('EXISTS', KEYS[1]) == 1
if ARGV[2] and not freed then
  return released -- a requeue where the round's grant is gone: nothing to give back (its next round joins)
elseif ARGV[2] then
  -- A requeue: the waiter is back in line at its arrival before the slots are handed over, so
  -- they go to those who arrived before it first.
  join(ARGV[2], tonumber(ARGV[3]), ARGV[4])
  queued = true
elseif queued then
  dequeue(ARGV[1])
end
if queued then
  purge()
  handover(serve)
end
settle(not queued)
return released
