-- broken: mark a token as broken by an administrator (Quorum.Break), so that its holder's next
-- renewal says why it lost the claim.
-- KEYS[1]  the name's broken marker: a hash of token -> when it was broken (unix ms)
-- ARGV[1]  the token
-- ARGV[2]  the time, unix ms
-- ARGV[3]  how long the marker must live at least, ms (never shortened for other tokens)
-- The HDEL first: on a node out of memory (maxmemory-policy noeviction) Redis refuses a script's
-- first write when it may grow memory (the HSET), but not once the script has written (the HDEL,
-- which cannot grow it), so that a break, which is most needed then, marks the token as it
-- releases it.
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
