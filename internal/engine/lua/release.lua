-- release: give up the lock key if, and only if, it holds our token: delete it, or, when waiters
-- queued behind us, hand it to the first of them.
-- KEYS[1..3]  queue, liveness, channel (see queue.lua)
-- KEYS[4]  lock key; KEYS[5]  fencing counter (see exclusive.lua)
-- ARGV[1]  token
-- ARGV[2], ARGV[3]  only for a requeue (the undo of a round by a waiter that goes on waiting, see
--          engine.Requeuer): its arrival score and TTL in milliseconds
-- (release_fast.lua, queue.lua and exclusive.lua are prepended)
-- Returns 1 when the key was ours, 0 when it was gone or held another token (releasing twice, or
-- after expiry, changes nothing). What the first waiter is handed (the lock itself, or a
-- reservation only it may take) makes a newcomer's SET NX fail while someone waits, so the queue's
-- order holds. A holder that won a majority can still be queued on the nodes that did not grant
-- it; the release, which goes to every node, takes it out of those queues.
-- (Nobody queued while we held it, the common case, is the plain delete of release_fast.lua, which
-- read holder, the lock key's value.)
-- Waiters queued behind us (the first of them marked the value): the next one gets it. The key is
-- deleted first: on a node out of memory (maxmemory-policy noeviction) Redis refuses a script's
-- first write when it may grow memory (the SET that hands the lock over), but not once the script
-- has written (the DEL), so the handover goes through and the name is not left held to its TTL.
if holder == 'q:' .. ARGV[1] or (ARGV[2] and holder == ARGV[1]) then
  redis.call('DEL', KEYS[4])
  if ARGV[2] then
    -- A requeue: the waiter is back in line at its arrival before the lock is handed over, so it
    -- goes to the first of those who arrived before it, or to the waiter itself.
    join(ARGV[2], tonumber(ARGV[3]), nil)
  end
  hand()
  return 1
end
if ARGV[2] then
  return 0 -- a requeue where the round's grant is gone: nothing to give back (its next round joins)
end
-- Not ours here. If it was reserved for us (we won our majority on other nodes, or gave up), or
-- it is free and we were queued, the next waiter gets it.
local dequeued = redis.call('EXISTS', KEYS[1]) == 1 and dequeue(ARGV[1]) == 1
if holder == 'r:' .. ARGV[1] then
  redis.call('DEL', KEYS[4]) -- as above
end
if holder == 'r:' .. ARGV[1] or (dequeued and not holder) then
  hand()
end
return 0
