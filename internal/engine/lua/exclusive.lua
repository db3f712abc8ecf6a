-- exclusive: the exclusive kind's handoff, prepended (after queue.lua) to its release and leave.
-- KEYS[1..3]  queue, liveness, channel (see queue.lua)
-- KEYS[4]  lock key: a holder's token, or "r:" and the token of the waiter it is reserved for
-- ARGV[1]  the caller's token
-- Returns nothing itself; it defines hand().

-- serve reserves the lock for one waiter, for as long as the waiter counts, and stops there.
local function serve(token, alive)
  redis.call('SET', KEYS[4], 'r:' .. token, 'PX', math.max(alive - now(), 1))
  return true, false
end

-- hand gives the free lock to the first live waiter, or deletes the key when nobody waits.
local function hand()
  if handover(serve) == 0 then
    redis.call('DEL', KEYS[4])
  end
end
