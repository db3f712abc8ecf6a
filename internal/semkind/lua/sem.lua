-- sem: the slots kind's state and handoff, prepended (after the engine's queue.lua) to every
-- semaphore script. A semaphore of capacity C has C slots, 0 to C-1; a permit of weight n is n
-- slots, each an exclusive claim of its own.
-- KEYS[1..3]  queue, liveness, channel (see internal/engine/lua/queue.lua); a waiter's demand is its weight
-- KEYS[4]  held: sorted set of slot -> when it expires (server time, ms): held slots, and slots
--          reserved for a waiter (scored by the end of its liveness)
-- KEYS[5]  hash: "<slot>" -> the holder's token, or "r:" and the token of the waiter it is
--          reserved for; "t:<token>" -> the slots a token holds or is reserved, comma-separated;
--          "cap" -> the capacity; "hi" -> the watermark (see pick)
-- KEYS[6]  free: sorted set of the free slots below the watermark, scored by their number
-- KEYS[7]  fencing counters: hash of slot -> its counter (no TTL: they must outlive every holder)
-- ARGV[1]  the caller's token
-- Returns nothing itself; it defines capacity(), slots_of(), set_slots(), free_slot(), purge(),
-- grab(), serve(), hand() and settle(). Every operation costs O(slots it touches), never O(C):
-- free slots below the watermark are listed, those above it are free by construction.

local function capacity()
  local v = redis.call('HGET', KEYS[5], 'cap')
  if v then
    return tonumber(v)
  end
  return nil
end

local function watermark()
  return tonumber(redis.call('HGET', KEYS[5], 'hi') or '0')
end

-- slots_of returns the slots token holds or is reserved, on this node.
local function slots_of(token)
  local out = {}
  local v = redis.call('HGET', KEYS[5], 't:' .. token)
  if v then
    for s in string.gmatch(v, '%d+') do
      out[#out + 1] = tonumber(s)
    end
  end
  return out
end

local function set_slots(token, list)
  if #list == 0 then
    redis.call('HDEL', KEYS[5], 't:' .. token)
  else
    redis.call('HSET', KEYS[5], 't:' .. token, table.concat(list, ','))
  end
end

-- free_slot makes a held or reserved slot free.
local function free_slot(s)
  redis.call('ZREM', KEYS[4], s)
  redis.call('HDEL', KEYS[5], s)
  if s < watermark() then
    redis.call('ZADD', KEYS[6], s, s)
  end
end

-- owner_token returns the token a slot's owner entry names (a holder's, or a reservation's).
local function owner_token(owner)
  if string.sub(owner, 1, 2) == 'r:' then
    return string.sub(owner, 3)
  end
  return owner
end

-- purge frees every slot whose time is up — a holder that stopped renewing (it crashed, or was
-- paused past its TTL), a waiter that never came for its reservation — and takes it off its
-- token's list.
local function purge()
  local gone = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now())
  for _, m in ipairs(gone) do
    local s = tonumber(m)
    local owner = redis.call('HGET', KEYS[5], m)
    free_slot(s)
    if owner then
      local t = owner_token(owner)
      local keep = {}
      for _, x in ipairs(slots_of(t)) do
        if x ~= s then
          keep[#keep + 1] = x
        end
      end
      set_slots(t, keep)
    end
  end
end

-- pick takes the lowest free slot off the free lists and returns it (nil when none is left).
-- Below the watermark the free slots are listed; at and above it every slot is free but those
-- taken by name (out of order), which it steps over.
local function pick(c)
  local f = redis.call('ZRANGE', KEYS[6], 0, 0)
  if #f > 0 then
    redis.call('ZREM', KEYS[6], f[1])
    return tonumber(f[1])
  end
  local hi = watermark()
  while hi < c and redis.call('ZSCORE', KEYS[4], hi) do
    hi = hi + 1
  end
  if hi >= c then
    redis.call('HSET', KEYS[5], 'hi', hi)
    return nil
  end
  redis.call('HSET', KEYS[5], 'hi', hi + 1)
  return hi
end

local function is_free(s, c)
  return s >= 0 and s < c and not redis.call('ZSCORE', KEYS[4], s)
end

-- grab takes n free slots for owner until the server time until_ms, the named ones first (when
-- free), then the lowest free ones, and returns them. The caller checked that n are free.
local function grab(n, c, owner, until_ms, named)
  local got = {}
  for _, s in ipairs(named) do
    if #got == n then
      break
    end
    if is_free(s, c) then
      if s < watermark() then
        redis.call('ZREM', KEYS[6], s)
      end
      redis.call('ZADD', KEYS[4], until_ms, s)
      redis.call('HSET', KEYS[5], s, owner)
      got[#got + 1] = s
    end
  end
  while #got < n do
    local s = pick(c)
    if s == nil then
      break
    end
    redis.call('ZADD', KEYS[4], until_ms, s)
    redis.call('HSET', KEYS[5], s, owner)
    got[#got + 1] = s
  end
  return got
end

-- serve reserves, for one waiter, as many slots as its weight while enough are free, and goes on
-- to the next waiter; it stops at the first that does not fit, so that a large request at the head
-- of the queue is not overtaken by smaller ones behind it.
local function serve(token, alive, demand)
  local n = tonumber(demand)
  local c = capacity()
  if not c or not n then
    return false, false
  end
  if #slots_of(token) > 0 then
    return false, true -- served by an earlier release, not taken yet
  end
  if c - redis.call('ZCARD', KEYS[4]) < n then
    return false, false
  end
  set_slots(token, grab(n, c, 'r:' .. token, alive, {}))
  return true, true
end

-- hand offers the free slots to the waiters, in queue order.
local function hand()
  if redis.call('EXISTS', KEYS[1]) == 1 then
    handover(serve)
  end
end

-- settle ends every script that changes the slots. The three keys always expire together, so the
-- free list and the watermark (in the hash) never part, which would lose the free slots below the
-- watermark: at the last slot's end (held or reserved), or at the queue's when waiters outlive it
-- (a release must still find the capacity to serve them). When neither is left, it deletes them.
-- unqueued says the caller found the queue empty (it need not be asked again).
local function settle(unqueued)
  local ms = 0
  local last = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
  if #last > 0 then
    ms = tonumber(last[2]) - now()
  end
  if not unqueued then
    ms = math.max(ms, redis.call('PTTL', KEYS[1]))
  end
  if ms <= 0 then
    redis.call('DEL', KEYS[4], KEYS[5], KEYS[6])
    return
  end
  for i = 4, 6 do
    redis.call('PEXPIRE', KEYS[i], ms)
  end
end
