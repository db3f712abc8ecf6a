-- renew: extend the lock key's TTL if, and only if, it still holds our token.
-- KEYS[1]  lock key (then the fencing counter, unused here)
-- KEYS[#KEYS]  the name's broken marker: a hash of the tokens an administrator broke (Quorum.Break)
-- ARGV[1]  token
-- ARGV[2]  new TTL in milliseconds
-- Returns 1 when renewed, 0 when the key is gone or holds another token, -1 when an administrator
-- broke the claim.
local v = redis.call('GET', KEYS[1])
-- Ours, marked "q:" once a waiter queued behind us (see exclusive.lua).
if v == ARGV[1] or v == 'q:' .. ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if redis.call('HGET', KEYS[#KEYS], ARGV[1]) then -- HGET, not HEXISTS: the README's minimal ACL
  return -1
end
return 0
