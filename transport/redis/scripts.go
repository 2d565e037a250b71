package redis

import "github.com/redis/go-redis/v9"

// pyJSONString is a Lua function that encodes a string as Python's
// json.dumps does by default (ensure_ascii: non-ASCII as \uXXXX escapes,
// surrogate pairs above U+FFFF), so that unacked records are the bytes
// Python kombu would write. cjson.encode would escape "/" as "\/".
// ownsLua is a Lua function that reports whether the unacked_index score
// cur (a ZSCORE reply) is one of the space-separated scores in want: the
// scores a delivery's receipt has given its index entry (at the take and
// at each lease extension). The score is the delivery's identity (see
// takeScript).
const ownsLua = `
local function owns(cur, want)
  if not cur then return false end
  local c = tonumber(cur)
  if not string.find(want, ' ', 1, true) then
    return tonumber(want) == c
  end
  for w in string.gmatch(want, '[^ ]+') do
    if tonumber(w) == c then return true end
  end
  return false
end
`

const pyJSONString = `
local function jstr(s)
  if not string.find(s, '[%z\1-\31"\\\127-\255]') then
    return '"' .. s .. '"'
  end
  local out = {'"'}
  local i, n = 1, #s
  local esc = {[8] = '\\b', [9] = '\\t', [10] = '\\n', [12] = '\\f', [13] = '\\r', [34] = '\\"', [92] = '\\\\'}
  while i <= n do
    local c = string.byte(s, i)
    local cp, len = nil, 1
    if esc[c] then
      out[#out + 1] = esc[c]
    elseif c < 32 or c == 127 then
      out[#out + 1] = string.format('\\u%04x', c)
    elseif c < 128 then
      out[#out + 1] = string.char(c)
    elseif c >= 240 and i + 3 <= n then
      cp, len = (c % 8) * 262144 + (string.byte(s, i + 1) % 64) * 4096 + (string.byte(s, i + 2) % 64) * 64 + string.byte(s, i + 3) % 64, 4
    elseif c >= 224 and i + 2 <= n then
      cp, len = (c % 16) * 4096 + (string.byte(s, i + 1) % 64) * 64 + string.byte(s, i + 2) % 64, 3
    elseif c >= 192 and i + 1 <= n then
      cp, len = (c % 32) * 64 + string.byte(s, i + 1) % 64, 2
    else
      cp = 65533
    end
    if cp then
      if cp >= 65536 then
        cp = cp - 65536
        out[#out + 1] = string.format('\\u%04x\\u%04x', 55296 + math.floor(cp / 1024), 56320 + cp % 1024)
      else
        out[#out + 1] = string.format('\\u%04x', cp)
      end
    end
    i = i + len
  end
  out[#out + 1] = '"'
  return table.concat(out)
end
`

// anchorMember is a member longer than redis's listpack limits, kept with
// score +inf in unacked_index (and as a field of unacked_queue) once a
// consumer takes batches, so that redis keeps both as a skiplist and a
// hash table: in the compact listpack encoding that redis uses for up to
// 128 small members, every insert and delete scans the whole set, which at
// prefetch 100 was the largest part of the server's time. The +inf score is
// outside every restore sweep's range (Python kombu's too), so nothing
// ever restores or removes it.
const anchorMember = "kombu-go.anchor: keeps this key in the skiplist and hashtable encodings of redis, never restored (score +inf)"

// takeScript is the consumer's only round trip per fetch. In one atomic
// step it
//
//  1. acks the deliveries in ARGV (ZREM unacked_index, HDEL unacked, and
//     HDEL unacked_queue for those that have an entry there), so that acks
//     ride along with the next fetch;
//  2. records in-process fanout deliveries as unacked;
//  3. pops up to max envelopes from the lists in KEYS[4..], which the
//     caller gives in kombu's BRPOP order (priority step, then queue),
//     taking from the right like BRPOP; and
//  4. records each popped envelope as unacked exactly as Python kombu's
//     QoS.append does: HSET unacked <tag> "[<envelope as received>,
//     <exchange>, <routing_key>]" and ZADD unacked_index <now> <tag>, plus
//     HSET unacked_queue <tag> "<queue>" when the record alone does not
//     name the queue: unless the exchange is "" and the routing key is the
//     queue (see the package documentation).
//
// Python kombu pops with BRPOP and records with a second command, so a
// crash in between loses the message; here both happen in one script, so
// no crash can lose it.
//
// The delivery tag, exchange and routing key come from the envelope
// (properties.delivery_tag, properties.delivery_info). An envelope without
// a string tag gets a synthetic one. When the tag is already in unacked
// (kombu gives every copy of a message routed to several queues the same
// tag, and every fanout subscriber receives the same tag), the second copy
// is recorded under "<tag>.<nonce>" instead of overwriting the first, so
// that acking one copy never unprotects the other. A value that is not a
// JSON object is not a kombu message, and its record would break Python
// kombu's restore: it is moved to its queue's poison list instead (LPUSH,
// in the same atomic step, so that nothing can lose it) and returned with
// tag "" and side "P".
//
// The unacked_index score, now, is the delivery's identity: the caller
// makes it unique to the store (strictly increasing microseconds) and
// remembers it, and acks, requeues and lease extensions act only when the
// entry still has a score the caller gave it. It is also the take's
// identity (see loseTake): a take that would record something refuses,
// with an empty reply and before doing anything, a score that an entry
// already has, and the caller takes again with another. One made after the delivery's
// visibility timeout expired, and the message was restored and delivered
// again under the same tag (with a later score), leaves the new delivery
// alone.
//
// KEYS: unacked, unacked_index, unacked_queue, list keys..., then the
// poison list of each list's queue, in the same order.
// ARGV: now, max, nack, nfanout, seed, then nack triples (tag, scores as in
// owns, "1" when the delivery has an unacked_queue entry), then nfanout
// triples (queue, tag, unacked record), then the queue names parallel to
// the list keys.
//
// Reply: {flat (tag, side) pairs of the fanout deliveries, flat array of
// (list key index, envelope, tag, side) for the pops; side is "1" when an
// unacked_queue entry was written, "P" when the value went to the poison
// list (tag "")}.
var takeScript = redis.NewScript(takeSrc)

const takeSrc = takeFastSrc + pyJSONString + ownsLua + `
local now = ARGV[1]
local max = tonumber(ARGV[2])
local nack = tonumber(ARGV[3])
local nfan = tonumber(ARGV[4])
local seed = ARGV[5]
local a = 6
local n = 0
if pre then
  -- The fast path sent the ack already.
  a = a + 3 * nack
  nack = 0
end

-- call runs cmd on key with the arguments in args, at most 500 at a time
-- (unpack's limit is a few thousand).
local function call(cmd, key, args)
  for i = 1, #args, 500 do
    redis.call(cmd, key, unpack(args, i, math.min(i + 499, #args)))
  end
end

-- meta reads properties.delivery_tag and delivery_info's exchange and
-- routing_key. Python kombu and kombu-go write properties last with
-- delivery_tag as its last key and delivery_info shortly before, so the
-- tail of the envelope is enough and the body is not decoded; an envelope
-- laid out otherwise, or whose strings have escapes, is decoded in full.
local function meta(v)
  if not string.find(v, '^%s*{') then return false end
  -- The usual layout, with one search and one anchored match.
  local p = string.find(v, '"delivery_info"', math.max(1, #v - 600), true)
  if p then
    local x, r, t = string.match(v, '^"delivery_info": ?{"exchange": ?"([^"\\]*)", ?"routing_key": ?"([^"\\]*)"[^{}]*}, ?"priority": ?%d+, ?"body_encoding": ?"base64", ?"delivery_tag": ?"([^"\\]*)"}}$', p)
    if t then return true, t, x, r end
  end
  local tag, ex, rk
  local from = math.max(1, #v - 300)
  while true do
    local p = string.find(v, '"delivery_tag"', from, true)
    if not p then break end
    tag = string.match(v, '^"delivery_tag": ?"([^"\\]*)"}}$', p)
    if tag then break end
    from = p + 1
  end
  if tag then
    from = math.max(1, #v - 1024)
    while true do
      local p = string.find(v, '"delivery_info"', from, true)
      if not p then break end
      local x, r = string.match(v, '^"delivery_info": ?{"exchange": ?"([^"\\]*)", ?"routing_key": ?"([^"\\]*)"', p)
      if x then ex, rk = x, r end
      from = p + 1
    end
    if ex then return true, tag, ex, rk end
  end
  local ok, env = pcall(cjson.decode, v)
  if not ok or type(env) ~= 'table' then return false end
  local props = env['properties']
  if type(props) == 'table' then
    tag = props['delivery_tag']
    local di = props['delivery_info']
    if type(di) == 'table' then
      return true, tag, di['exchange'], di['routing_key']
    end
  end
  return true, tag
end

-- Messages of one batch mostly share their exchange and routing key.
local jcache = {}
local function jcached(x)
  local j = jcache[x]
  if not j then
    j = jstr(x)
    jcache[x] = j
  end
  return j
end

-- Records are collected by record and written by flush: one HSETNX for a
-- single delivery, else one HMGET to find the tags already in unacked and
-- one multi-field HSET, instead of an HSETNX per delivery.
local rtags, rrecs, rqueues = {}, {}, {}
local function record(tag, rec, queue)
  n = n + 1
  rtags[n] = tag
  rrecs[n] = rec
  rqueues[n] = queue
  return n
end

local function flush()
  if n == 0 then return end
  if n == 1 then
    if redis.call('HSETNX', KEYS[1], rtags[1], rrecs[1]) == 0 then
      rtags[1] = rtags[1] .. '.' .. seed .. 1
      redis.call('HSET', KEYS[1], rtags[1], rrecs[1])
    end
  else
    local seen = {}
    for i = 1, n, 500 do
      local j = math.min(i + 499, n)
      local cur = redis.call('HMGET', KEYS[1], unpack(rtags, i, j))
      for k = i, j do
        local t = rtags[k]
        if cur[k - i + 1] or seen[t] then
          t = t .. '.' .. seed .. k
          rtags[k] = t
        end
        seen[t] = true
      end
    end
    local hset = {}
    for k = 1, n do
      hset[#hset + 1] = rtags[k]
      hset[#hset + 1] = rrecs[k]
    end
    call('HSET', KEYS[1], hset)
  end
  local zargs, hargs = {}, {}
  for k = 1, n do
    zargs[#zargs + 1] = now
    zargs[#zargs + 1] = rtags[k]
    if rqueues[k] then
      hargs[#hargs + 1] = rtags[k]
      hargs[#hargs + 1] = rqueues[k]
    end
  end
  if n >= 8 then
    -- See anchorMember.
    redis.call('ZADD', KEYS[2], 'NX', '+inf', '` + anchorMember + `')
  end
  if #hargs >= 16 then
    redis.call('HSETNX', KEYS[3], '` + anchorMember + `', '` + anchorMember + `')
  end
  call('ZADD', KEYS[2], zargs)
  if #hargs > 0 then
    call('HSET', KEYS[3], hargs)
  end
end

if nack == 1 then
  local tag = ARGV[a]
  if owns(redis.call('ZSCORE', KEYS[2], tag), ARGV[a + 1]) then
    redis.call('ZREM', KEYS[2], tag)
    redis.call('HDEL', KEYS[1], tag)
    if ARGV[a + 2] == '1' then
      redis.call('HDEL', KEYS[3], tag)
    end
  end
  a = a + 3
elseif nack > 1 then
  local tags = {}
  for i = 0, nack - 1 do
    tags[#tags + 1] = ARGV[a + 3 * i]
  end
  local del, dside = {}, {}
  for i = 1, #tags, 500 do
    local j = math.min(i + 499, #tags)
    local cur = redis.call('ZMSCORE', KEYS[2], unpack(tags, i, j))
    for k = i, j do
      local b = a + 3 * (k - 1)
      if owns(cur[k - i + 1], ARGV[b + 1]) then
        del[#del + 1] = tags[k]
        if ARGV[b + 2] == '1' then
          dside[#dside + 1] = tags[k]
        end
      end
    end
  end
  if #del > 0 then
    call('ZREM', KEYS[2], del)
    call('HDEL', KEYS[1], del)
  end
  if #dside > 0 then
    call('HDEL', KEYS[3], dside)
  end
  a = a + 3 * nack
end

local fan = {}
for i = 1, nfan do
  local queue, tag, rec = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  a = a + 3
  if tag == '' then
    tag = 'kombu-go.' .. seed .. 'f' .. i
  end
  fan[#fan + 1] = record(tag, rec, queue)
  fan[#fan + 1] = ''
end

local out = {}
local got = 0
for k = 4, 3 + nlists do
  if got >= max then break end
  local vals
  if pre then
    if k == pre[1] then vals = {pre[2]} end
  elseif max - got == 1 then
    local v = redis.call('RPOP', KEYS[k])
    if v then vals = {v} end
  else
    vals = redis.call('RPOP', KEYS[k], max - got)
  end
  if vals then
    local queue = ARGV[a + k - 4]
    for _, v in ipairs(vals) do
      got = got + 1
      local ok, tag, ex, rk = meta(v)
      if ok then
        if type(tag) ~= 'string' or tag == '' then
          tag = 'kombu-go.' .. seed .. 'p' .. got
        end
        if type(ex) ~= 'string' then ex = '' end
        if type(rk) ~= 'string' then rk = '' end
        out[#out + 1] = k - 3
        out[#out + 1] = v
        -- The queue is recorded unless the record names it already.
        local q = queue
        if ex == '' and rk == queue then q = nil end
        out[#out + 1] = record(tag, '[' .. v .. ', ' .. jcached(ex) .. ', ' .. jcached(rk) .. ']', q)
        out[#out + 1] = ''
      else
        redis.call('LPUSH', KEYS[k + nlists], v)
        out[#out + 1] = k - 3
        out[#out + 1] = v
        out[#out + 1] = ''
        out[#out + 1] = 'P'
      end
    end
  end
end
flush()
-- Fill in the final tags of the records and whether their queue is recorded.
for i = 1, #fan, 2 do
  local r = fan[i]
  fan[i], fan[i + 1] = rtags[r], '1'
end
for i = 3, #out, 4 do
  local r = out[i]
  if r ~= '' then
    local side = ''
    if rqueues[r] then side = '1' end
    out[i], out[i + 1] = rtags[r], side
  end
end
return {fan, out}
`

// takeFastSrc is the start of takeScript: the usual consumer's fetch (one
// message, at most one ack, no broadcasts) done with straight-line code,
// without the general part's functions and tables, which cost redis more
// than the commands themselves. A popped envelope it cannot record as
// simply (another layout, escapes in the exchange or routing key, no
// delivery tag) is left in pre for the general part, whose pop loop then
// takes it instead of popping.
const takeFastSrc = `
local nlists = (#KEYS - 3) / 2
if (ARGV[2] ~= '0' or ARGV[4] ~= '0') and redis.call('ZCOUNT', KEYS[2], ARGV[1], ARGV[1]) > 0 then
  -- The score is another take's: it would not identify this one.
  return {}
end
local pre
if ARGV[4] == '0' and ARGV[2] == '1' and (ARGV[3] == '0' or (ARGV[3] == '1' and not string.find(ARGV[7], ' ', 1, true))) then
  local b = 6
  if ARGV[3] == '1' then
    local tag = ARGV[6]
    local cur = redis.call('ZSCORE', KEYS[2], tag)
    if cur and tonumber(cur) == tonumber(ARGV[7]) then
      redis.call('ZREM', KEYS[2], tag)
      redis.call('HDEL', KEYS[1], tag)
      if ARGV[8] == '1' then
        redis.call('HDEL', KEYS[3], tag)
      end
    end
    b = 9
  end
  local v, k
  for i = 4, 3 + nlists do
    v = redis.call('RPOP', KEYS[i])
    if v then
      k = i
      break
    end
  end
  if not v then
    return {{}, {}}
  end
  local p = string.find(v, '"delivery_info"', math.max(1, #v - 600), true)
  if p then
    local x, r, t = string.match(v, '^"delivery_info": ?{"exchange": ?"([^"\\]*)", ?"routing_key": ?"([^"\\]*)"[^{}]*}, ?"priority": ?%d+, ?"body_encoding": ?"base64", ?"delivery_tag": ?"([^"\\]*)"}}$', p)
    if t and t ~= '' and not string.find(x, '[%z\1-\31\127-\255]') and not string.find(r, '[%z\1-\31\127-\255]') then
      local q = ARGV[b + k - 4]
      local rec = '[' .. v .. ', "' .. x .. '", "' .. r .. '"]'
      if redis.call('HSETNX', KEYS[1], t, rec) == 0 then
        t = t .. '.' .. ARGV[5] .. 1
        redis.call('HSET', KEYS[1], t, rec)
      end
      redis.call('ZADD', KEYS[2], ARGV[1], t)
      if x == '' and r == q then
        return {{}, {k - 3, v, t, ''}}
      end
      redis.call('HSET', KEYS[3], t, q)
      return {{}, {k - 3, v, t, '1'}}
    end
  end
  pre = {k, v}
end
`

// anyLease is restoreScript's ceil when the lease does not matter (the
// caller owns the delivery). Spelled with ".0" because gopher-lua, the Lua of
// miniredis that the tests use without a redis-server, reads "1e300" as nil.
const anyLease = "1.0e300"

// restoreScript puts one unacked message back, atomically. It checks that
// the entry is still the one the caller means: in mode "cas" that the
// unacked record equals the one the caller read, in mode "own" that the
// unacked_index score is one the caller gave it (see owns); then that its
// lease has expired (score <= ceil); then it ZREMs, HDELs and pushes the
// payload to every list in KEYS[4..] (LPUSH: back of the queue, RPUSH:
// front). This is the compare-and-swap form of kombu's WATCH unacked /
// HGET / MULTI ... EXEC restore transaction: the same effect, but it never
// retries because another consumer touched the hash. An index entry whose
// hash entry is gone is removed, as kombu does.
//
// KEYS: unacked, unacked_index, unacked_queue, target lists...
// ARGV: tag, mode, expected value, ceil, payload, "L" | "R".
// Reply: 1 restored, 0 not (gone, changed or lease extended).
var restoreScript = redis.NewScript(ownsLua + `
local tag = ARGV[1]
local cur = redis.call('HGET', KEYS[1], tag)
if not cur then
  redis.call('ZREM', KEYS[2], tag)
  redis.call('HDEL', KEYS[3], tag)
  return 0
end
if ARGV[2] == 'cas' and cur ~= ARGV[3] then
  return 0
end
if ARGV[2] == 'own' and not owns(redis.call('ZSCORE', KEYS[2], tag), ARGV[3]) then
  return 0
end
local score = redis.call('ZSCORE', KEYS[2], tag)
if score and tonumber(score) > tonumber(ARGV[4]) then
  return 0
end
redis.call('ZREM', KEYS[2], tag)
redis.call('HDEL', KEYS[1], tag)
redis.call('HDEL', KEYS[3], tag)
local push = 'RPUSH'
if ARGV[6] == 'L' then push = 'LPUSH' end
for k = 4, #KEYS do
  redis.call(push, KEYS[k], ARGV[5])
end
return 1
`)

// extendScript moves an unacked delivery's unacked_index score (kombu's
// "delivered at" time) so that its visibility timeout ends later.
// It acts only when the current score is one the caller gave it (owns).
// KEYS: unacked_index. ARGV: tag, scores, new score.
// Reply: 1, or 0 when the delivery is no longer unacked (restored).
var extendScript = redis.NewScript(ownsLua + `
if not owns(redis.call('ZSCORE', KEYS[1], ARGV[1]), ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
return 1
`)

// unlockScript releases the restore mutex only if this process still holds
// it (the compare-and-delete of redis-py's Lock.release).
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)
