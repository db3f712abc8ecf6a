-- acquire: take the lock key for a token, in the order waiters queued for it. This is the slow
-- path: an acquire first tries a plain SET NX PX, and comes here when that fails (or at once when
-- it had to wait in its own process).
-- KEYS[1..3]  queue, liveness, channel (see queue.lua, which is prepended, as is exclusive.lua)
-- KEYS[4]  lock key (see exclusive.lua)
-- KEYS[5]  fencing counter of the name (no TTL: it must outlive every holder)
-- ARGV[1]  token of this acquisition
-- ARGV[2]  TTL in milliseconds; also how long the queue keeps a waiter that makes no new attempt
-- ARGV[3]  "1" to join the queue if not acquired (a blocking acquire), "0" not to (a try)
-- ARGV[4]  arrival score: the waiter's first attempt, in ms
-- ARGV[5]  "1" for a fenced acquire: a grant increments the fencing counter
-- ARGV[6]  the number of this request, for a waiter a release may grant the lock to directly
--          (N = 1: see serve in exclusive.lua); "" for one it must only reserve it for
-- Returns 0 when the key now holds ARGV[1] with the TTL (also when it already held it: a retry
-- after a timed-out reply, or a direct grant whose wake-up has not arrived), or, fenced, {0, the
-- counter after the increment}. Else the longest the caller should wait before trying again, in
-- ms (at least 1): the remaining TTL of the holder or of the reservation for the waiter first in
-- line; -1 when the key has no TTL (it was not set by this library): the caller backs off.
local ttl = tonumber(ARGV[2])
local queue = ARGV[3] == '1'
local demand
if ARGV[6] ~= '' then
  demand = ARGV[6] .. ',' .. ARGV[5]
end

local function take(fenced)
  dequeue(ARGV[1])
  hold(ARGV[1], ttl)
  if fenced then
    return {0, redis.call('INCR', KEYS[5])}
  end
  return 0
end

local holder = redis.call('GET', KEYS[4])
-- Reserved for us by the release that woke us.
if holder == 'r:' .. ARGV[1] then
  return take(ARGV[5] == '1')
end
-- Ours already: a retry after a timed-out reply, or a direct grant. The counter was incremented
-- when it was granted; a fenced retry's reply takes the counter as it is.
if ours(holder) then
  take(false)
  if ARGV[5] == '1' then
    return {0, tonumber(redis.call('GET', KEYS[5]) or '0')}
  end
  return 0
end
if holder then
  local left = redis.call('PTTL', KEYS[4])
  if left == -1 then
    return -1
  end
  if queue then
    join(ARGV[4], ttl, demand)
    -- The first waiter marks the holder's value, so that its release hands the lock over; a
    -- holder nobody queued behind releases with a plain delete.
    local tag = string.sub(holder, 1, 2)
    if tag ~= 'q:' and tag ~= 'r:' then
      redis.call('SET', KEYS[4], 'q:' .. holder, 'PX', math.max(left, 1))
    end
  end
  return math.max(left, 1)
end

-- Free with nobody reserved: nobody waited at the last release, or the waiter it was reserved
-- for let the reservation run out. It goes to the waiter first in line.
local first, alive = head()
if first == nil or first == ARGV[1] then
  return take(ARGV[5] == '1')
end
if queue then
  join(ARGV[4], ttl, demand)
  -- Arrival order decides: a waiter that arrived before the one first in line (or in the same
  -- millisecond, with a smaller token) is first now.
  first, alive = head()
  if first == ARGV[1] then
    return take(ARGV[5] == '1')
  end
end
return math.max(alive - now(), 1)
