-- queue: the waiter queue's helpers, prepended to acquire.lua, release.lua and leave.lua.
-- KEYS[2]  waiter queue: sorted set of waiting tokens, scored by arrival time
-- KEYS[3]  waiter liveness: hash of token -> server time (ms) until which the waiter counts
-- ARGV[1]  the caller's token
-- Returns nothing itself; it defines now() (server time in ms, read once and only when needed, so
-- that the uncontended path does not pay for it), head() and dequeue(token).
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
