-- release: delete the lock key if, and only if, it holds our token, and wake the waiters.
-- KEYS[1]  lock key
-- KEYS[2]  wake-up channel of the name (same hash tag as KEYS[1])
-- ARGV[1]  token
-- Returns 1 when the key was ours and is now deleted, 0 when it was gone or held another token
-- (releasing twice, or after expiry, changes nothing).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', KEYS[2], ARGV[1])
  return 1
end
return 0
