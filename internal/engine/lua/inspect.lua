-- inspect: the engine's part of a lookup (Quorum.Inspect), prepended (after queue.lua) to every
-- kind's inspect script. It reads and never writes.
-- A lookup returns records, one per holder and per waiter on this node:
--   {token, role, mode, weight, ms, fence, order}
-- role 'h' for a holder, 'w' for a live waiter (one the node reserved something for included);
-- mode names what it holds or waits for ("lock", "read", "write", "permits"); ms is what is left of
-- the holder's TTL (-1 when its key has none), or of the waiter's liveness; fence is the fencing
-- counter of what the holder holds, as a string ("0" when none); order is the waiter's arrival in
-- ms, as a string ("0" for a holder).
local records = {}

-- held records a holder.
local function held(token, mode, weight, ms, fence)
  records[#records + 1] = {token, 'h', mode, weight, ms, tostring(fence or '0'), '0'}
end

-- queued records the live waiters in queue order; mode_of(demand) returns what one waits for
-- and how much.
local function queued(mode_of)
  local q = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  for i = 1, #q, 2 do
    local alive, demand = waiter(q[i])
    if alive > now() then
      local mode, weight = mode_of(demand)
      records[#records + 1] = {q[i], 'w', mode, weight, alive - now(), '0', q[i + 1]}
    end
  end
end

-- is_queued reports whether token waits (a reservation made for a waiter is not a holder yet).
local function is_queued(token)
  return redis.call('ZSCORE', KEYS[1], token) ~= false
end
