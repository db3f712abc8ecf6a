-- probe: tries every command the library's scripts run, on keys and a channel of the key prefix
-- that no name can use ("{~probe}": a name starting with '~' gets another in front), and lists
-- those the server refused. It leaves nothing behind.
-- KEYS[1] a string, KEYS[2] a sorted set, KEYS[3] a hash, KEYS[4] a counter
-- ARGV[1] a channel
-- Returns the refusals, one "COMMAND: reason" each; empty when every command ran (or was refused
-- only for want of memory).
-- A node out of memory (maxmemory-policy noeviction) refuses the writes that may grow memory with
-- an OOM error: that is no refusal of the user's rights, and heals when memory is freed.
local refused = {}
local function try(...)
  local r = redis.pcall(...)
  if type(r) == 'table' and r.err and string.sub(r.err, 1, 4) ~= 'OOM ' then
    refused[#refused + 1] = string.upper((select(1, ...))) .. ': ' .. r.err
  end
end
try('set', KEYS[1], 'probe', 'px', 10000, 'nx')
try('get', KEYS[1])
try('exists', KEYS[1])
try('pexpire', KEYS[1], 10000)
try('pttl', KEYS[1])
try('zadd', KEYS[2], 1, 'probe')
try('zscore', KEYS[2], 'probe')
try('zrange', KEYS[2], 0, -1)
try('zrangebyscore', KEYS[2], '-inf', '+inf')
try('zcard', KEYS[2])
try('zremrangebyscore', KEYS[2], 2, 3)
try('zrem', KEYS[2], 'probe')
try('hset', KEYS[3], 'probe', 1)
try('hget', KEYS[3], 'probe')
try('hincrby', KEYS[3], 'probe', 1)
try('hdel', KEYS[3], 'probe')
try('incr', KEYS[4])
try('time')
try('publish', ARGV[1], 'probe')
try('del', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return refused
