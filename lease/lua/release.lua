-- release: delete the lock key if, and only if, it holds our token, take our token out of the
-- waiter queue, and wake the waiter first in line if the lock is free.
-- KEYS[1]  lock key
-- KEYS[2]  waiter queue (see acquire.lua)
-- KEYS[3]  waiter liveness (see acquire.lua)
-- KEYS[4]  wake-up channel of the name
-- ARGV[1]  token
-- (queue.lua is prepended: now(), head(), dequeue())
-- Returns 1 when the key was ours and is now deleted, 0 when it was gone or held another token
-- (releasing twice, or after expiry, deletes nothing). A holder that won a majority can still be
-- queued on the nodes that did not grant it; the release, which goes to every node, takes it out
-- of those queues too. Where the lock is then free and a live waiter is first in line, it publishes
-- that waiter's token on the channel: only that waiter retries.
local released = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  released = 1
end
-- Nobody waits (the common case): nothing more to do.
if redis.call('EXISTS', KEYS[2]) == 0 then
  return released
end
local dequeued = dequeue(ARGV[1])
if (released == 1 or dequeued == 1) and redis.call('EXISTS', KEYS[1]) == 0 then
  local first = head()
  if first then
    redis.call('PUBLISH', KEYS[4], first)
  end
end
return released
