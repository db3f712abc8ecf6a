-- acquire: take n free slots for a token, all or none, in the order waiters queued.
-- KEYS[1..7]  see sem.lua (acquire_fast.lua, queue.lua and sem.lua are prepended)
-- ARGV[1]  token of this acquisition
-- ARGV[2]  TTL in milliseconds; also how long the queue keeps a waiter that makes no new attempt
-- ARGV[3]  "1" to join the queue if not acquired (a blocking acquire), "0" not to (a try)
-- ARGV[4]  arrival score: the waiter's first attempt, in ms
-- ARGV[5]  the semaphore's capacity, C
-- ARGV[6]  the weight, n (1 <= n <= C)
-- ARGV[7]  the slots to prefer, comma-separated (those most other nodes granted), or ""
-- ARGV[8]  "1" for a fenced acquire: a grant increments each slot's fencing counter
-- ARGV[9]  "1" on the acquire's first attempt: its token holds nothing and is queued nowhere yet
-- Returns {0, slot, slot, ...} when the token now holds n slots for the TTL (also when it already
-- did, or a release had reserved them for it) — fenced, {0, slot, ..., slot, counter, ...,
-- counter}, each slot's counter after the increment; {-2, stored} when the capacity stored for the name
-- differs from ARGV[5]; else {wait}: the longest the caller should wait before trying again, in
-- ms (at least 1), the time until the first slot held or reserved runs out.
local ttl = tonumber(ARGV[2])
local queue = ARGV[3] == '1'
local c = tonumber(ARGV[5])
local n = tonumber(ARGV[6])
local named = {}
for s in string.gmatch(ARGV[7], '%d+') do
  named[#named + 1] = tonumber(s)
end
local until_ms = now() + ttl

-- reply is the grant of got, fenced when asked.
local function reply(got)
  local out = {0}
  for _, s in ipairs(got) do
    out[#out + 1] = s
  end
  if ARGV[8] == '1' then
    for _, s in ipairs(got) do
      out[#out + 1] = redis.call('HINCRBY', KEYS[7], s, 1)
    end
  end
  return out
end

-- (The fastest path, a first attempt on a node with nothing of the name, ran in acquire_fast.lua.)
local stored = capacity()
if stored and stored ~= c then
  return {-2, stored}
end
if not stored then
  redis.call('HSET', KEYS[5], 'cap', c)
end

-- The fast path: the first attempt, with nobody queued. A fresh token holds nothing here and is
-- queued nowhere, so only the count of slots taken matters; the slots whose time is up are
-- dropped only when they are in the way.
-- (A first attempt run twice — a client that resent it after a lost reply — finds its slots listed
-- and takes the general path, which keeps them.)
if ARGV[9] == '1' and #named == 0 and redis.call('EXISTS', KEYS[1]) == 0
    and not redis.call('HGET', KEYS[5], 't:' .. ARGV[1]) then
  local taken = redis.call('ZCARD', KEYS[4])
  if c - taken < n then
    purge()
    taken = redis.call('ZCARD', KEYS[4])
  end
  if c - taken >= n then
    local got = grab(n, c, ARGV[1], until_ms, {})
    set_slots(ARGV[1], got)
    settle(true)
    return reply(got)
  end
end

purge()

local function done(got)
  set_slots(ARGV[1], got)
  dequeue(ARGV[1])
  settle()
  return reply(got)
end

local function wait_hint()
  local w = ttl
  local first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  if #first > 0 then
    w = math.min(w, tonumber(first[2]) - now())
  end
  settle()
  return {math.max(w, 1)}
end

local mine = slots_of(ARGV[1])
if #mine > 0 then
  -- Ours already (a retry after a lost reply), or reserved for us by the release that woke us.
  -- Where a named slot is free, swap it in for one of ours that is not named: the nodes then
  -- converge on the slots most of them granted.
  local want = {}
  for _, s in ipairs(named) do
    want[s] = true
  end
  local have = {}
  for _, s in ipairs(mine) do
    have[s] = true
  end
  for _, s in ipairs(named) do
    if not have[s] and is_free(s, c) then
      for i, x in ipairs(mine) do
        if not want[x] then
          free_slot(x)
          have[x] = nil
          mine[i] = grab(1, c, ARGV[1], until_ms, {s})[1]
          have[s] = true
          break
        end
      end
    end
  end
  for _, s in ipairs(mine) do
    redis.call('ZADD', KEYS[4], until_ms, s)
    redis.call('HSET', KEYS[5], s, ARGV[1])
  end
  return done(mine)
end

-- Waiters are served in queue order: while one queued before us waits, we wait too, even when
-- enough is free for us, so that a large request is not overtaken by a stream of small ones.
local first = head()
if first ~= nil and first ~= ARGV[1] then
  if not queue then
    return wait_hint()
  end
  join(ARGV[4], ttl, n)
  first = head()
  if first ~= ARGV[1] then
    return wait_hint()
  end
end
if c - redis.call('ZCARD', KEYS[4]) >= n then
  return done(grab(n, c, ARGV[1], until_ms, named))
end
if queue then
  join(ARGV[4], ttl, n)
end
return wait_hint()
