-- ratekit's one script: every algorithm, every operation, one or several
-- members, decided atomically in one round trip. See doc.go for the key
-- layout and the semantics; this file is the arithmetic.
--
-- KEYS[i]   the state key of member i
-- ARGV[1]   op: 't' take, 'p' peek, 'r' refund; for a concurrency lease
--           also 'x' extend and 's' shrink (give back n of its units);
--           'l' quota lease (one member; see the section "Quota leases")
-- ARGV[2]   n, the units asked for (refund: given back)
-- ARGV[3]   now in Unix microseconds, or '' to read the server's TIME
-- ARGV[4]   slack (µs) added to every TTL
-- ARGV[4+5(i-1)+1 .. +5]  member i: alg, limit, window (µs), p3, p4
--             tb: limit, window, burst          fw: limit, window, offset
--             rw: limit, window                 sl: limit, window
--             sc: limit, window                 cc: limit, lease, -, lease member
--
-- The file defines run(KEYS, ARGV); the Go side appends the call to it.
-- Returns 4 integers per member, then now:
--   allowed (1/0), remaining, resetAfter (µs), retryAfter (µs; -1 is Never)
-- ('l' returns 4 more before now: see lease).
--
-- Numbers. Lua numbers are IEEE doubles: integers are exact below 2^53.
-- Times are microseconds (now is about 1.8e15 < 2^53). Products of a count
-- and a time are not: 10^9 units a day is 8.64e19 unit·µs. They are never
-- formed; muldiv computes their quotient and remainder exactly, and the
-- token bucket keeps fractions of a µs as a separate word (see tb). Every
-- number stored or compared stays below 2^53 (Config.Validate bounds
-- Limit, Window and the bucket's refill time): nothing here rounds. Numbers are written back with
-- string.format('%d'), which prints all their digits (tostring would print
-- 14 significant digits and lose the rest).
--
-- All or none. Each member decides on a cached copy of its key's state and,
-- on a take, updates the copy. Only if every member admits are the copies
-- written back; a denial writes nothing at all.

-- Library functions as locals: a global lookup per call costs more. They
-- are bound by run, since a function library may not touch them at load.
local floor, format, match, insert, call

-- The arguments of the call being run (set by run, read by everything).
-- servertime: now is the server's TIME, not an injected time.
local op, n, now, slack, servertime
local NEVER = -1

-- fdiv is floor division of integers, exact for |a|, b < 2^52: the float
-- quotient may be off by one either way, and the remainder corrects it.
local function fdiv(a, b)
  local q = floor(a / b)
  local r = a - q * b
  if r < 0 then
    q = q - 1
    r = r + b
  elseif r >= b then
    q = q + 1
    r = r - b
  end
  return q, r
end

local function cdiv(a, b)
  local q, r = fdiv(a, b)
  if r > 0 then q = q + 1 end
  return q
end

local function fmt(x) return format('%d', x) end

-- muldiv returns q, r with a·b = q·c + r and 0 <= r < c, exactly, for
-- integers 0 <= a, b < 2^53 and 0 < c < 2^47 whose quotient q is below
-- 2^53, however far a·b itself is beyond 2^53. It reduces b modulo c and
-- multiplies the remainder by a one hex digit of a at a time (long
-- multiplication), so that every partial sum stays below 31c < 2^52.
local function muldiv(a, b, c)
  local bq, br = fdiv(b, c)
  local q, r = 0, 0
  if br > 0 then
    local p = 1
    while p * 16 <= a do p = p * 16 end
    while p >= 1 do
      local d = floor(a / p) % 16
      local dq
      dq, r = fdiv(r * 16 + d * br, c)
      q = q * 16 + dq
      p = p / 16
    end
  end
  return a * bq + q, r
end

-- ttl is the PX for state that matters for us more µs: rounded up to whole
-- milliseconds, at least 1, so a key never expires before its state is
-- back to a fresh one's.
local function ttl(us)
  local m = cdiv(us + slack, 1000)
  if m < 1 then m = 1 end
  return m
end

local function split2(v)
  local a, b = match(v, '^(%-?%d+) (%-?%d+)$')
  return tonumber(a), tonumber(b)
end

-- ---------------------------------------------------------------------
-- Token bucket (GCRA). The theoretical arrival time tat is kept exactly as
-- q + r/L µs (0 <= r < L), since the emission interval T = W/L is rarely a
-- whole number of µs. Every duration the bucket works with is a pair
-- (q, r) meaning q + r/L µs: the debt tat-now (how far the bucket is from
-- full), a request's cost n·T and the capacity B·T are pairs, added,
-- subtracted and compared with a carry, and formed by muldiv. A request of
-- n is admitted if debt + n·T <= B·T. No product such as B·W (8.64e19 for
-- 10^9 a day) is ever formed; the largest number is tat, below 2^53 since
-- the refill time B·T is at most 2^50 µs (validated).
local tb = {}

-- The state is "q r z l w": the tat (q + r/l µs: r is in units of the
-- Limit l it was written under, which tbgrid converts), z, the latest stamp
-- (µs) of any Take admitted so far, which refund reads (see there), and
-- the rate it was written under (Limit, Window µs). A key written before z
-- was kept ("q r") reads z as q: every admitted stamp is before the tat,
-- so that bounds them, and only makes a refund give less. A key written
-- before the rate was kept ("q r z" or "q r") reads as written under
-- another rate: Takes from before its next write get nothing back.
--
-- A sixth word, y, is the latest stamp of an admitted Take as it was: z
-- itself, until a write under a new rate moves z on (see tb.save); a
-- change of rate reads it (see tbcarry). A key written without it reads y
-- as z.
function tb.load(key)
  local v = call('GET', key)
  if not v then return {fresh = true} end
  local q, r, z, l, w, y = match(v, '^(%-?%d+) (%-?%d+) (%-?%d+) (%d+) (%d+) (%-?%d+)$')
  if not q then q, r, z, l, w = match(v, '^(%-?%d+) (%-?%d+) (%-?%d+) (%d+) (%d+)$') end
  if q then
    l = tonumber(l)
    return {q = tonumber(q), r = tonumber(r), z = tonumber(z), l = l, w = tonumber(w), y = tonumber(y or z), rl = l}
  end
  q, r, z = match(v, '^(%-?%d+) (%-?%d+) (%-?%d+)$')
  if not q then
    q, r = split2(v)
    return {q = q, r = r, z = q}
  end
  return {q = tonumber(q), r = tonumber(r), z = tonumber(z)}
end

-- tbrerated reports whether a bucket with state was last written under
-- another rate (Limit or Window) than p's. A Take's n·T was its rate's;
-- a refund at another rate would give back another length of time (after
-- the rate was halved, twice what the Take added to the tat), so none is
-- given (see tb.refund and tb.save).
local function tbrerated(st, p)
  return st.q ~= nil and (st.l ~= p.limit or st.w ~= p.window)
end

-- tbgrid puts the tat's fraction r, kept in units of 1/rl µs (rl: the
-- Limit it was written under), in units of 1/L for p's Limit L, which the
-- pair arithmetic assumes: r·L/rl rounded up, so the tat read is never
-- before the one written (a bucket at most 1/L µs emptier, never fuller),
-- and carried into q at a whole µs. A key written before the rate was kept
-- has no rl: its r, a fraction of a µs in unknown units, is read as it is,
-- or as a whole µs if it is L or more. Only the words in the cached copy
-- change; they are written only with a Take's new tat, in L's units.
local function tbgrid(st, p)
  local L = p.limit
  if not st.q or st.rl == L then return end
  if st.rl then
    if st.r > 0 then
      local g, rem = muldiv(st.r, L, st.rl)
      if rem > 0 then g = g + 1 end
      st.r = g
    end
  elseif st.r > L then
    st.r = L
  end
  if st.r >= L then st.q, st.r = st.q + 1, st.r - L end
  st.rl = L
end

-- stamp raises z to at least t, the stamp of a Take being admitted.
local function tbstamp(st, t)
  if not st.z or st.z < t then st.z = t end
  if not st.y or st.y < t then st.y = t end
end

-- debt returns e, r: tat = at + e + r/L with e, r >= 0 (0, 0 when full).
local function tbdebt(st, at)
  if st.q and (st.q > at or (st.q == at and st.r > 0)) then
    return st.q - at, st.r
  end
  return 0, 0
end

-- Pairs (q, r) are q + r/L µs with 0 <= r < L; q may be negative after a
-- subtraction.
local function padd(aq, ar, bq, br, L)
  local r = ar + br
  if r >= L then return aq + bq + 1, r - L end
  return aq + bq, r
end

local function psub(aq, ar, bq, br, L)
  local r = ar - br
  if r < 0 then return aq - bq - 1, r + L end
  return aq - bq, r
end

local function ple(aq, ar, bq, br) return aq < bq or (aq == bq and ar <= br) end

-- ceiling of a pair, in whole µs.
local function pceil(q, r)
  if r > 0 then return q + 1 end
  return q
end

-- units is how many whole emission intervals T = W/L fit in the pair
-- (q, r) >= 0: floor((q·L + r)/W).
local function tbunits(q, r, p)
  local q1, r1 = muldiv(q, p.limit, p.window)
  return q1 + fdiv(r1 + r, p.window)
end

-- tbcarry reads a bucket last written under another rate (Limit or
-- Window) as p's, once per call: its debt at y, the latest stamp it
-- admitted, counted in the old rate's units and rounded up to whole ones,
-- refills from y at p's rate. It is tokenbucket.Limiter.Reconfigure's
-- carry, with y for the instant of the change, the same at every call
-- until a write keeps it: a bucket of p's rate all along that took the
-- same Takes, all stamped by y, cannot have refilled more of them (a unit
-- partly refilled at the old rate counts whole). A bucket full at y, or of
-- an unknown rate (written before the rate was kept), is read as it is.
-- The state keeps the rate it was written under until the next write (see
-- tb.save).
local function tbcarry(st, p)
  if st.carried or not st.q or not st.l or (st.l == p.limit and st.w == p.window) then return end
  st.carried = true
  local c = st.y
  if st.q < c or (st.q == c and st.r == 0) then return end
  local uq, ur = muldiv(st.q - c, st.l, st.w) -- (q - c)·l = uq·w + ur
  local units = uq + cdiv(ur + st.r, st.w)   -- ceil(debt / (w/l))
  local dq, dr = muldiv(units, p.window, p.limit)
  st.q, st.r, st.rl = c + dq, dr, p.limit
end

-- tbread puts a bucket written under another rate in p's terms, once per
-- call (each step leaves what it did in st): tbcarry carries its debt past
-- y to p's rate, and tbgrid puts the fraction of a bucket it left as it
-- was in p's units.
local function tbread(st, p)
  tbcarry(st, p)
  tbgrid(st, p)
end

function tb.decide(st, p, n, take)
  local L, W, B = p.limit, p.window, p.p3
  tbread(st, p)
  local Cq, Cr = muldiv(B, W, L) -- capacity B·T
  local e, r = tbdebt(st, now)
  local remaining = 0
  if ple(e, r, Cq, Cr) then
    local uq, ur = psub(Cq, Cr, e, r, L)
    remaining = tbunits(uq, ur, p)
  end
  local reset = pceil(e, r)
  if n < 0 or n > B then return 0, remaining, reset, NEVER end
  if n == 0 then return 1, remaining, reset, 0 end
  local nq, nr = muldiv(n, W, L)
  local aq, ar = padd(e, r, nq, nr, L) -- the debt after: debt + n·T
  if ple(aq, ar, Cq, Cr) then
    if take then
      st.q, st.r, st.dirty = now + aq, ar, true
      tbstamp(st, now)
    end
    local uq, ur = psub(Cq, Cr, aq, ar, L)
    return 1, tbunits(uq, ur, p), pceil(aq, ar), 0
  end
  -- Admissible once tat + n·T - now' <= B·T.
  return 0, remaining, reset, pceil(psub(aq, ar, Cq, Cr, L))
end

-- refund at `at` gives back n·T (n capped at Burst) less z - at, the
-- refill time since `at` that Takes stamped up to z may have used (if z is
-- later than at): the tat moves back by that, never to before at, nor
-- forward (a tat at or before at is left alone). It is
-- tokenbucket.Limiter.Refund's rule, whose doc has the proof that a key so
-- refunded never admits more, at any time, than had the refunded Take never
-- happened, whatever the stamps of the Takes in between: without z (the
-- old rule) a Take at t1 refunded after others stamped t1 + Burst·T had
-- taken the whole refilled bucket gave those units back a second time.
--
-- Across a change of rate nothing is given back: a Take stamped before the
-- change was charged at the old rate (see tbrerated). The first write
-- under the new rate (tb.save) moves z to max(z, now) plus the new Burst's
-- refill, so that refunds of those Takes give nothing afterwards too: it
-- is tokenbucket.Limiter.Reconfigure's rule for a rate change, the change
-- being seen at that write. A change of Burst alone changes no n·T and
-- leaves z as it is.
function tb.refund(st, p, n, at)
  local L, W, B = p.limit, p.window, p.p3
  if tbrerated(st, p) then return end
  if n > B then n = B end
  local e, r = tbdebt(st, at)
  if e == 0 and r == 0 then return end
  local gq, gr = muldiv(n, W, L) -- the give: n·T - max(z - at, 0)
  if st.z and st.z > at then gq = gq - (st.z - at) end
  if gq < 0 or (gq == 0 and gr == 0) then return end
  local q2, r2 = psub(e, r, gq, gr, L)
  if q2 < 0 then q2, r2 = 0, 0 end
  st.q, st.r, st.dirty = at + q2, r2, true
end

function tb.save(key, st, p)
  local z = st.z or st.q
  if st.l ~= p.limit or st.w ~= p.window then
    -- The first write under this rate (see tb.refund): no Take admitted
    -- before it gets anything back, as z - at >= B·T >= n·T for them.
    -- (A fresh key's z is its first Take's stamp: no earlier Take exists.)
    if not st.fresh then
      local bq, br = muldiv(p.p3, p.window, p.limit)
      if z < now then z = now end
      z = z + pceil(bq, br)
    end
    st.l, st.w, st.fresh = p.limit, p.window, nil
  end
  st.z = z
  call('SET', key, fmt(st.q) .. ' ' .. fmt(st.r) .. ' ' .. fmt(z) .. ' ' .. fmt(p.limit) .. ' ' .. fmt(p.window) ..
    ' ' .. fmt(st.y or st.q), 'PX', ttl(st.q - now + 1))
end

-- ---------------------------------------------------------------------
-- Windows with a start and a count: fixed (aligned to Unix time + offset)
-- and rolling (opened by the first event). The state is "start count"; the
-- window is open at t while count > 0 and t < start + W.
--
-- Stale times (before the stored window's start) differ, as in the
-- embedded packages. Rolling counts them into the open window. A fixed
-- window denies them: the earlier window's count is gone, so nothing can
-- be admitted in it safely (fixedwindow.Limiter's rule); they may retry
-- when the stored window begins. Either way stale times never admit more,
-- and a Reconfigure to another window length cannot strand a window: it
-- ends at most W after a start that was once a real now.
local win = {}

-- A rolling window's state has a third word, f, for Refund (see there): 0
-- while every unit in it was taken at its start (or before: stale), 1 once
-- a unit was taken after it, 2 once a refund at the start has moved the
-- start. A rolling key written without it reads as 1, which only makes a
-- refund at the start move the start, never give back more.
--
-- The last word of both, m, is the latest stamp of a Take the window
-- counts, which a change of Window or Offset reads (see winmove). A key
-- written without it reads m as its start.
function win.load(key, p)
  local v = call('GET', key)
  if not v then return {c = 0, f = 0} end
  local s, c, f, m
  if p.alg == 'rw' then
    s, c, f, m = match(v, '^(%-?%d+) (%-?%d+) ([012]) (%-?%d+)$')
    if not s then s, c, f = match(v, '^(%-?%d+) (%-?%d+) ([012])$') end
  else
    s, c, m = match(v, '^(%-?%d+) (%-?%d+) (%-?%d+)$')
    f = 0
  end
  if not s then
    s, c = split2(v)
    return {s = s, c = c, f = 1, m = s}
  end
  s = tonumber(s)
  return {s = s, c = tonumber(c), f = tonumber(f), m = tonumber(m) or s}
end

-- winmove places a counted window as p's Window and Offset place it, which
-- may not be those it was written under (a policy changed by a Limiter of
-- the same Algorithm and Name): the units it counts were all taken by m,
-- its latest stamp, and may all be that recent. A fixed window's count
-- moves to p's window that holds m (under the window's own Window and
-- Offset, that is the window itself); a rolling window that p's Window
-- from its start has closed by m starts at m, with every unit at or before
-- its start (f 0). So the key admits no more, at any time, than one of p's
-- policy all along would, given the same Takes (fixedwindow.Limiter and
-- rolling.Limiter.Reconfigure's rule, with m for the instant of the
-- change). It is idempotent, and the state is written only by a Take or a
-- Refund.
local function winmove(st, p)
  if st.c == 0 or not st.m then return end
  if p.alg == 'fw' then
    st.s = fdiv(st.m - p.p3, p.window) * p.window + p.p3
  elseif st.m >= st.s + p.window then
    st.s, st.f = st.m, 0
  end
end

local function winopen(st, W, t) return st.c > 0 and t < st.s + W end

-- start of a new window at now: aligned for fw (p3 is the phase, -Offset
-- mod W), now itself for rw.
local function winstart(p)
  if p.alg == 'fw' then
    local k = fdiv(now - p.p3, p.window)
    return k * p.window + p.p3
  end
  return now
end

function win.decide(st, p, n, take)
  local L, W = p.limit, p.window
  winmove(st, p)
  -- Before a kept start: a fixed window denies it; so does a spent
  -- rolling one (refunded to zero), as the embedded limiter does: the Take
  -- that opened it may have replaced a window that still counts there.
  if st.s and now < st.s and (p.alg == 'fw' or st.c == 0) then
    local until_ = st.s - now
    local reset = until_
    if st.c > 0 then reset = until_ + W end
    if n < 0 or n > L then return 0, 0, reset, NEVER end
    if n == 0 then return 1, 0, reset, 0 end
    if st.c + n > L then return 0, 0, reset, until_ + W end
    return 0, 0, reset, until_
  end
  local s, c, f, m = st.s, st.c, st.f, st.m
  if not winopen(st, W, now) then
    s, c, f, m = winstart(p), 0, 0, now
  end
  if f == 0 and now > s then f = 1 end
  if not m or m < now then m = now end
  local span = s + W - now -- > 0: until the window ends
  local remaining = L - c
  if remaining < 0 then remaining = 0 end
  local reset = 0
  if c > 0 then reset = span end
  if n < 0 or n > L then return 0, remaining, reset, NEVER end
  if n == 0 then return 1, remaining, reset, 0 end
  if c + n <= L then
    if take then st.s, st.c, st.f, st.m, st.dirty = s, c + n, f, m, true end
    return 1, L - c - n, span, 0
  end
  return 0, remaining, span, span
end

-- refund gives back units of the window open at `at`, never below zero. A
-- window whose count returns to zero is closed but keeps its start: a
-- fixed window so that stale times before it are still denied; a rolling
-- one is then spent (rolling's spent word, "start 0 f"). Takes were made
-- before it, stamped before its start, whose windows it replaced, and a
-- refund may yet concern them, and a window they opened may still count
-- before that start: so a Take stamped before the spent start is denied
-- (see win.decide), and opens no window at its own stamp, where a refund
-- of one of those older Takes would give back its units. Window starts
-- never move back.
--
-- A rolling window refunded at its start while units taken after the start
-- remain (f == 1) is rolling.Limiter.Refund's case: the refunded Take may
-- have opened the window those units joined, and without it the window
-- would have opened later, at the latest just before start + W. The start
-- moves to start + W (f = 2: the window closes at start + 2W, as the
-- embedded limiter's, moved to start + W - 1ns, does on the µs grid), so it
-- closes no sooner than it would have. After that a refund at the start is
-- a plain one, as the embedded limiter's start is never on the µs grid.
function win.refund(st, p, n, at, _, plain)
  winmove(st, p)
  if st.c == 0 or at < st.s or not winopen(st, p.window, at) then return end
  local k = math.min(n, st.c)
  if p.alg == 'rw' and not plain and at == st.s and st.f == 1 and k < st.c then
    st.s, st.f = st.s + p.window, 2
  end
  st.c = st.c - k
  st.dirty = true
end

function win.save(key, st, p)
  local v = fmt(st.s) .. ' ' .. fmt(st.c)
  if p.alg == 'rw' then v = v .. ' ' .. fmt(st.f or 1) end
  v = v .. ' ' .. fmt(st.m or st.s)
  call('SET', key, v, 'PX', ttl(st.s + p.window - now))
end

-- ---------------------------------------------------------------------
-- Sliding log (exact). A sorted set of entries, score = time (µs), member
-- "time:units"; units admitted at one instant share one entry. An entry at
-- e counts at t while t - e < W. Three more members keep the work per call
-- independent of Limit:
--   "#N"     (score +inf) is N, the units of the live entries: those after
--            the cut, the log's clock less W, when it was last written;
--   "#A:a:f" (score +inf) is a, the units of the archive, the entries at
--            or before the cut, and f = 1 once units were forgotten (the
--            archive trimmed, or the key written by a script without it).
--            a has a leading 0 when this script knows the totals are cut
--            under the Window "!w" records: it wrote them from a key that
--            had the 0, or a fresh one, or recounted them. The previous
--            script (4933695) reads the 0 as a number does, and writes a
--            without one: it leaves "!w" as it was, whatever Window it
--            cuts the totals under;
--   "f"      (score: an instant) is the log's clock when a Refund has
--            removed the newest entry, until a Take records one at it;
--   "!l"     (score: an instant) is the lost mark: the newest entry the
--            archive trimmed. A time it counts at (now - W < l) admits
--            nothing, as slidingwindow.Log's lost mark: after a Limit was
--            lowered (the archive trimmed to it) and raised again, the
--            units forgotten are not known, so such a time is full. Every
--            entry kept is at or after it (the archive is trimmed oldest
--            first, and a Refund re-files at or after it), so Limit units
--            count wherever it does unless the Limit was lowered: it
--            changes no decision of a key whose Limit never changed. It is
--            at most the clock less W, so only a stale time reads it. A key
--            written before the mark was kept has none, and decides as it
--            did (no mark) until its next trim writes one.
--   "!w:W:m[:l]" (score -inf) is W, the Window (µs) the key was last
--            written under: the cut is the clock less W. A call under
--            another Window recounts N and a from the entries, cut at the
--            clock less its own (slrecount): under a longer one the
--            archived entries after the cut count again, so a change of
--            Window counts every entry the key holds by the new Window. m
--            is the shortest Window the key was written under: the lost
--            mark is at most the clock less m, so a fresh time reads it too
--            under a longer Window. "!l" is kept at most the clock less W,
--            as the previous script (4933695) assumes (it files Refund
--            placeholders at min(clock - W, the oldest entry), never
--            before "!l"); a later mark, which a grown Window leaves, is l.
--            A key written before "!w" was kept reads W as the call's
--            Window, and has no m.
-- So the key holds the entries of at most about max(Limit, the units live
-- at a change of Limit) units, and five more members: "#N", "#A", "f",
-- "!l", "!w".
-- "!l" sorts before every entry of its score (as "f" sorts after), so a
-- reader of the newest members, this script's or an older one's that does
-- not know the mark, never takes it for the newest entry.
-- The live count at a fresh t is N less the units of the live entries that
-- have expired by t, which are read and, on a write, moved to the archive.
-- The log's clock never goes back: units are recorded at the newest
-- instant recorded (t = max(now, newest)). A stale now (before the clock)
-- is judged by itself, as slidingwindow.Log's: every unit with now - W < e
-- counts, those recorded after now included, so that how far other Takes
-- (a refunded one, say) moved the clock cannot make it admit more. So
-- the archive keeps expired entries, oldest trimmed first, while at least
-- Limit newer units are kept (the Log's ring of Limit units): a forgotten
-- unit counts only at stale times where the Limit newer ones count too. A
-- stale now reads the archived entries of its Window. A denial walks the
-- oldest counting entries only as far as the units that must expire; a
-- Refund the entries from its instant on, as far as the units it gives
-- back.
local sl = {}

-- entry parses a member "time:units"; nil for "#N", "#A..." and "f".
local function slentry(m, score)
  local _, units = match(m, '^(%-?%d+):(%d+)$')
  if units then return {t = tonumber(score), u = tonumber(units), m = m} end
end

function sl.load(key)
  local st = {total = 0, arch = 0}
  -- The newest entry and "f" (the clock). "!l" is at most the newest
  -- entry, and before it when they tie, in a key this script wrote; the
  -- previous script (4933695), under a longer Window than a trim's, files
  -- entries before "!l", so three members, as "f" and "!l" may both come
  -- before the newest entry.
  local top = call('ZREVRANGEBYSCORE', key, '(+inf', '-inf', 'WITHSCORES', 'LIMIT', 0, 3)
  for i = 1, #top, 2 do
    local score = tonumber(top[i + 1])
    if not st.clock or score > st.clock then st.clock = score end
    if not st.last then st.last = slentry(top[i], score) end
    if top[i] == 'f' then st.f = true end
  end
  st.clock0, st.newest = st.clock, st.last
  local tot = call('ZRANGEBYSCORE', key, '+inf', '+inf')
  for _, m in ipairs(tot) do
    -- The previous script (4933695) may write a total below 0 (after a
    -- Refund under a shorter Window than the totals were cut under, it
    -- trims from the archive units the live total counts): read as 0.
    local a, f = match(m, '^#A:(%-?%d+):([01])$')
    if a then
      st.archm, st.arch, st.forgot = m, math.max(tonumber(a), 0), f == '1'
      st.cut = #a > 1 and string.sub(a, 1, 1) == '0'
    else
      st.totalm, st.total = m, tonumber(string.sub(m, 2))
    end
  end
  -- A key written without the archive dropped its expired entries.
  if st.clock and not st.archm then st.forgot = true end
  -- The Window the archive was cut under, the shortest this script
  -- wrote the key under, and the lost mark if after "!l" ("!w:W:m[:l]",
  -- score -inf).
  if st.archm then
    for _, m in ipairs(call('ZRANGEBYSCORE', key, '-inf', '-inf')) do
      local w, mw, l = match(m, '^!w:(%d+):(%d+)$')
      if not w then w, mw, l = match(m, '^!w:(%d+):(%d+):(%-?%d+)$') end
      if w then st.wm, st.w, st.minw, st.wl = m, tonumber(w), tonumber(mw), tonumber(l) end
    end
  end
  return st
end

-- lost returns the lost mark, nil if none: "!l", or the one "!w" keeps if
-- later (see sl.save); read once per script, by a stale time, or a fresh
-- one under a longer Window than the shortest the key was written under.
local function sllost(key, st)
  if st.lost == nil then
    st.l0 = tonumber(call('ZSCORE', key, '!l'))
    st.lost = st.l0 or false
    if st.wl and (not st.l0 or st.wl > st.l0) then st.lost = st.wl end
  end
  return st.lost or nil
end

local function slclock(st, at)
  if st.clock and st.clock > at then return st.clock end
  return at
end

-- cut is the cut under the call's Window W at the loaded clock: after
-- slcount, the entries at or before it are the archive (at a stale now,
-- the clock is the loaded one).
local function slcut(st, W)
  if st.clock0 then return st.clock0 - W end
end

-- units sums the units of the entries with scores in (lo, hi].
local function slunits(key, lo, hi)
  local k = 0
  local es = call('ZRANGEBYSCORE', key, lo, format('%d', hi), 'WITHSCORES')
  for i = 1, #es, 2 do
    local e = slentry(es[i], es[i + 1])
    if e then k = k + e.u end
  end
  return k
end

-- recount sets N and the archive's units from the entries, cut at the
-- loaded clock less W, for a key read under another Window than the one
-- it was written under: under a longer Window the cut moves back and the
-- archived entries after it count again, so that units the key still
-- holds are never counted by neither N nor the archive. The totals are
-- recounted, not moved by the entries between the two cuts, because the
-- previous script (4933695) leaves "!w" as it was when it writes the key
-- under another Window: its totals may be cut under either. Work: every
-- entry, once per change of Window. A key whose totals this script cut
-- under "!w"'s Window (st.cut) moves them instead (slcount).
local function slrecount(key, st, W)
  local c0, live, arch = st.clock0 - W, 0, 0
  local es = call('ZRANGEBYSCORE', key, '-inf', '(+inf', 'WITHSCORES')
  for i = 1, #es, 2 do
    local e = slentry(es[i], es[i + 1])
    if e then
      if e.t > c0 then live = live + e.u else arch = arch + e.u end
    end
  end
  st.total, st.arch, st.recounted = live, arch, true
end

-- count returns the live units at t >= the clock (once per script): N
-- less the units of the live entries that have expired by t. The archive
-- was cut at c0, the loaded clock less the Window it was written under
-- (st.w; the call's if the key kept none). Under another, the totals move
-- by the entries between the two cuts if this script cut them under st.w
-- (st.cut): under a longer Window the cut moves back, the archived
-- entries after t - W count again and return to N (dead < 0); else the
-- key is recounted first (slrecount).
local function slcount(key, st, W, t)
  if st.count then return st.count end
  local c0 = slcut(st, W)
  if st.clock0 and st.w and st.w ~= W then
    if st.cut then
      c0 = slcut(st, st.w)
    elseif not st.recounted then
      slrecount(key, st, W)
    end
  end
  local dead = 0
  if not c0 then
    dead = slunits(key, '-inf', t - W)
  elseif t - W > c0 then
    dead = slunits(key, '(' .. format('%d', c0), t - W)
  elseif t - W < c0 and st.arch > 0 then
    dead = -slunits(key, '(' .. format('%d', t - W), c0)
  end
  st.count, st.dead = st.total - dead, dead
  if st.last and st.last.t <= t - W then st.last = nil end
  return st.count
end

-- archived returns the archive's units that count at a stale x: those
-- after x - W (every live one counts at x).
local function slarchived(key, st, W, x)
  local c0 = slcut(st, W)
  if st.arch + (st.dead or 0) <= 0 or x - W >= c0 then return 0 end
  return slunits(key, '(' .. format('%d', x - W), c0)
end

-- walk calls f on the entries from `from` (inclusive) on, oldest first,
-- until f returns true. units is how many units f wants: as every entry
-- holds at least one, it reads that many entries at most (and "f"), in
-- batches of up to 128.
local function slwalk(key, from, units, f)
  local off, batch = 0, math.min(math.max(units, 1) + 1, 128)
  while true do
    local es = call('ZRANGEBYSCORE', key, format('%d', from), '(+inf', 'WITHSCORES', 'LIMIT', off, batch)
    for i = 1, #es, 2 do
      local e = slentry(es[i], es[i + 1])
      if e and f(e) then return end
    end
    if #es < 2 * batch then return end
    off = off + batch
  end
end

function sl.decide(st, p, n, take, key)
  local L, W = p.limit, p.window
  local t = slclock(st, now)
  local c = slcount(key, st, W, t)
  -- lost: the lost mark counts at now.
  local lost
  if st.clock0 and now < st.clock0 then
    c = c + slarchived(key, st, W, now)
  end
  -- The mark is at most the clock less the Window it was trimmed under,
  -- so at most the clock less the shortest Window the key was written
  -- under: a fresh now reads it too under a longer Window than that.
  if st.clock0 and (now < st.clock0 or (st.minw and st.minw < W)) then
    lost = sllost(key, st)
    if lost and now - W >= lost then lost = nil end
  end
  local remaining = L - c
  if remaining < 0 then remaining = 0 end
  local reset = 0
  -- (No live entry with units counted: totals the previous script left
  -- wrong, or a key it wrote without "!w" read under a shorter Window;
  -- they expire by the clock.)
  if c > 0 then reset = math.max((st.last or st.newest or {t = st.clock or now}).t + W - now, 0) end
  -- A unit forgotten at the mark counts at now, where the log does not
  -- know how many it forgot: now admits nothing until the mark expires.
  local real = c
  if lost then
    if c < L then c = L end
    remaining = 0
    if lost + W - now > reset then reset = lost + W - now end
  end
  if n < 0 or n > L then return 0, remaining, reset, NEVER end
  if n == 0 then return 1, remaining, reset, 0 end
  if c + n <= L then
    if take then
      if st.last and st.last.t == t then
        st.last.u = st.last.u + n
      else
        st.last = {t = t, u = n}
      end
      st.newest = st.last
      st.clock, st.count, st.dirty, st.took = t, st.count + n, true, true
    end
    return 1, L - c - n, t + W - now, 0
  end
  -- Wait until the oldest c+n-L units counting at now have expired.
  local need, retry = real + n - L, NEVER
  if need <= 0 then
    retry = 0
  else
    slwalk(key, now - W + 1, need, function(e)
      need = need - e.u
      if need <= 0 then retry = e.t + W - now return true end
    end)
  end
  if lost and retry ~= NEVER and lost + W - now > retry then retry = lost + W - now end
  if need > 0 and st.took then
    -- The key was taken from earlier in this script (named twice in one
    -- TakeAll): that entry, at t, is not in Redis yet.
    retry = t + W - now
  end
  return 0, remaining, reset, retry
end

-- refund removes the n oldest live units recorded at or after `at`. A
-- Take at `at` recorded its units at at, or later if at was stale, so the
-- units removed are never newer than its own; older ones expire sooner, so
-- a Refund never mints capacity. If at is no longer live, the Take's units
-- have expired and nothing is given back. A refund at the server's time
-- does not know when its Take was: it gives back the oldest live units,
-- which is never more capacity than the Take's own would give, and may be
-- less.
--
-- Once the log has forgotten units, they stand behind the Limit newer ones
-- kept; removing units would let a stale time count fewer than Limit where
-- the forgotten ones count. So, as slidingwindow.Log leaves placeholders,
-- the units removed are archived again at min(clock - W, the oldest entry):
-- they never count at the clock or later, and count at a stale time
-- whenever the forgotten ones could. (Or at the lost mark, if later, which
-- a longer Window than an earlier trim's allows: the mark already counts
-- wherever they would, so every entry stays at or after it.)
function sl.refund(st, p, n, at, key)
  local W = p.window
  local t = slclock(st, at)
  if servertime then at = t - W + 1 end
  if at <= t - W then return end
  local c = slcount(key, st, W, t)
  local n0 = n
  st.changed = {}
  slwalk(key, at, n, function(e)
    local k = math.min(n, e.u)
    e.u, n, c = e.u - k, n - k, c - k
    insert(st.changed, e)
    return n == 0
  end)
  if #st.changed == 0 then return end
  st.count, st.clock, st.dirty = c, t, true
  if st.forgot and n0 > n then
    -- Under a longer Window than the archive was trimmed under, t - W may
    -- be before the lost mark: the units go to the mark, so that every
    -- entry stays at or after it (the mark counts wherever they would).
    local ph = {t = t - W, u = n0 - n}
    if st.minw and st.minw < W then
      local l = sllost(key, st)
      if l and l > ph.t then ph.t = l end
    end
    -- The oldest entry: among the first four members ("!w", "!l" and
    -- "f" may come before it).
    local first = call('ZRANGEBYSCORE', key, '-inf', '(+inf', 'WITHSCORES', 'LIMIT', 0, 4)
    for i = 1, #first, 2 do
      local e = slentry(first[i], first[i + 1])
      if e then
        if e.t <= ph.t then
          -- At the mark, the oldest entry may be one this refund changed:
          -- its units left join ph, which save writes in its place.
          for _, c in ipairs(st.changed) do
            if c.m == e.m then e.u, c.u = c.u, 0 end
          end
          ph.t, ph.m, ph.u = e.t, e.m, ph.u + e.u
        end
        break
      end
    end
    -- At the mark, after t - W, the units are live.
    st.ph = ph
    if ph.t > t - W then st.count = st.count + n0 - n else st.arch = st.arch + n0 - n end
  end
end

-- save writes the entries changed, N, the archive's units (trimmed, oldest
-- first, while Limit newer units are kept) and the clock, and the TTL:
-- until the newest entry expires, or the clock if a refund removed every
-- entry. Stale times after the key expires find a fresh log.
function sl.save(key, st, p)
  local W = p.window
  if st.took then
    local e = st.last
    if e.m then call('ZREM', key, e.m) end
    call('ZADD', key, e.t, format('%d', e.t) .. ':' .. format('%d', e.u))
    -- The entry is at the clock, so "f" is redundant: removed if read, as
    -- the previous script (4933695) finds the oldest entry among the
    -- first three members, and "!w", "!l" and a stale "f" would hide it
    -- (its Refund would file a placeholder apart from it, or over it).
    -- Read unless the previous script has recorded three newer entries.
    if st.f then call('ZREM', key, 'f') end
  else
    for _, e in ipairs(st.changed) do
      call('ZREM', key, e.m)
      if e.u > 0 then call('ZADD', key, e.t, format('%d', e.t) .. ':' .. format('%d', e.u)) end
    end
    local ph = st.ph
    if ph then
      if ph.m then call('ZREM', key, ph.m) end
      call('ZADD', key, ph.t, format('%d', ph.t) .. ':' .. format('%d', ph.u))
    end
    call('ZADD', key, st.clock, 'f')
  end
  local arch, forgot = st.arch + (st.dead or 0), st.forgot
  local spare = st.count + arch - p.limit -- units the archive may drop
  while arch > 0 and spare > 0 do
    -- Entries hold a unit at least: spare + 1 of them decide (and "!w",
    -- "f", "!l").
    local batch = math.min(spare + 4, 128)
    local es = call('ZRANGEBYSCORE', key, '-inf', format('%d', st.clock - W), 'WITHSCORES', 'LIMIT', 0, batch)
    local removed, stop = false, false
    for i = 1, #es, 2 do
      local e = slentry(es[i], es[i + 1])
      if e then
        if e.u > spare then stop = true break end
        call('ZREM', key, e.m)
        spare, arch, forgot, removed = spare - e.u, arch - e.u, true, true
        -- The newest entry trimmed is the lost mark: entries go oldest
        -- first, and every entry is at or after the mark stored.
        st.lost, st.lostw = e.t, true
      end
    end
    if stop or not removed or #es < 2 * batch then break end
  end
  -- The previous script (4933695) takes "!l" for at most its clock less
  -- the Window, as it is when the Window never grew: it files a Refund's
  -- placeholder at min(clock - W, the oldest entry), which must not be
  -- before "!l" (with "f" and "!l" above every entry, it fails). So "!l"
  -- is at most the clock less W, and a later mark, which a longer Window
  -- than a trim's leaves, is kept in "!w" (wl) for this script.
  local wl = st.wl
  if st.lost then
    local l = st.lost
    wl = nil
    if l > st.clock - W then l, wl = st.clock - W, st.lost end
    if st.lostw or l ~= st.l0 then call('ZADD', key, format('%d', l), '!l') end
  end
  if st.totalm then call('ZREM', key, st.totalm) end
  if st.count > 0 then
    call('ZADD', key, '+inf', '#' .. format('%d', st.count))
  end
  if st.archm then call('ZREM', key, st.archm) end
  local f = 0
  if forgot then f = 1 end
  -- Never below 0: "#A:a:f" matches only digits, in both scripts, and
  -- a key whose totals the previous script left wrong must stay readable.
  -- The leading 0: the totals are cut under the W "!w" records from here.
  local cut = ''
  if st.cut or st.recounted or not st.clock0 then cut = '0' end
  call('ZADD', key, '+inf', '#A:' .. cut .. format('%d', math.max(arch, 0)) .. ':' .. format('%d', f))
  local minw = math.min(st.minw or W, W)
  if st.w ~= W or st.minw ~= minw or st.wl ~= wl then
    if st.wm then call('ZREM', key, st.wm) end
    local m = '!w:' .. format('%d', W) .. ':' .. format('%d', minw)
    if wl then m = m .. ':' .. format('%d', wl) end
    call('ZADD', key, '-inf', m)
  end
  call('PEXPIRE', key, ttl(st.clock + W - now))
end

-- ---------------------------------------------------------------------
-- Sliding counter. Two fixed windows aligned to Unix time: the count of the
-- current one (cur) and of the one before (prev). At el µs into the
-- current window the estimate is prev·(W-el)/W + cur; a request of n is
-- admitted if prev·(W-el) + (cur+n)·W <= L·W, exactly. Divided by W, as
-- L - cur - n is a whole number, that is used + cur + n <= L, where used =
-- ceil(prev·(W-el)/W) = prev - floor(prev·el/W) is prev's weighted share,
-- computed by muldiv: no product of a count and a time is formed, so any
-- Limit and Window work. State "start cur prev" in one string.
local sc = {}

-- The state is "s c pr m w": the stored window's start, its count, the
-- previous window's count, m, the most a window before them may hold,
-- which stale times read (see scstale): the largest Limit a Take on the key
-- was admitted under, raised at each change of Window from w to W to
-- ceil(W/w) times it or the count carried if more (sccarry), and w, the
-- Window (µs) it was written under. A key written before m was kept
-- ("s c pr") reads m as the call's Limit, as it decided; one written before
-- w was kept reads w as the call's Window.
function sc.load(key)
  local v = call('GET', key)
  if not v then return {} end
  local s, c, pr, m, w = match(v, '^(%-?%d+) (%d+) (%d+) (%d+) (%d+)$')
  if not s then s, c, pr, m = match(v, '^(%-?%d+) (%d+) (%d+) (%d+)$') end
  if not s then s, c, pr = match(v, '^(%-?%d+) (%d+) (%d+)$') end
  return {s = tonumber(s), c = tonumber(c), pr = tonumber(pr), m = tonumber(m), w = tonumber(w)}
end

-- SCMOST is the most scmost counts a forgotten window as holding: 2^47 - 1,
-- so that it stays a divisor muldiv takes (scstale), in this script and in
-- the older one that reads m the same way. Above it, a stale time in the
-- forgotten window would admit nothing anyway but in its last 2^-16 (the
-- Limit is below 2^31); slidingwindow.Counter caps it at its count field.
local SCMOST = 140737488355327

-- sccarry reads a key written under another Window as p's:
-- slidingwindow.Counter.Reconfigure's rule. The old windows do not map
-- onto the new ones, so the units of both are counted in the new window
-- that holds the last instant of the old current one, where they count at
-- least as long as they did; earlier times are then stale (see scstale).
-- m, what a window the key forgets may hold, becomes the larger of
-- m·ceil(W/w), as a new window meets up to ceil(W/w) old ones that each
-- held at most m (Counter's forgotFrom), and the carried count, which a
-- shorter Window puts in one window: a window forgotten once a Take moves
-- the key ahead is counted as what it may hold, so refunding that Take
-- leaves no stale time admitting more than had it never happened.
local function sccarry(st, p)
  if not st.s or not st.w or st.w == p.window then return end
  local W = p.window
  if st.m then
    local m = st.m * cdiv(W, st.w)
    if m < st.c + st.pr then m = st.c + st.pr end
    if m > SCMOST then m = SCMOST end
    st.m = m
  end
  st.s, st.c, st.pr, st.w = fdiv(st.s + st.w - 1, W) * W, st.c + st.pr, 0, W
end

-- scmost is the most units the window before the stored ones may hold:
-- m (see sc.load and sccarry), or the call's Limit if larger.
local function scmost(st, L)
  if st.m and st.m > L then return st.m end
  return L
end

-- view returns the current window's start, el, cur and prev at now. A now
-- before the stored window (stale) is taken as that window's start (only
-- leasefree's callers see one; decide judges it by scstale).
local function scview(st, W)
  local t = now
  if st.s and st.s > t then t = st.s end
  local s = fdiv(t, W) * W
  local c, pr = 0, 0
  if st.s then
    if st.s > s - W then
      c, pr = st.c, st.pr
    elseif st.s > s - 2 * W then
      pr = st.c
    end
  end
  return s, t - s, c, pr
end

-- scused is ceil(pr·(W-el)/W), the previous window's weighted count.
local function scused(pr, el, W)
  if pr == 0 or el == 0 then return pr end
  local q = muldiv(pr, el, W)
  return pr - q
end

-- stale decides a now before the stored window (start s), as
-- slidingwindow.Counter's decideStale: a stale time is judged by its own
-- window, not by how far other Takes (a refunded one, say) moved the key
-- ahead. In the window before s, the units of both stored windows count in
-- full (those of s's window were admitted after now) and the window before
-- them, which the key no longer knows, counts as full, F units weighted
-- as a previous window is: cur + prev + ceil(F·(W-e)/W), e being now's
-- offset into its window. Earlier still it is judged at that window's
-- start, where the estimate is cur + prev + F: every n > 0 is denied.
-- An admitted stale Take is counted in s's window. F is the Limit, or m
-- if that is more (scmost), as slidingwindow.Counter's forgot: after a
-- Limit was lowered or the Window lengthened, the window forgotten may
-- hold more than the Limit now (the key moved past it by a Take since
-- refunded, a twin that never saw that Take still counts it).
local function scstale(st, p, n, take)
  local L, W = p.limit, p.window
  local s, c, pr = st.s, st.c, st.pr
  local C = c + pr
  local e = now - (s - W)
  if e < 0 then e = 0 end
  local F = scmost(st, L)
  local used = scused(F, e, W)
  local function rem(cc)
    local r = L - cc - used
    if r < 0 then r = 0 end
    return r
  end
  -- Until the estimate is zero: no sooner than s, as until then the
  -- unknown window counts.
  local function resetOf(cur)
    local r = 0
    if cur > 0 then r = s + 2 * W - now elseif pr > 0 then r = s + W - now end
    if r < s - now then r = s - now end
    return r
  end
  if n < 0 or n > L then return 0, rem(C), resetOf(c), NEVER end
  if n == 0 then return 1, rem(C), resetOf(c), 0 end
  if used + C + n <= L then
    if take then st.c, st.m, st.dirty = c + n, F, true end
    return 1, rem(C + n), resetOf(c + n), 0
  end
  -- In now's window once F·(W-e') <= (L-C-n)·W, at e' = W - m with m =
  -- floor((L-C-n)·W/F), if m > 0; else from s on, as a fresh time there.
  local x
  if C + n <= L then
    local m = muldiv(L - C - n, W, F)
    if m > 0 then x = s - m end
  end
  if not x then
    if c + n <= L and pr <= L - c - n then
      x = s
    elseif c + n <= L then
      x = s + W - muldiv(L - c - n, W, pr)
    else
      x = s + 2 * W - muldiv(L - n, W, c)
    end
  end
  return 0, rem(C), resetOf(c), x - now
end

function sc.decide(st, p, n, take)
  local L, W = p.limit, p.window
  sccarry(st, p)
  if st.s and now < st.s then return scstale(st, p, n, take) end
  local s, el, c, pr = scview(st, W)
  local used = scused(pr, el, W)
  local function rem(cc)
    local r = L - cc - used
    if r < 0 then r = 0 end
    return r
  end
  local function resetOf(cc)
    if cc > 0 then return s + 2 * W - now end
    if pr > 0 then return s + W - now end
    return 0
  end
  if n < 0 or n > L then return 0, rem(c), resetOf(c), NEVER end
  if n == 0 then return 1, rem(c), resetOf(c), 0 end
  if used + c + n <= L then
    if take then st.s, st.c, st.pr, st.m, st.dirty = s, c + n, pr, scmost(st, L), true end
    return 1, rem(c + n), resetOf(c + n), 0
  end
  local x
  if c + n <= L then
    -- In this window, once pr·(W-x) <= (L-c-n)·W (pr > 0, or n would
    -- fit; the quotient is below W, or n would fit now).
    x = s + W - muldiv(L - c - n, W, pr)
  else
    -- In the next, where prev is c: once c·(W-y) <= (L-n)·W (c > L-n >= 0).
    x = s + 2 * W - muldiv(L - n, W, c)
  end
  return 0, rem(c), resetOf(c), x - now
end

-- refund gives back units of the window `at` falls in, if it is the
-- stored one or the one before, never below zero. A key emptied by a
-- refund is kept, not deleted: its start still makes stale times before it
-- count the window it forgot as full (see scstale), as they did before the
-- refunded Take; a deleted key would read as fresh.
function sc.refund(st, p, n, at)
  sccarry(st, p)
  if not st.s then return end
  local W = p.window
  if at >= st.s and at < st.s + W then
    st.c = st.c - math.min(n, st.c)
  elseif at >= st.s - W and at < st.s then
    st.pr = st.pr - math.min(n, st.pr)
  else
    return
  end
  st.dirty = true
end

function sc.save(key, st, p)
  call('SET', key, fmt(st.s) .. ' ' .. fmt(st.c) .. ' ' .. fmt(st.pr) .. ' ' .. fmt(st.m or p.limit) .. ' ' .. fmt(p.window),
    'PX', ttl(st.s + 2 * p.window - now))
end

-- ---------------------------------------------------------------------
-- Concurrency leases. A sorted set of leases, score = expiry (µs), member
-- "id:units". A lease counts while its expiry is after now; a holder that
-- dies stops renewing and its units come back when the lease expires. The
-- member "#N" (score +inf) is N, the units of all the leases in the set,
-- so that a call reads only the leases that have expired (and, on a
-- denial, the first to expire) rather than every one held.
local cc = {}

local function cctotal(key)
  local tot = call('ZRANGEBYSCORE', key, '+inf', '+inf')
  if #tot > 0 then return tonumber(string.sub(tot[1], 2)), tot[1] end
  return 0, nil
end

local function ccsettotal(key, old, v)
  if old then call('ZREM', key, old) end
  if v > 0 then call('ZADD', key, '+inf', '#' .. fmt(v)) end
end

local function ccunits(m) return tonumber(match(m, ':(%d+)$')) end

-- ccexpire sets the key's TTL to the last lease's expiry.
local function ccexpire(key)
  local last = call('ZREVRANGEBYSCORE', key, '(+inf', '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #last > 0 then call('PEXPIRE', key, ttl(tonumber(last[2]) - now)) end
end

function cc.load(key)
  local st = {adds = {}}
  st.total, st.totalm = cctotal(key)
  local dead = 0
  local es = call('ZRANGEBYSCORE', key, '-inf', fmt(now))
  for _, m in ipairs(es) do dead = dead + (ccunits(m) or 0) end
  st.held = st.total - dead
  local last = call('ZREVRANGEBYSCORE', key, '(+inf', '(' .. fmt(now), 'WITHSCORES', 'LIMIT', 0, 1)
  st.last = now
  if #last > 0 then st.last = tonumber(last[2]) end
  return st
end

function cc.decide(st, p, n, take, key)
  local L, held = p.limit, st.held
  local remaining = L - held
  if remaining < 0 then remaining = 0 end
  local reset = st.last - now
  if n < 0 or n > L then return 0, remaining, reset, NEVER end
  if n == 0 then return 1, remaining, reset, 0 end
  if held + n <= L then
    if take then
      insert(st.adds, {x = now + p.window, m = p.p4})
      st.held, st.dirty = held + n, true
      if now + p.window > st.last then st.last = now + p.window end
    end
    local r = reset
    if p.window > r then r = p.window end
    return 1, L - held - n, r, 0
  end
  -- Until enough leases expire, if their holders neither release nor
  -- renew: walk them by expiry, as far as the units needed.
  local need, retry = held + n - L, NEVER
  local off, batch = 0, math.min(need + 1, 128)
  while retry == NEVER do
    local es = call('ZRANGEBYSCORE', key, '(' .. fmt(now), '(+inf', 'WITHSCORES', 'LIMIT', off, batch)
    for i = 1, #es, 2 do
      need = need - (ccunits(es[i]) or 0)
      if need <= 0 then retry = tonumber(es[i + 1]) - now break end
    end
    if #es < 2 * batch then break end
    off = off + batch
  end
  if retry == NEVER and #st.adds > 0 then
    retry = st.adds[#st.adds].x - now -- leases taken earlier in this script
  end
  return 0, remaining, reset, retry
end

-- refund is a release: it removes the lease p4 (its units are its own).
function cc.refund(st, p, n, at, key)
  if call('ZREM', key, p.p4) == 1 then
    ccsettotal(key, st.totalm, st.total - ccunits(p.p4))
  end
end

function cc.save(key, st, p)
  call('ZREMRANGEBYSCORE', key, '-inf', fmt(now))
  for _, a in ipairs(st.adds) do call('ZADD', key, a.x, a.m) end
  ccsettotal(key, st.totalm, st.held)
  ccexpire(key)
end

-- ---------------------------------------------------------------------
-- Quota leases (op 'l', one member). A replica takes k >= n units in one
-- call and spends them itself until the lease ends; this section decides
-- how many, and takes back the unspent units of the replica's last lease.
-- Units are taken here before they are spent, so the replica's spending
-- is counted in Redis no later than it happens:
--   fw, rw, sc  a lease ends at the end of the window it counts in (its
--               units must not be spent in the next), or after its life;
--   tb          a unit spent at any time up to the lease's end e is
--               conformant if the units are taken as at e: tat becomes
--               max(tat, e) + k·T, admitted if that is within B·T of now
--               (the proof: the theoretical arrival time so computed is
--               never below the one of the actual spending times);
--   sl          no lease: an exact log must log each unit at the instant
--               it is admitted, which the server does not see. k = n.
-- Extra arguments after the member: want (k sought, >= n), life (µs), and
-- the last lease's refund: units, its take time (µs), and for tb its tat
-- word "q r" just after it was taken.

-- leasefree returns what a lease at now could take and when its window
-- ends, or nil for no lease (sl, tb, a stale time before the window).
local function leasefree(mb)
  local st, p = mb.st, mb.p
  local L, W = p.limit, p.window
  if p.alg == 'fw' or p.alg == 'rw' then
    if st.s and now < st.s then return nil end
    if winopen(st, W, now) then return L - st.c, st.s + W end
    return L, winstart(p) + W
  elseif p.alg == 'sc' then
    if st.s and st.s > now then return nil end
    local s, el, c, pr = scview(st, W)
    return L - c - scused(pr, el, W), s + W
  end
  return nil
end

-- grant is the units a lease takes: what is sought, but at most half of
-- what is free (so that one replica does not take all the rest), and at
-- least n; 0 if n does not fit.
local function grant(free, n, want)
  if free < n then return 0 end
  local k = math.min(want, math.max(n, free - fdiv(free, 2)))
  return k
end

-- leaserefund gives back the last lease's unspent units: a window's at the
-- lease's time (only into the window it counted in), a bucket's only if
-- the bucket is still as that lease left it (then exactly as if the lease
-- had been smaller; after another take, the bucket cannot tell which
-- units to give back, and the refund is forfeit).
local function leaserefund(mb, rn, rat, rtok)
  local st, p = mb.st, mb.p
  if p.alg == 'tb' then
    tbread(st, p) -- under another rate, q and r move and the token differs: forfeit
    if not st.q or rtok ~= fmt(st.q) .. ' ' .. fmt(st.r) then return end
    local nq, nr = muldiv(math.min(rn, p.p3), p.window, p.limit)
    st.q, st.r = psub(st.q, st.r, nq, nr, p.limit)
    st.dirty = true
  elseif p.alg ~= 'sl' then
    -- (A lease's first n units were spent at its take time, so a window
    -- it opened was opened by a real event: the refund is plain.)
    mb.m.refund(st, p, rn, rat, mb.key, true)
  end
end

-- lease returns the decision on n and the units k taken (0 if denied)
-- and when the lease ends (µs, server time).
local function lease(mb, n, want, life)
  local st, p = mb.st, mb.p
  if want > n and p.alg == 'tb' then
    tbread(st, p) -- so that q0, r0 are in the units tb.decide leaves
    local q0, r0, z0 = st.q, st.r, st.z
    local e = now + life
    if not st.q or st.q < e then st.q, st.r = e, 0 end
    local _, free = tb.decide(st, p, 0, false)
    local k = grant(free, n, want)
    if k > n then
      local ok, rem, reset, retry = tb.decide(st, p, k, true)
      if ok == 1 then
        tbstamp(st, e) -- its units are taken as at e (see above)
        return ok, rem, reset, retry, k, e
      end
    end
    st.q, st.r, st.z = q0, r0, z0
  elseif want > n then
    local free, stop = leasefree(mb)
    local k = free and grant(free, n, want) or 0
    if k > n then
      local ok, rem, reset, retry = mb.m.decide(st, p, k, true, mb.key)
      if ok == 1 then return ok, rem, reset, retry, k, math.min(now + life, stop) end
    end
  end
  local ok, rem, reset, retry = mb.m.decide(st, p, n, true, mb.key)
  if ok == 1 then return ok, rem, reset, retry, n, now end
  return ok, rem, reset, retry, 0, now
end

-- ---------------------------------------------------------------------

local algs = {tb = tb, fw = win, rw = win, sl = sl, sc = sc, cc = cc}

-- run decides one call: the script's entry point (see the top).
local function run(KEYS, ARGV)
  if not floor then
    floor, format, match, insert = math.floor, string.format, string.match, table.insert
    call = redis.call
  end
  op = ARGV[1]
  n = tonumber(ARGV[2])
  servertime = ARGV[3] == ''
  if servertime then
    local t = call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  else
    now = tonumber(ARGV[3])
  end
  slack = tonumber(ARGV[4])
  local members, cache = {}, {}
  for i = 1, #KEYS do
    local a = 4 + 5 * (i - 1)
    local p = {
      alg = ARGV[a + 1], limit = tonumber(ARGV[a + 2]), window = tonumber(ARGV[a + 3]),
      p3 = tonumber(ARGV[a + 4]), p4 = ARGV[a + 5],
    }
    local m = algs[p.alg]
    if not m then return redis.error_reply('ratekit: unknown algorithm ' .. tostring(p.alg)) end
    local key = KEYS[i]
    if not cache[key] then cache[key] = m.load(key, p) end
    members[i] = {key = key, p = p, m = m, st = cache[key]}
  end

  local out = {}
  if op == 'x' then
    -- Extend a lease: only one that is still live, to now + lease.
    for i, mb in ipairs(members) do
      local score = call('ZSCORE', mb.key, mb.p.p4)
      local ok = 0
      if score and tonumber(score) > now then
        call('ZADD', mb.key, 'XX', now + mb.p.window, mb.p.p4)
        ccexpire(mb.key)
        ok = 1
      end
      local k = #out
      out[k + 1], out[k + 2], out[k + 3], out[k + 4] = ok, 0, 0, 0
    end
  elseif op == 's' then
    -- Shrink a live lease "id:units" by n units (a partial release).
    for _, mb in ipairs(members) do
      local score = call('ZSCORE', mb.key, mb.p.p4)
      local id, units = match(mb.p.p4, '^(.*):(%d+)$')
      local ok = 0
      if score and tonumber(score) > now and units then
        call('ZREM', mb.key, mb.p.p4)
        local k = math.min(n, tonumber(units))
        if tonumber(units) > k then
          call('ZADD', mb.key, score, id .. ':' .. format('%d', tonumber(units) - k))
        end
        local total, totalm = cctotal(mb.key)
        ccsettotal(mb.key, totalm, total - k)
        ok = 1
      end
      local k = #out
      out[k + 1], out[k + 2], out[k + 3], out[k + 4] = ok, 0, 0, 0
    end
  elseif op == 'l' then
    -- A quota lease: give back the last lease's unspent units, then (if
    -- n > 0) decide n and take a lease of k >= n units. Returns allowed,
    -- remaining, reset, retry, then k, the lease's end less now (µs), and
    -- the tat word "q r" after it (tb; else 0 0).
    local mb = members[1]
    local a = 4 + 5 * #KEYS
    local want, life = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    local rn, rat, rtok = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), ARGV[a + 5]
    if rn > 0 then leaserefund(mb, rn, rat, rtok) end
    local ok, rem, reset, retry, k, stop = 1, 0, 0, 0, 0, now
    if n > 0 then ok, rem, reset, retry, k, stop = lease(mb, n, want, life) end
    if mb.st.dirty then
      mb.st.dirty = false
      mb.m.save(mb.key, mb.st, mb.p)
    end
    local tq, tr = 0, 0
    if mb.p.alg == 'tb' and mb.st.q then tq, tr = mb.st.q, mb.st.r end
    out = {ok, rem, reset, retry, k, stop - now, tq, tr}
  elseif op == 'r' then
    -- Refund at now: the injected time is the Take's, or the server's now.
    for _, mb in ipairs(members) do
      if n > 0 then mb.m.refund(mb.st, mb.p, n, now, mb.key) end
      local k = #out
      out[k + 1], out[k + 2], out[k + 3], out[k + 4] = 1, 0, 0, 0
    end
    for _, mb in ipairs(members) do
      if mb.st.dirty then
        mb.st.dirty = false
        mb.m.save(mb.key, mb.st, mb.p)
      end
    end
  else
    local take = op == 't'
    local all = true
    for _, mb in ipairs(members) do
      local ok, rem, reset, retry = mb.m.decide(mb.st, mb.p, n, take, mb.key)
      if ok == 0 then all = false end
      local k = #out
      out[k + 1], out[k + 2], out[k + 3], out[k + 4] = ok, rem, reset, retry
    end
    if take and all then
      for _, mb in ipairs(members) do
        if mb.st.dirty then
          mb.st.dirty = false
          mb.m.save(mb.key, mb.st, mb.p)
        end
      end
    end
  end
  insert(out, now)
  return out
end
