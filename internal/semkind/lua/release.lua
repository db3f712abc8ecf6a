-- release: give up every slot the token holds or is reserved on this node, take it out of the
-- queue, and hand the free slots to the waiters, in queue order.
-- KEYS[1..7]  see sem.lua (queue.lua and sem.lua are prepended)
-- ARGV[1]  token
-- Returns the slots the token held (not those merely reserved for it); none when it had expired.
-- The fastest path: every slot held or reserved on this node is the token's, and nobody waits.
-- Freeing them one by one would leave nothing, and settle would delete the state: delete it at
-- once. (Anything else, or a doubt, takes the general path below.)
local list = redis.call('HGET', KEYS[5], 't:' .. ARGV[1])
if list and redis.call('EXISTS', KEYS[1]) == 0 then
  -- (A slot listed twice would let the count below match a set holding another token's slot:
  -- no path writes one, but a list that has one takes the general path.)
  local mine, seen, twice = {}, {}, false
  for s in string.gmatch(list, '%d+') do
    twice = twice or seen[s] ~= nil
    seen[s] = true
    mine[#mine + 1] = s
  end
  -- (Counted first, so that one holder among many never reads the whole set, and a holder of
  -- more than 1000 slots takes the general path rather than read them all at once.)
  local taken = {}
  if not twice and #mine > 0 and #mine <= 1000 and redis.call('ZCARD', KEYS[4]) == #mine then
    taken = redis.call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES')
  end
  if #mine > 0 and #taken == 2 * #mine then
    local score = {}
    for i = 1, #taken, 2 do
      score[taken[i]] = tonumber(taken[i + 1])
    end
    local held, all = {}, true
    for _, s in ipairs(mine) do
      -- (One HGET a slot, not an HMGET of them all: the minimal ACL of the README has no HMGET.)
      local owner = score[s] and redis.call('HGET', KEYS[5], s)
      if not score[s] then
        all = false
      elseif owner == ARGV[1] then
        if score[s] > now() then
          held[#held + 1] = tonumber(s)
        end
      elseif owner ~= 'r:' .. ARGV[1] then
        all = false
      end
    end
    if all then
      redis.call('DEL', KEYS[4], KEYS[5], KEYS[6])
      return held
    end
  end
end

-- The token's own slots first, with no purge: one of ours whose time is up was not held any more.
local released = {}
for _, s in ipairs(slots_of(ARGV[1])) do
  local owner = redis.call('HGET', KEYS[5], s)
  if owner == ARGV[1] then
    local until_ms = redis.call('ZSCORE', KEYS[4], s)
    if until_ms and tonumber(until_ms) > now() then
      released[#released + 1] = s
    end
  end
  if owner == ARGV[1] or owner == 'r:' .. ARGV[1] then
    free_slot(s)
  end
end
set_slots(ARGV[1], {})
-- With waiters queued: leave the queue if we were in it, drop the slots whose time is up (the
-- waiters count what is free), and hand the free slots over.
local queued = redis.call('EXISTS', KEYS[1]) == 1
if queued then
  dequeue(ARGV[1])
  purge()
  handover(serve)
end
settle(not queued)
return released
