-- inspect: a semaphore's lookup (see the engine's inspect.lua; KEYS as in sem.lua). A holder's ms
-- is what is left of its first slot to end; its fence the highest counter of its slots.
local held_slots = redis.call('ZRANGEBYSCORE', KEYS[4], '(' .. now(), '+inf', 'WITHSCORES')
local order, by = {}, {}
for i = 1, #held_slots, 2 do
  local owner = redis.call('HGET', KEYS[5], held_slots[i])
  if owner and string.sub(owner, 1, 2) ~= 'r:' then
    local h = by[owner]
    if not h then
      h = {n = 0, left = nil, fence = 0}
      by[owner] = h
      order[#order + 1] = owner
    end
    local ms = tonumber(held_slots[i + 1]) - now()
    h.n = h.n + 1
    if h.left == nil or ms < h.left then
      h.left = ms
    end
    h.fence = math.max(h.fence, tonumber(redis.call('HGET', KEYS[7], held_slots[i]) or '0'))
  end
end
for _, token in ipairs(order) do
  local h = by[token]
  held(token, 'permits', h.n, h.left, h.fence)
end
queued(function(demand)
  return 'permits', tonumber(demand) or 1
end)
return records
