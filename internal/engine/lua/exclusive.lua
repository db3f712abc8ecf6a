-- exclusive: the exclusive kind's grant and handoff, prepended (after queue.lua) to its acquire,
-- release and leave.
-- KEYS[1..3]  queue, liveness, channel (see queue.lua)
-- KEYS[4]  lock key: a holder's token ("q:" and the token once a waiter has queued behind it), or
--          "r:" and the token of the waiter it is reserved for
-- KEYS[5]  fencing counter of the name
-- ARGV[1]  the caller's token
-- Returns nothing itself; it defines hold() and hand().

-- hold makes the lock key token's for ms, marked "q:" when waiters are still queued, so that its
-- release knows to hand it over; unmarked, the release is a plain delete that looks at no queue.
local function hold(token, ms)
  local v = token
  if redis.call('EXISTS', KEYS[1]) == 1 then
    v = 'q:' .. token
  end
  redis.call('SET', KEYS[4], v, 'PX', ms)
end

-- serve gives the lock to one waiter, and stops there. A waiter that asked for a direct grant
-- (its demand is "<request number>,<1 if fenced else 0>", N = 1) is made the holder at once, until
-- its liveness ends (its request's execution + TTL, so a crashed waiter holds the name up no
-- longer than a reservation would), and its wake-up says so: "<token>#<request number>", then
-- "#<fencing counter>" when fenced. Another is only reserved the lock ("r:" and its token), for as
-- long as it counts, and takes it with a request of its own.
local function serve(token, alive, demand)
  if demand then
    local seq, fenced = string.match(demand, '^(%d+),([01])$')
    if seq then
      dequeue(token)
      hold(token, math.max(alive - now(), 1))
      local msg = token .. '#' .. seq
      if fenced == '1' then
        msg = msg .. '#' .. redis.call('INCR', KEYS[5])
      end
      return true, false, msg
    end
  end
  redis.call('SET', KEYS[4], 'r:' .. token, 'PX', math.max(alive - now(), 1))
  return true, false
end

-- hand gives the free lock to the first live waiter, or deletes the key when nobody waits.
local function hand()
  if handover(serve) == 0 then
    redis.call('DEL', KEYS[4])
  end
end

-- ours reports whether a lock key's value v is the caller's hold, marked or not.
local function ours(v)
  return v == ARGV[1] or v == 'q:' .. ARGV[1]
end
