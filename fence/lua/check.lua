-- check: the fence every fenced script starts with (prepended to it).
-- KEYS[1]  the resource's fence key: the highest fencing token that has written the resource
-- ARGV[1]  the writer's fencing token
-- Returns nothing itself when the token is at least the highest seen (and records it as the
-- highest); else the script ends at once with the error "STALE <token> < <highest>", having
-- written nothing.
local fence_token = tonumber(ARGV[1])
local fence_seen = tonumber(redis.call('GET', KEYS[1]) or '0')
if fence_token < fence_seen then
  return redis.error_reply('STALE fencing token ' .. ARGV[1] .. ' < ' .. fence_seen)
end
if fence_token > fence_seen then
  redis.call('SET', KEYS[1], ARGV[1])
end
