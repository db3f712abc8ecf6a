-- acquire's fastest path, run ahead of the shared code (queue.lua, sem.lua) so that a run that
-- takes it defines none of that code's functions: a first attempt naming no slot, on a node with
-- nothing of the name — no slot held or reserved, no waiter, no state (which settle deletes, all
-- at once, when the last slot goes). Every slot is free: take 0 to n-1 and set the watermark above
-- them, in a few calls. (Up to 1000 slots: its ZADD and HSET take every slot as arguments, and
-- Lua's unpack has a limit.) The arguments are acquire.lua's; anything else falls through to it.
if ARGV[9] == '1' and not string.find(ARGV[7], '%d') and tonumber(ARGV[6]) <= 1000
    and redis.call('EXISTS', KEYS[1], KEYS[4], KEYS[5], KEYS[6]) == 0 then
  local ttl, n = tonumber(ARGV[2]), tonumber(ARGV[6])
  local until_ms = now() + ttl
  local got, scored, owners = {0}, {}, {'cap', ARGV[5], 'hi', n}
  for s = 0, n - 1 do
    got[#got + 1] = s
    scored[#scored + 1] = until_ms
    scored[#scored + 1] = s
    owners[#owners + 1] = s
    owners[#owners + 1] = ARGV[1]
  end
  owners[#owners + 1] = 't:' .. ARGV[1]
  owners[#owners + 1] = table.concat(got, ',', 2)
  redis.call('ZADD', KEYS[4], unpack(scored))
  redis.call('HSET', KEYS[5], unpack(owners))
  -- As settle would: the state lives as long as its last slot.
  redis.call('PEXPIRE', KEYS[4], until_ms - now())
  redis.call('PEXPIRE', KEYS[5], until_ms - now())
  if ARGV[8] == '1' then
    for s = 0, n - 1 do
      got[#got + 1] = redis.call('HINCRBY', KEYS[7], s, 1)
    end
  end
  return got
end
