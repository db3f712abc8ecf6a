-- set: a fenced SET (check.lua is prepended).
-- KEYS[1]  the resource's fence key (see check.lua)
-- KEYS[2]  the key to set
-- ARGV[1]  the writer's fencing token
-- ARGV[2]  the value
-- ARGV[3]  the key's TTL in ms, or 0 for none
-- Returns "OK".
if tonumber(ARGV[3]) > 0 then
  return redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
return redis.call('SET', KEYS[2], ARGV[2])
