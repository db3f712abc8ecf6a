-- queue: the engine's helpers for a name's waiter queue, prepended to every script made with
-- lease.NewScript.
-- KEYS[1]  waiter queue: sorted set of waiting tokens, scored by arrival (ms, the same on every node)
-- KEYS[2]  waiter liveness: hash of token -> "<server time in ms until which the waiter counts>",
--          followed by ":<demand>" for kinds whose waiters wait for different things ("w", "3")
-- KEYS[3]  wake-up channel of the name: a release publishes on it followed by the process part of
--          each served waiter's token ("@host:pid"), so that one process's waiters hear it
-- ARGV[1]  the caller's token
-- Returns nothing itself. It defines waiter(), head(), join(), dequeue(), handover() and
-- expire_set(); clock.lua, prepended before it, defines now().

-- expire_set makes a set key (a hash, a sorted set) live at least ms more — a new one has no TTL
-- yet — never shortening it for its other members. It does nothing to a key that does not exist.
local function expire_set(key, ms)
  local left = redis.call('PTTL', key)
  if left == -1 or (left >= 0 and left < ms) then
    redis.call('PEXPIRE', key, ms)
  end
end

-- waiter returns when a queued token's liveness ends (0 if it is not queued) and its demand.
local function waiter(token)
  local v = redis.call('HGET', KEYS[2], token)
  if not v then
    return 0, nil
  end
  local i = string.find(v, ':', 1, true)
  if i then
    return tonumber(string.sub(v, 1, i - 1)), string.sub(v, i + 1)
  end
  return tonumber(v), nil
end

local function dequeue(token)
  redis.call('HDEL', KEYS[2], token)
  return redis.call('ZREM', KEYS[1], token)
end

-- head returns the first waiter still alive, when its liveness ends and its demand, dropping dead
-- ones (waiters that crashed before they left) on the way; nil when nobody waits.
local function head()
  while true do
    local first = redis.call('ZRANGE', KEYS[1], 0, 0)
    if #first == 0 then
      return nil, 0, nil
    end
    local alive, demand = waiter(first[1])
    if alive > now() then
      return first[1], alive, demand
    end
    dequeue(first[1])
  end
end

-- join queues the caller at arrival (or keeps its place) and makes it count for live ms more.
local function join(arrival, live, demand)
  redis.call('ZADD', KEYS[1], 'NX', arrival, ARGV[1])
  local v = tostring(now() + live)
  if demand then
    v = v .. ':' .. demand
  end
  redis.call('HSET', KEYS[2], ARGV[1], v)
  -- Never shorter for the other waiters, who may live longer (another TTL).
  expire_set(KEYS[1], 2 * live)
  expire_set(KEYS[2], 2 * live)
end

-- handover offers what a release or a leave freed to the live waiters, from the head of the queue.
-- serve(token, alive, demand) reserves what that waiter needs, if it can, and returns two booleans:
-- whether it served the waiter, and whether to offer the next one, and, optionally, what to publish
-- for it (default: its token). Dead waiters are dropped on the way. What is published for the
-- waiters served goes out in one message per process, separated by spaces, on that process's
-- channel (see KEYS[3]): only those processes hear it, however many others wait, and only the
-- waiters served wake, the caller never. Returns how many were served.
local function handover(serve)
  local served, n = {}, 0
  local i = 0
  while true do
    local m = redis.call('ZRANGE', KEYS[1], i, i)
    if #m == 0 then
      break
    end
    local alive, demand = waiter(m[1])
    if alive <= now() then
      dequeue(m[1])
    else
      local ok, more, msg = serve(m[1], alive, demand)
      -- (The caller, served by its own requeue (see release.lua), is not woken: it is between two
      -- rounds of its own, and its next one takes what was reserved for it.)
      if ok and m[1] == ARGV[1] then
        n = n + 1
      elseif ok then
        -- The channel of the waiter's process: the name's, then "@host:pid" from its token.
        local ch = KEYS[3] .. (string.match(m[1], '^%x+(@[^:]*:%d+)') or '')
        if not served[ch] then
          served[ch] = {}
        end
        table.insert(served[ch], msg or m[1])
        n = n + 1
      end
      if not more then
        break
      end
      i = i + 1
    end
  end
  for ch, msgs in pairs(served) do
    redis.call('PUBLISH', ch, table.concat(msgs, ' '))
  end
  return n
end
