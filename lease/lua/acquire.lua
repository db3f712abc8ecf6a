-- acquire: take the lock key for a token, or report how long the current holder has left.
-- KEYS[1]  lock key
-- ARGV[1]  token of this acquisition
-- ARGV[2]  TTL in milliseconds
-- Returns 0 when the key now holds ARGV[1] with the TTL (also when it already held it: a retry after
-- a timed-out reply), else the holder's remaining TTL in milliseconds (at least 1).
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 0
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 0
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 1 then
  return 1
end
return ttl
