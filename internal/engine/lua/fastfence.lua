-- fastfence: the fast acquire of a fenced lease: a plain SET NX PX, and on success the fencing
-- counter's increment, in one script.
-- KEYS[1]  lock key
-- KEYS[2]  fencing counter of the name
-- ARGV[1]  token
-- ARGV[2]  TTL in milliseconds
-- Returns {0, the counter after the increment} when the key now holds the token; nil, as a SET NX
-- that did not set, when it was held (or reserved for a waiter): the caller goes on to the queue.
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  return {0, redis.call('INCR', KEYS[2])}
end
return false
