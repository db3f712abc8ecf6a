-- clock: now(), the server's time in ms, read once and only when needed, so that a path that does
-- not need it does not pay for it. Prepended first to every script that has the queue helpers
-- (queue.lua), and so to the fast paths that run before them.
local now_ms
local function now()
  if not now_ms then
    local clock = redis.call('TIME')
    now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  end
  return now_ms
end
