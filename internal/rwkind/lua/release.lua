-- release: give up whatever the token holds or was reserved — the write lock or a read lock — take
-- it out of the queue (a requeue: put it back in line), and hand what is now free to the waiters.
-- KEYS[1..7]  see rw.lua (release_fast.lua, queue.lua and rw.lua are prepended)
-- ARGV[1]  token
-- ARGV[2..4]  only for a requeue (the undo of a round by a waiter that goes on waiting, see
--          engine.Requeuer): its arrival score, TTL in milliseconds and demand ("r" or "w")
-- Returns 1 when the token held the lock here (as the writer, or as a reader), 0 when it did not
-- (released twice, after expiry, or never granted here).
-- out_of_line takes the token out of the queue (a writer out of the waiting writers too), or, for
-- a requeue, puts it back in line at its arrival, so that what is handed over goes to those who
-- arrived before it, then to it.
local function out_of_line(writer)
  if not ARGV[2] then
    if writer then
      redis.call('ZREM', KEYS[6], ARGV[1])
    end
    dequeue(ARGV[1])
    return
  end
  local ttl = tonumber(ARGV[3])
  join(ARGV[2], ttl, ARGV[4])
  if ARGV[4] == 'w' then
    redis.call('ZADD', KEYS[6], 'NX', ARGV[2], ARGV[1])
    expire_set(KEYS[6], 2 * ttl)
  end
end
-- A reader (the common case), or a reader a release reserved a place for: it is no waiting writer,
-- and with nobody queued, it is not queued either.
-- (score, the token's as a reader, was read by release_fast.lua, which took the case of nobody
-- queued: here, somebody is.)
if score then
  redis.call('ZREM', KEYS[5], ARGV[1])
  -- Drop the readers whose time is up on the way (readers do not, when they acquire).
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now())
  out_of_line(false)
  hand()
  if tonumber(score) > now() then
    return 1
  end
  return 0
end
local held = 0
local holder = redis.call('GET', KEYS[4])
if holder == ARGV[1] or holder == 'r:' .. ARGV[1] then
  redis.call('DEL', KEYS[4])
  if holder == ARGV[1] then
    held = 1
  end
elseif ARGV[2] then
  return 0 -- a requeue where the round's grant is gone: nothing to give back (its next round joins)
end
out_of_line(true)
if redis.call('EXISTS', KEYS[1]) == 1 then
  hand()
end
return held
