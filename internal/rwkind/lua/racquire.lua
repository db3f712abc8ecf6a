-- racquire: take a read lock for a token, unless a writer holds, is reserved the lock, or queued
-- before this reader.
-- KEYS[1..7]  see rw.lua (racquire_fast.lua, queue.lua and rw.lua are prepended)
-- ARGV[1]  token of this acquisition
-- ARGV[2]  TTL in milliseconds; also how long the queue keeps a waiter that makes no new attempt
-- ARGV[3]  "1" to join the queue if not acquired (a blocking acquire), "0" not to (a try)
-- ARGV[4]  arrival score: the waiter's first attempt, in ms
-- ARGV[5]  "1" for a fenced acquire (unused: readers are not fenced)
-- ARGV[6]  "1" when the caller may be queued (an attempt after its first), "0" when it cannot be
-- Returns 0 when the token now holds a read lock for the TTL (also when it already did, or a
-- release had reserved it one). Else the longest the caller should wait before trying again, in ms
-- (at least 1): the remaining TTL of the writer or of the reservation; -1 when the writer key has
-- no TTL (not set by this library), and the caller backs off.
local ttl = tonumber(ARGV[2])
-- Other readers, live or not, never hold a reader up, so the readers whose time is up are left for
-- those who count them (a writer) and for the releases to drop.
-- Ours already (a retry), or reserved for us by the release that woke us, or free for readers.
if not reader_blocked(tonumber(ARGV[4])) or redis.call('ZSCORE', KEYS[5], ARGV[1]) then
  redis.call('ZADD', KEYS[5], now() + ttl, ARGV[1])
  expire_set(KEYS[5], ttl)
  if ARGV[6] == '1' then
    dequeue(ARGV[1])
  end
  return 0
end
if ARGV[3] == '1' then
  join(ARGV[4], ttl, 'r')
end
local left = redis.call('PTTL', KEYS[4])
if left == -1 then
  return -1
end
if left < 0 then
  -- Free, but a writer queued first: it goes next, and its waiting lasts at most its liveness.
  local _, token = first_writer()
  local alive = 0
  if token then
    alive = waiter(token)
  end
  return math.max(math.min(alive - now(), ttl), 1)
end
return math.max(left, 1)
