-- inspect_exclusive: the exclusive kind's lookup (see inspect.lua).
-- KEYS[4]  lock key; KEYS[5]  fencing counter
local v = redis.call('GET', KEYS[4])
if v and string.sub(v, 1, 2) ~= 'r:' then
  if string.sub(v, 1, 2) == 'q:' then -- marked: waiters queued behind the holder
    v = string.sub(v, 3)
  end
  held(v, 'lock', 1, redis.call('PTTL', KEYS[4]), redis.call('GET', KEYS[5]))
end
queued(function()
  return 'lock', 1
end)
return records
