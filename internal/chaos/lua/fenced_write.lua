-- fenced_write: write a fenced resource, refusing a holder whose token is below the highest the
-- resource has seen (a read or a write by a newer holder).
-- KEYS[1]  the resource's value
-- KEYS[2]  the highest fencing token the resource has seen
-- ARGV[1]  the holder's fencing token (an integer below 2^53)
-- ARGV[2]  the new value
-- Returns 1 when written, 0 when refused.
local token = tonumber(ARGV[1])
local highest = tonumber(redis.call('GET', KEYS[2]) or '0')
if token < highest then
  return 0
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SET', KEYS[1], ARGV[2])
return 1
