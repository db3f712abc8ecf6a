-- rw: the reader-writer kind's state and handoff, prepended (after the engine's queue.lua) to
-- every rwmutex script.
-- KEYS[1..3]  queue, liveness, channel (see internal/engine/lua/queue.lua); waiters' demand is "r" or "w"
-- KEYS[4]  writer key: the writer's token, or "r:" and the token of the writer it is reserved for
-- KEYS[5]  readers: sorted set of reader tokens scored by when each expires (server time, ms);
--          a reader the key is reserved for is in it too, scored by the end of its liveness
-- KEYS[6]  waiting writers: sorted set of the tokens of queued writers, scored by arrival (the
--          writer-intent marker: a reader that arrives after a waiting writer queues behind it)
-- KEYS[7]  the writers' fencing counter (no TTL: it must outlive every holder)
-- ARGV[1]  the caller's token
-- Returns nothing itself; it defines readers(), first_writer(), reader_blocked(), serve() and
-- hand().

-- readers drops the readers whose time is up and returns how many are left.
local function readers()
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now())
  return redis.call('ZCARD', KEYS[5])
end

-- first_writer returns the earliest live waiting writer's arrival, dropping dead ones; nil if none.
local function first_writer()
  while true do
    local w = redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')
    if #w == 0 then
      return nil
    end
    local alive = waiter(w[1])
    if alive > now() then
      return tonumber(w[2]), w[1]
    end
    redis.call('ZREM', KEYS[6], w[1])
    dequeue(w[1])
  end
end

-- reader_blocked reports whether a reader that arrived at arrival must wait for a writer: one
-- holds or is reserved the writer key, or one queued before it.
local function reader_blocked(arrival)
  local writers = redis.call('EXISTS', KEYS[4], KEYS[6])
  if writers == 0 then
    return false -- the common case, in one call: no writer holds, none waits
  end
  if writers == 2 or redis.call('EXISTS', KEYS[4]) == 1 then
    return true
  end
  local at, token = first_writer()
  if at == nil then
    return false
  end
  return at < arrival or (at == arrival and token < ARGV[1])
end

-- serve reserves for one waiter what it needs: the writer key for a writer, once no reader is left
-- (and then stops); a place among the readers for a reader, while no writer holds (and goes on to
-- the next, so that every reader at the head of the queue is served at once).
local function serve(token, alive, demand)
  if redis.call('EXISTS', KEYS[4]) == 1 then
    return false, false
  end
  if demand == 'w' then
    if readers() > 0 then
      return false, false
    end
    redis.call('SET', KEYS[4], 'r:' .. token, 'PX', math.max(alive - now(), 1))
    return true, false
  end
  if redis.call('ZSCORE', KEYS[5], token) then
    return false, true -- served by an earlier release, not taken yet
  end
  redis.call('ZADD', KEYS[5], alive, token)
  expire_set(KEYS[5], alive - now())
  return true, true
end

-- hand offers what is free to the waiters, in queue order.
local function hand()
  handover(serve)
end
