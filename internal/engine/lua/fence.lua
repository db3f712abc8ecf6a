-- fence: the second round of a fenced acquire: raise the name's fencing counter to the token the
-- acquire settled on, if, and only if, the lock key still holds our token.
-- KEYS[1]  lock key
-- KEYS[2]  fencing counter of the name
-- ARGV[1]  token
-- ARGV[2]  the fencing token: the highest counter the nodes that granted the acquire reported
-- Returns 1 when the counter is now at least ARGV[2], 0 when the key no longer holds the token.
local v = redis.call('GET', KEYS[1])
if v ~= ARGV[1] and v ~= 'q:' .. ARGV[1] then -- ours, marked or not (see exclusive.lua)
  return 0
end
local t = tonumber(ARGV[2])
if tonumber(redis.call('GET', KEYS[2]) or '0') < t then
  redis.call('SET', KEYS[2], ARGV[2])
end
return 1
