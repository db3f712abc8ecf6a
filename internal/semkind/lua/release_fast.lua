-- release's fastest path, run ahead of the shared code (queue.lua, sem.lua) so that a run that
-- takes it defines none of that code's functions. The arguments are release.lua's.
-- Every slot held or reserved on this node is the token's, and nobody waits: freeing them one by
-- one would leave nothing, and settle would delete the state, so delete it at once. Anything else,
-- or a doubt, falls through to release.lua's general path.
-- (A requeue, ARGV[2] set, always takes the general path.)
local list = not ARGV[2] and redis.call('HGET', KEYS[5], 't:' .. ARGV[1])
if list and redis.call('EXISTS', KEYS[1]) == 0 then
  -- (A slot listed twice would let the count below match a set holding another token's slot:
  -- no path writes one, but a list that has one takes the general path.)
  local mine, seen, twice = {}, {}, false
  for s in string.gmatch(list, '%d+') do
    twice = twice or seen[s] ~= nil
    seen[s] = true
    mine[#mine + 1] = s
  end
  -- (One entry more than ours at most, so that one holder among many never reads the whole set,
  -- and that entry says the set holds another; a holder of more than 1000 slots takes the general
  -- path rather than read them all at once.)
  local taken = {}
  if not twice and #mine > 0 and #mine <= 1000 then
    taken = redis.call('ZRANGE', KEYS[4], 0, #mine, 'WITHSCORES')
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
