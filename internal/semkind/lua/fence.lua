-- fence: the second round of a fenced acquire: raise each slot's fencing counter to the token the
-- acquire settled on for it, where the slot still holds our token.
-- KEYS[1..7]  see sem.lua (queue.lua and sem.lua are prepended)
-- ARGV[1]  token
-- ARGV[2]  "slot:token,slot:token,...": each slot and the highest counter the granting nodes
--          reported for it
-- Returns 1 when every slot is still ours and its counter now at least its token, else 0.
local all = 1
for s, t in string.gmatch(ARGV[2], '(%d+):(%d+)') do
  if redis.call('HGET', KEYS[5], s) == ARGV[1] then
    if tonumber(redis.call('HGET', KEYS[7], s) or '0') < tonumber(t) then
      redis.call('HSET', KEYS[7], s, t)
    end
  else
    all = 0
  end
end
return all
