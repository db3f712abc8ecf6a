-- renew: extend the slots the token still holds among those named, and let go of any other slot
-- it holds or is reserved on this node (a partial release, or what a round granted beyond the
-- slots kept), handing those to the waiters.
-- KEYS[1..7]  see sem.lua (queue.lua and sem.lua are prepended)
-- ARGV[1]  token
-- ARGV[2]  new TTL in milliseconds
-- ARGV[3]  the slots to keep, comma-separated
-- KEYS[#KEYS]  the name's broken marker (see the engine's renew.lua)
-- Returns the slots renewed; {-1} when it renewed none because an administrator broke its claim.
local ttl = tonumber(ARGV[2])
purge()
local keep = {}
for s in string.gmatch(ARGV[3], '%d+') do
  keep[tonumber(s)] = true
end
local kept, freed = {}, false
for _, s in ipairs(slots_of(ARGV[1])) do
  local owner = redis.call('HGET', KEYS[5], s)
  if keep[s] and owner == ARGV[1] then
    -- Out, then in again with the new score, rather than ZADD XX: on a node out of memory
    -- (maxmemory-policy noeviction) Redis refuses a script's first write when it may grow memory,
    -- but not once the script has written (the ZREM), so the renewal goes through. (settle, below,
    -- gives the keys their TTL again.)
    redis.call('ZREM', KEYS[4], s)
    redis.call('ZADD', KEYS[4], now() + ttl, s)
    kept[#kept + 1] = s
  elseif owner == ARGV[1] or owner == 'r:' .. ARGV[1] then
    free_slot(s)
    freed = true
  end
end
set_slots(ARGV[1], kept)
if freed then
  hand()
end
settle()
if #kept == 0 and redis.call('HGET', KEYS[#KEYS], ARGV[1]) then -- HGET: the README's minimal ACL
  return {-1}
end
return kept
