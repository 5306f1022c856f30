// The Lua scripts behind the Redis limiter. Each touches only KEYS[1..3] (counter, strikes, ban),
// which share a hash tag (see keys.ts), so a script runs on one Cluster slot.
// ARGV: window ms, max, ban after (0 = no ban), ban ms, strikes memory ms, continueExceeding, exponentialBackoff.
// Reply: { allowed (0|1), current, remaining, resetMs, retryAfterMs, banned (0|1) }.
// Numbers handed to Redis go through ms(): Lua prints doubles as '%.14g', which Redis would refuse.
import { createHash } from 'node:crypto'

const PRELUDE = `
local counter, strikes, ban = KEYS[1], KEYS[2], KEYS[3]
local window = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local banAfter = tonumber(ARGV[3])
local banMs = tonumber(ARGV[4])
local withinMs = tonumber(ARGV[5])

local function ms (x)
  return string.format('%.0f', math.max(1, math.ceil(x)))
end

-- A refused request is a strike; the banAfter-th strike within withinMs starts a ban.
local function refuse (current, resetMs, retryMs)
  if banAfter > 0 then
    local count = redis.call('INCR', strikes)
    if count == 1 then redis.call('PEXPIRE', strikes, ms(withinMs)) end
    if count >= banAfter then
      redis.call('SET', ban, '1', 'PX', ms(banMs))
      redis.call('DEL', strikes)
      return { 0, current, 0, math.max(resetMs, banMs), banMs, 1 }
    end
  end
  return { 0, current, 0, resetMs, math.max(1, retryMs), 0 }
end

if banAfter > 0 then
  local banTtl = redis.call('PTTL', ban)
  if banTtl > 0 then return { 0, max + 1, 0, banTtl, banTtl, 1 } end
end
`

/** @fastify/rate-limit's fixed window, plus bans: INCR, PEXPIRE on the first hit, PTTL otherwise. */
export const FIXED_WINDOW_LUA = PRELUDE + `
local continueExceeding = ARGV[6] == '1'
local backoff = ARGV[7] == '1'
local current = redis.call('INCR', counter)
local ttl
if current == 1 or (continueExceeding and current > max) then
  ttl = window
  redis.call('PEXPIRE', counter, ms(ttl))
elseif backoff and current > max then
  ttl = math.min(window * 2 ^ (current - max - 1), 1e15)
  redis.call('PEXPIRE', counter, ms(ttl))
else
  ttl = redis.call('PTTL', counter)
  -- A counter without expiry (written by hand, or an interrupted write) would limit forever.
  if ttl < 0 then
    ttl = window
    redis.call('PEXPIRE', counter, ms(ttl))
  end
end
if current <= max then return { 1, current, max - current, ttl, 0, 0 } end
return refuse(current, ttl, ttl)
`

/**
 * The lean fixed window, for the common limit (no ban, no backoff, no continueExceeding): only the
 * counter. INCR; PTTL when the window is already open; PEXPIRE when it is new (or the counter has no
 * expiry, which would otherwise limit forever). Same counter and semantics as FIXED_WINDOW_LUA.
 * KEYS: counter. ARGV: window ms, an integer. Reply: { current, ttl ms }; the caller compares with max.
 */
export const PLAIN_FIXED_WINDOW_LUA = `
local n = tonumber(ARGV[2])
local current = redis.call('INCRBY', KEYS[1], n)
if current > n then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl >= 0 then return { current, ttl } end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return { current, tonumber(ARGV[1]) }
`

/**
 * PLAIN_FIXED_WINDOW_LUA for several keys in one call (one event-loop turn's increments of distinct
 * keys, on one server: standalone or Sentinel). Key i gets exactly what its own call would have, in
 * key order; the script is atomic, so the decisions are those of the separate calls in a row.
 * KEYS: counters. ARGV: window ms and n for each key in turn. Reply: { current, ttl ms } per key, flat;
 * { -1, error text } for a key whose INCRBY failed (only its requests fail).
 */
export const PLAIN_FIXED_WINDOW_MANY_LUA = `
local out = {}
for i = 1, #KEYS do
  local window, n = ARGV[2 * i - 1], tonumber(ARGV[2 * i])
  local current = redis.pcall('INCRBY', KEYS[i], n)
  if type(current) == 'table' and current.err then
    -- This key alone fails (a wrong type: something else wrote it); the others are still counted.
    out[2 * i - 1] = -1
    out[2 * i] = current.err
  else
    local ttl = -1
    if current > n then ttl = redis.call('PTTL', KEYS[i]) end
    if ttl < 0 then
      redis.call('PEXPIRE', KEYS[i], window)
      ttl = tonumber(window)
    end
    out[2 * i - 1] = current
    out[2 * i] = ttl
  end
end
return out
`

/**
 * GCRA: the counter holds the theoretical arrival time (TAT, ms on the Redis clock, so every app
 * instance shares one clock). Each request moves it one emission interval (window / max) on from
 * max(TAT, now); a request is allowed while the new TAT is at most one window ahead of now.
 */
export const SLIDING_WINDOW_LUA = `
if redis.replicate_commands then redis.replicate_commands() end
` + PRELUDE + `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
if max <= 0 then return refuse(1, window, window) end
local interval = window / max
-- Float and the microsecond rounding of the stored TAT must not turn the max-th request away.
local epsilon = 0.001
local tat = tonumber(redis.call('GET', counter))
if tat == nil or tat < now then tat = now end
local used = tat + interval - now
if used <= window + epsilon then
  redis.call('SET', counter, string.format('%.3f', tat + interval), 'PX', ms(used))
  local current = math.max(1, math.ceil(used / interval - 1e-6))
  return { 1, current, math.max(0, max - current), math.ceil(used), 0, 0 }
end
return refuse(max + 1, math.ceil(tat - now), math.ceil(used - window - epsilon))
`

export interface LoadedScript {
  lua: string
  sha: string
}

function load (lua: string): LoadedScript {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') }
}

export const FIXED_WINDOW_SCRIPT = load(FIXED_WINDOW_LUA)
export const PLAIN_FIXED_WINDOW_SCRIPT = load(PLAIN_FIXED_WINDOW_LUA)
export const PLAIN_FIXED_WINDOW_MANY_SCRIPT = load(PLAIN_FIXED_WINDOW_MANY_LUA)
export const SLIDING_WINDOW_SCRIPT = load(SLIDING_WINDOW_LUA)

/**
 * Read-only twins of the scripts above, for @fastify/rate-limit's `{ increment: false }` peek: the
 * same keys and ARGV, the same reply, nothing written. `current` is the count so far (not counting a
 * next request), as @fastify/rate-limit's own stores answer `read`.
 */
export const FIXED_WINDOW_READ_LUA = `
local counter, ban = KEYS[1], KEYS[3]
local max = tonumber(ARGV[2])
if tonumber(ARGV[3]) > 0 then
  local banTtl = redis.call('PTTL', ban)
  if banTtl > 0 then return { 0, max + 1, 0, banTtl, banTtl, 1 } end
end
local current = tonumber(redis.call('GET', counter) or '0')
local ttl = redis.call('PTTL', counter)
if ttl < 0 then ttl = 0 end
if current <= max then return { 1, current, max - current, ttl, 0, 0 } end
return { 0, current, 0, ttl, math.max(1, ttl), 0 }
`

export const SLIDING_WINDOW_READ_LUA = `
local counter, ban = KEYS[1], KEYS[3]
local window = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
if tonumber(ARGV[3]) > 0 then
  local banTtl = redis.call('PTTL', ban)
  if banTtl > 0 then return { 0, max + 1, 0, banTtl, banTtl, 1 } end
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local tat = tonumber(redis.call('GET', counter))
if max <= 0 then return { 0, 1, 0, window, window, 0 } end
local interval = window / max
local used = 0
if tat ~= nil and tat > now then used = tat - now end
local current = math.ceil(used / interval - 1e-6)
local wait = used + interval - window - 0.001
if wait <= 0 then return { 1, current, math.max(0, max - current), math.ceil(used), 0, 0 } end
return { 0, current, 0, math.ceil(used), math.ceil(wait), 0 }
`

/**
 * Batched mode's lease: takes up to ARGV[3] requests of the fixed window's quota at once (never past
 * max, so the Redis counter itself never over-admits) and answers what was granted.
 * KEYS: counter. ARGV: window ms, max, lease. Reply: { granted, counted after the grant, window PTTL }.
 */
export const LEASE_LUA = `
local counter = KEYS[1]
local window = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local current = tonumber(redis.call('GET', counter) or '0')
local ttl = redis.call('PTTL', counter)
local take = math.min(lease, max - current)
if take <= 0 then
  if ttl < 0 then ttl = window; redis.call('PEXPIRE', counter, string.format('%.0f', window)) end
  return { 0, current, ttl }
end
current = redis.call('INCRBY', counter, take)
if ttl < 0 then
  ttl = window
  redis.call('PEXPIRE', counter, string.format('%.0f', window))
end
return { take, current, ttl }
`

export const FIXED_WINDOW_READ_SCRIPT = load(FIXED_WINDOW_READ_LUA)
export const SLIDING_WINDOW_READ_SCRIPT = load(SLIDING_WINDOW_READ_LUA)
export const LEASE_SCRIPT = load(LEASE_LUA)

/**
 * Several policies of one request (config.rateLimit as a list), decided atomically: every policy is
 * checked first, then, only when none that enforces refuses, every policy that would allow is charged
 * its cost. A refused request consumes from none. A dry-run policy is checked and reported but never
 * refuses; when it would have refused it is not charged (as enforcing it would not have charged it).
 * KEYS: one counter per policy (fixed: an integer, as FIXED_WINDOW_LUA's; sliding: a GCRA TAT, as
 * SLIDING_WINDOW_LUA's). ARGV, 5 per policy: algorithm ('f' | 'g'), window ms, max, cost, dry run ('1').
 * Reply, 5 per policy: would allow (0|1), count after (or as it would be), remaining, reset ms, retry ms.
 * On Cluster the store calls it with one key at a time (see store.ts).
 */
const POLICIES_DECIDE = `
if redis.replicate_commands then redis.replicate_commands() end
local epsilon = 0.001
local now = nil
-- One request's n policies: keys KEYS[ko + 1 .. ko + n], arguments from ARGV[ao + 1], 5 each; its
-- 5 reply values per policy go to out[oo + 1 ..].
local function decide (ko, ao, n, out, oo)
  local fits, first, ttls = {}, {}, {}
  local refused = false
  for i = 1, n do
    local key, b = KEYS[ko + i], ao + (i - 1) * 5
    local window, max, cost = tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
    local ok
    if ARGV[b + 1] == 'f' then
      local ttl = redis.call('PTTL', key)
      local current = 0
      if ttl ~= -2 then current = tonumber(redis.call('GET', key) or '0') end
      first[i], ttls[i] = current, ttl
      ok = current + cost <= max
    else
      if now == nil then
        local time = redis.call('TIME')
        now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
      end
      local tat = tonumber(redis.call('GET', key))
      if tat == nil or tat < now then tat = now end
      first[i] = tat
      ok = max > 0 and tat + cost * (window / max) - now <= window + epsilon
    end
    fits[i] = ok
    if not ok and ARGV[b + 5] ~= '1' then refused = true end
  end
  for i = 1, n do
    local key, b = KEYS[ko + i], ao + (i - 1) * 5
    local window, max, cost = tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
    local charge = fits[i] and not refused and cost > 0
    local r = oo + (i - 1) * 5
    if ARGV[b + 1] == 'f' then
      local current, ttl = first[i], ttls[i]
      if charge then
        current = redis.call('INCRBY', key, cost)
        if ttl < 0 then
          redis.call('PEXPIRE', key, string.format('%.0f', window))
          ttl = window
        end
      elseif ttl < 0 then
        ttl = window
      end
      local shown = current
      if not fits[i] then shown = current + cost end
      out[r + 1] = fits[i] and 1 or 0
      out[r + 2] = shown
      out[r + 3] = math.max(0, max - shown)
      out[r + 4] = ttl
      out[r + 5] = fits[i] and 0 or math.max(1, ttl)
    else
      local tat = first[i]
      local interval = window
      if max > 0 then interval = window / max end
      if charge then
        tat = tat + cost * interval
        redis.call('SET', key, string.format('%.3f', tat), 'PX', string.format('%.0f', math.max(1, math.ceil(tat - now))))
      end
      local used = tat - now
      local current = math.ceil(used / interval - 1e-6)
      out[r + 1] = fits[i] and 1 or 0
      if fits[i] then
        out[r + 2] = current
        out[r + 3] = math.max(0, max - current)
        out[r + 5] = 0
      else
        out[r + 2] = max + 1
        out[r + 3] = 0
        out[r + 5] = math.max(1, math.ceil(math.min(window, used + cost * interval - window - epsilon)))
      end
      out[r + 4] = math.max(0, math.ceil(used))
    end
  end
end
`

export const POLICIES_LUA = POLICIES_DECIDE + `
local out = {}
decide(0, 0, #KEYS, out, 0)
return out
`

/**
 * The policies of several requests (one event-loop turn's, on one server) in one call, decided one
 * request after another, each exactly as POLICIES_LUA decides it alone: atomic per request, and a
 * later request sees what an earlier one charged. ARGV: the number of requests, then per request its
 * number of policies n and its 5 × n POLICIES_LUA arguments; KEYS: each request's n counters in turn.
 * Reply: each request's 5 × n values in turn. A request whose commands fail (a wrong type: something
 * else wrote a counter) answers -1 and the error in its first two values; the others are decided.
 */
export const POLICIES_MANY_LUA = POLICIES_DECIDE + `
local out = {}
local ko, ao, oo = 0, 1, 0
for _ = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[ao + 1])
  ao = ao + 1
  local ok, err = pcall(decide, ko, ao, n, out, oo)
  if not ok then
    if type(err) == 'table' then err = err.err end
    for r = 1, 5 * n do out[oo + r] = 0 end
    out[oo + 1] = -1
    out[oo + 2] = tostring(err)
  end
  ko, ao, oo = ko + n, ao + 5 * n, oo + 5 * n
end
return out
`

/**
 * reward (n < 0) or penalty (n > 0) for one counter: n requests given back or charged, outside the
 * request path. Fixed: INCRBY n, never below 0, a new counter gets the window. Sliding: the TAT moves
 * n emission intervals (never before now). KEYS: counter. ARGV: algorithm, window ms, max, n.
 * Reply: { count after, ms until whole }.
 */
export const ADJUST_LUA = `
if redis.replicate_commands then redis.replicate_commands() end
local window, max, n = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if ARGV[1] == 'f' then
  local ttl = redis.call('PTTL', KEYS[1])
  local current = tonumber(redis.call('GET', KEYS[1]) or '0')
  local after = math.max(0, current + n)
  if after == 0 then
    redis.call('DEL', KEYS[1])
    return { 0, 0 }
  end
  if ttl < 0 then ttl = window end
  redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX', string.format('%.0f', ttl))
  return { after, ttl }
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local interval = window
if max > 0 then interval = window / max end
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
tat = math.max(now, tat + n * interval)
if tat <= now then
  redis.call('DEL', KEYS[1])
  return { 0, 0 }
end
redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', string.format('%.0f', math.max(1, math.ceil(tat - now))))
return { math.ceil((tat - now) / interval - 1e-6), math.ceil(tat - now) }
`

export const POLICIES_SCRIPT = load(POLICIES_LUA)
export const POLICIES_MANY_SCRIPT = load(POLICIES_MANY_LUA)
export const ADJUST_SCRIPT = load(ADJUST_LUA)
