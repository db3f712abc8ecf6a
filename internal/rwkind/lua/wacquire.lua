-- wacquire: take the write lock for a token, once no reader holds and no waiter queued before it.
-- KEYS[1..7]  see rw.lua (queue.lua and rw.lua are prepended)
-- ARGV[1]  token of this acquisition
-- ARGV[2]  TTL in milliseconds; also how long the queue keeps a waiter that makes no new attempt
-- ARGV[3]  "1" to join the queue if not acquired (a blocking acquire), "0" not to (a try)
-- ARGV[4]  arrival score: the waiter's first attempt, in ms
-- ARGV[5]  "1" for a fenced acquire: a grant increments the writers' fencing counter
-- Returns 0 when the writer key now holds ARGV[1] with the TTL (also when it already did, or was
-- reserved for it), or, fenced, {0, the counter after the increment}. Else the longest the caller should wait before trying again, in ms (at least
-- 1): the remaining TTL of the writer, of the readers, or of the waiter first in line; -1 when the
-- writer key has no TTL (not set by this library), and the caller backs off.
local ttl = tonumber(ARGV[2])
local queue = ARGV[3] == '1'

local function take()
  redis.call('SET', KEYS[4], ARGV[1], 'PX', ttl)
  redis.call('ZREM', KEYS[6], ARGV[1])
  dequeue(ARGV[1])
  if ARGV[5] == '1' then
    return {0, redis.call('INCR', KEYS[7])}
  end
  return 0
end

local function wait()
  if queue then
    join(ARGV[4], ttl, 'w')
    redis.call('ZADD', KEYS[6], 'NX', ARGV[4], ARGV[1])
    expire_set(KEYS[6], 2 * ttl) -- never shorter for a writer with a longer TTL
  end
end

local holder = redis.call('GET', KEYS[4])
if holder == ARGV[1] or holder == 'r:' .. ARGV[1] then
  return take()
end
if holder then
  wait()
  local left = redis.call('PTTL', KEYS[4])
  if left == -1 then
    return -1
  end
  return math.max(left, 1)
end
local n = readers()
if n == 0 then
  -- Free: it goes to the waiter first in line (readers queued before us included).
  local first = head()
  if first == nil or first == ARGV[1] then
    return take()
  end
  if queue then
    wait()
    first = head()
    if first == ARGV[1] then
      return take()
    end
  end
  local _, alive = head()
  return math.max(alive - now(), 1)
end
wait()
-- Readers hold: the last of them is gone by the highest score, at the latest.
local last = redis.call('ZRANGE', KEYS[5], -1, -1, 'WITHSCORES')
return math.max(tonumber(last[2]) - now(), 1)
