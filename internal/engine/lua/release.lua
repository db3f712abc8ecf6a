-- release: give up the lock key if, and only if, it holds our token: delete it, or, when waiters
-- are queued, reserve it for the first of them and wake that one.
-- KEYS[1..3]  queue, liveness, channel (see queue.lua)
-- KEYS[4]  lock key (see acquire.lua)
-- ARGV[1]  token
-- (queue.lua and exclusive.lua are prepended)
-- Returns 1 when the key was ours, 0 when it was gone or held another token (releasing twice, or
-- after expiry, changes nothing). The reservation ("r:" and the waiter's token, expiring with the
-- waiter's liveness) makes a newcomer's SET NX fail while someone waits, so the queue's order holds;
-- only the waiter it names may take it. A holder that won a majority can still be queued on the
-- nodes that did not grant it; the release, which goes to every node, takes it out of those queues.
local holder = redis.call('GET', KEYS[4])
if holder == ARGV[1] then
  -- Nobody waits (the common case): just delete.
  if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('DEL', KEYS[4])
    return 1
  end
  dequeue(ARGV[1])
  hand()
  return 1
end
-- Not ours here. If it was reserved for us (we won our majority on other nodes, or gave up), or
-- it is free and we were queued, the next waiter gets it.
local dequeued = redis.call('EXISTS', KEYS[1]) == 1 and dequeue(ARGV[1]) == 1
if holder == 'r:' .. ARGV[1] or (dequeued and not holder) then
  hand()
end
return 0
