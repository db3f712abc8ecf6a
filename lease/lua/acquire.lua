-- acquire: take the lock key for a token, in the order waiters queued for it. This is the slow
-- path: an acquire first tries a plain SET NX PX, and comes here when that fails.
-- KEYS[1]  lock key: a holder's token, or "r:" and the token of the waiter it is reserved for
-- KEYS[2]  waiter queue: sorted set of waiting tokens, scored by arrival time
-- KEYS[3]  waiter liveness: hash of token -> server time (ms) until which the waiter counts
-- (queue.lua is prepended: now(), head(), dequeue(); not handover(), which needs KEYS[4])
-- ARGV[1]  token of this acquisition
-- ARGV[2]  TTL in milliseconds
-- ARGV[3]  "1" to join the queue if not acquired (a blocking acquire), "0" not to (a try)
-- ARGV[4]  arrival score: the waiter's first attempt, in ms (the same on every node, so every
--          node orders the queue alike)
-- ARGV[5]  liveness in ms: how long the queue keeps a waiter that makes no new attempt
-- Returns 0 when the key now holds ARGV[1] with the TTL (also when it already held it: a retry after
-- a timed-out reply). Else the longest the caller should wait before trying again, in ms (at least
-- 1): the remaining TTL of the holder or of the reservation for the waiter first in line.
local function join()
  local live = tonumber(ARGV[5])
  redis.call('ZADD', KEYS[2], 'NX', ARGV[4], ARGV[1])
  redis.call('HSET', KEYS[3], ARGV[1], now() + live)
  redis.call('PEXPIRE', KEYS[2], 2 * live)
  redis.call('PEXPIRE', KEYS[3], 2 * live)
end

local function take()
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  dequeue(ARGV[1])
  return 0
end

local queue = ARGV[3] == '1'
local holder = redis.call('GET', KEYS[1])
-- Ours already (a retry), or reserved for us by the release that woke us.
if holder == ARGV[1] or holder == 'r:' .. ARGV[1] then
  return take()
end
if holder then
  if queue then
    join()
  end
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 1 then
    return 1
  end
  return ttl
end

-- Free with nobody reserved: nobody waited at the last release, or the waiter it was reserved
-- for let the reservation run out. It goes to the waiter first in line.
local first, alive = head()
if first == nil or first == ARGV[1] then
  return take()
end
if queue then
  join()
  -- Arrival order decides: a waiter that arrived before the one first in line (or in the same
  -- millisecond, with a smaller token) is first now.
  first, alive = head()
  if first == ARGV[1] then
    return take()
  end
end
local wait = alive - now()
if wait < 1 then
  return 1
end
return wait
