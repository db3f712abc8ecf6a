-- queue: the waiter queue's helpers, prepended to acquire.lua, release.lua and leave.lua.
-- KEYS[1]  lock key (used by handover)
-- KEYS[2]  waiter queue: sorted set of waiting tokens, scored by arrival time
-- KEYS[3]  waiter liveness: hash of token -> server time (ms) until which the waiter counts
-- KEYS[4]  wake-up channel (used by handover; acquire.lua does not pass it and does not call it)
-- ARGV[1]  the caller's token
-- Returns nothing itself; it defines now() (server time in ms, read once and only when needed, so
-- that the uncontended path does not pay for it), head(), dequeue(token) and handover().
local now_ms
local function now()
  if not now_ms then
    local clock = redis.call('TIME')
    now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  end
  return now_ms
end

-- head returns the first waiter still alive and the time its liveness ends, dropping dead ones
-- (waiters that crashed before they left) on the way; nil when nobody waits.
local function head()
  while true do
    local first = redis.call('ZRANGE', KEYS[2], 0, 0)
    if #first == 0 then
      return nil, 0
    end
    local alive = tonumber(redis.call('HGET', KEYS[3], first[1]) or '0')
    if alive > now() then
      return first[1], alive
    end
    redis.call('ZREM', KEYS[2], first[1])
    redis.call('HDEL', KEYS[3], first[1])
  end
end

local function dequeue(token)
  redis.call('HDEL', KEYS[3], token)
  return redis.call('ZREM', KEYS[2], token)
end

-- handover gives the free lock to the first waiter: it reserves the key for that waiter ("r:" and
-- its token, expiring with its liveness) and publishes its token so that it alone wakes. With
-- nobody waiting it deletes the key.
local function handover()
  local first, alive = head()
  if first then
    redis.call('SET', KEYS[1], 'r:' .. first, 'PX', math.max(alive - now(), 1))
    redis.call('PUBLISH', KEYS[4], first)
  else
    redis.call('DEL', KEYS[1])
  end
end
