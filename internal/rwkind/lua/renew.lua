-- renew: extend what the token holds — the write lock, or its read lock — if, and only if, it
-- still holds it.
-- KEYS[1..7]  see rw.lua (queue.lua and rw.lua are prepended)
-- ARGV[1]  token
-- ARGV[2]  new TTL in milliseconds
-- KEYS[#KEYS]  the name's broken marker (see the engine's renew.lua)
-- Returns 1 when renewed, 0 when the token holds nothing here any more, -1 when an administrator
-- broke its claim.
local ttl = tonumber(ARGV[2])
if redis.call('GET', KEYS[4]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[4], ttl)
end
local score = redis.call('ZSCORE', KEYS[5], ARGV[1])
if score and tonumber(score) > now() then
  -- Out, then in again with the new score, rather than ZADD XX: on a node out of memory
  -- (maxmemory-policy noeviction) Redis refuses a script's first write when it may grow memory,
  -- but not once the script has written (the ZREM), so a reader's renewal goes through. (The
  -- ZREM of the last reader drops the key's TTL with it: expire_set sets it again.)
  redis.call('ZREM', KEYS[5], ARGV[1])
  redis.call('ZADD', KEYS[5], now() + ttl, ARGV[1])
  expire_set(KEYS[5], ttl)
  return 1
end
if redis.call('HGET', KEYS[#KEYS], ARGV[1]) then -- HGET, not HEXISTS: the README's minimal ACL
  return -1
end
return 0
