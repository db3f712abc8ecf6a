-- fenced_read: read a fenced resource on behalf of a holder, raising the resource's fence to the
-- holder's token first, so that no holder with a lower token can write after this read.
-- KEYS[1]  the resource's value (an integer; absent reads as 0)
-- KEYS[2]  the highest fencing token the resource has seen
-- ARGV[1]  the holder's fencing token (an integer below 2^53, which Lua numbers hold exactly)
-- Returns {1, value} when the token is at least the highest seen (which it becomes), {0, highest}
-- when it is lower: the holder is stale and must not act.
local token = tonumber(ARGV[1])
local highest = tonumber(redis.call('GET', KEYS[2]) or '0')
if token < highest then
  return {0, highest}
end
redis.call('SET', KEYS[2], ARGV[1])
return {1, tonumber(redis.call('GET', KEYS[1]) or '0')}
