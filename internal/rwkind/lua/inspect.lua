-- inspect: an rwmutex's lookup (see the engine's inspect.lua; KEYS as in rw.lua).
local w = redis.call('GET', KEYS[4])
if w and string.sub(w, 1, 2) ~= 'r:' then
  held(w, 'write', 1, redis.call('PTTL', KEYS[4]), redis.call('GET', KEYS[7]))
end
local r = redis.call('ZRANGEBYSCORE', KEYS[5], '(' .. now(), '+inf', 'WITHSCORES')
for i = 1, #r, 2 do
  if not is_queued(r[i]) then
    held(r[i], 'read', 1, tonumber(r[i + 1]) - now(), '0')
  end
end
queued(function(demand)
  if demand == 'w' then
    return 'write', 1
  end
  return 'read', 1
end)
return records
