r"""A ``FeedProvider`` on Redis (redis-py): GetStream's feed model with capped timelines.

Semantics are those of the in-memory reference adapter (``adapters/inmemory``):
an entry (a feed holding an activity) has *paths* (``direct``, ``to`` from F,
``follow`` from F); a feed *owns* what it holds directly or as a ``to``
target, only owned activities fan out and are copied on follow, a copy from F
lives while F owns the activity, unfollowing drops only ``follow`` paths.

How it is stored
----------------
An activity's data is stored once, as a JSON string. Paths are not stored per entry:

- what a feed *owns* is a sorted set (uncapped; for a user feed this is its
  posts, for a timeline only its mentions and direct writes) plus, per owned
  activity, a short string: the direct flag, the ``to`` sources, the ``to``
  targets it sent the activity to, the logical time it started owning it
  (``since``) and the times it fanned it out (``fans``);
- what a feed holds by following is *derived*: each follow edge keeps, on the
  followed feed's side, its windows ``[start, stop]`` of logical time plus
  the copy boundary taken at follow time (the newest ``activity_copy_limit``
  activities owned then). Feed T holds activity A from F when F owns A and
  either A was owned before a window opened and lies above its copy boundary,
  or F fanned A out during a window, and no ``remove_activity`` on T came
  after that delivery (an *exclusion*, stored with F). An unfollow closes the
  window (``keep_history``) or deletes all of them;
- every feed keeps its own logical clock (``HINCRBY``), and every comparison
  above is between times of the same feed, so all of it sits in one slot.

A feed of a *capped* group (``timeline`` by default) also keeps a *window
cache*: the sorted set ``tl`` of the ids of its newest entries, at most
``timeline_cap`` of them, and a *horizon* score: every entry it holds with a
score above the horizon is in ``tl``; nothing at or below it is read from
``tl`` (a fan-out does not check the horizon, and what it leaves there goes
with the next eviction). Fan-out
writes ``tl``; a write into a full cache first drops its oldest tenth (raising
the horizon), so the next ones find room; a read serves the page from
``tl`` and, when it goes past the horizon, merges the older page from the
feed's own set and, per followed feed, the activities delivered to it (one
script per followed feed, in one pipeline). Removals drop the entry from
``tl`` when they can tell locally that no other path holds it; when another
followed feed owns it too and might deliver it, the cache is truncated at
that entry (the horizon rises to it) so the merge decides. Uncapped feeds
have no cache: a feed that follows nothing (user, hashtag, mentions) is read
straight from its own set; one that follows feeds is merged on every read.

Key schema (``P`` = namespace; ``{...}`` is the Redis Cluster hash tag)
------------------------------------------------------------------------
Per feed F = ``group:id``, all in F's slot (tag ``{group:id}``):

====================  ======  ===================================================
``P:{F}:own``         zset    activities F owns; member = 16 raw UUID bytes,
                              score = time in microseconds since 1970
``P:{F}:om``          hash    member -> ``direct|since|fans|to-sources|to-targets``
``P:{F}:st``          hash    ``c`` clock, ``h`` horizon, ``e`` clock of the last
                              window change, ``m`` highest split (see ``late``),
                              ``hy`` set once F is hybrid, ``u`` clock of the
                              last unfollow of F
``P:{F}:tl``          zset    the window cache (capped groups only); score =
                              minus the time, so the newest come first
``P:{F}:flw``         zset    followers, score = F's clock at follow
``P:{F}:fng``         zset    feeds F follows, score = F's clock at follow
``P:{F}:src``         set     feeds F has follow windows from (followed now, or
                              unfollowed keeping history)
``P:{F}:win``         hash    follower -> its windows on F:
                              ``start,stop,copy-score,copy-member-hex,split;...``
``P:{F}:exc``         hash    member -> ``follower=clock,...``: removals by the
                              follower after which earlier deliveries don't count
``P:{F}:late``        zset    owned activities fanned out below some window's
                              split (back-dated or replayed), so a merge can
                              skip F's undelivered history
``P:{F}:kept``        zset    the latest 1,000 followers that unfollowed F
                              keeping history, score = F's clock then
====================  ======  ===================================================

Per activity (tag ``{<32 hex digits>}``): ``P:a:{hex}`` string, its data as
JSON (``a`` actor, ``v`` verb, ``b`` object, ``f`` foreign id, ``t`` ISO
time, ``x`` extra fields), so a page's records come back in one ``MGET``;
``P:a:{hex}:o`` set of the feeds that own it (a superset is harmless: it
only makes removals more cautious). Per foreign id: ``P:f:{sha1}`` set of
the hex ids with that foreign id. ``P:hybrid``: the set of hybrid feeds and
``P:hybrid:v`` its version (see below). ``P:hybrid:newest`` (single server
only): zset, hybrid feed -> a score no entry it owns exceeds (raised as it
owns newer ones, never lowered), so a page's read skips, in one ``ZMSCORE``,
the hybrid feeds with nothing new enough for it.

Every script but the fan-out's touches the keys of one feed or one activity
only, so each runs in one slot. A fan-out writes one timeline per follower.
On a single server (or a replica set), where a script may touch keys of any
slot, ``own_add`` returns the follow clock of every ``fan_out_batch``-th
follower (250), and each ``fan_out_range`` call writes the caches of the
followers between two of them: it reads them as it writes, atomically, so
a follower that unfollowed before its slice is skipped and one that
unfollows after finds the entry in the cache it cleans, one that followed
after the fan-out has a later clock than any slice, and no follower list
travels to the client. Followers that unfollowed *keeping history* during
the fan-out were delivered the activity but skipped by their slice: the
``departed`` script finds them (in ``kept``, or in the windows once more
than 1,000 left) and they go the listed way. On Redis Cluster, a script's
keys must share a slot, so ``own_add`` returns the followers themselves and
``fan_out_declared`` calls write the caches of up to ``fan_out_batch`` listed
followers of one slot each (redis-py's cluster pipeline splits the calls
per node; each follower's ``tl`` and ``st`` keys are declared, as a cluster
requires of every key a script touches). Listed writes do not check the
follow: the check comes after them, on the followed feeds' side, where an
unfollow lets go of the follower before it reads the cache it cleans. It
costs one ``HGET`` of the feed's ``u`` (and a ``ZMSCORE`` of the followers
only when an unfollow came since); what a follower that left got is taken
back with ``cache_drop``. Every call of a fan-out goes in one round trip,
streamed: sent in slices as they are packed, so the server starts before
the client has packed them all (redis-py's pipeline packs everything first;
a cluster still uses it). Scripts are loaded once (on a cluster, on every
primary) and run with ``EVALSHA`` (redis-py's ``Script`` objects would add
a ``SCRIPT EXISTS`` round trip to each pipeline); ``NOSCRIPT`` reloads them.

A fan-out's cost per follower is what Redis spends in ``fan_out_range``:
one ``ZCARD`` and one ``ZADD`` on the follower's cache, about 4 us into a
small cache on these machines (0.7 of a raw ``ZADD``'s rate, measured). An
active reader's cache holds 721 to 800 entries, and there ``ZADD`` scans
the listpack for the member (the insert position is the first one, scores
being negated times): about 15 us, the price of 31 bytes per entry (the
skiplist encoding would make it O(log n) at about 4x the memory). Shedding
a tenth at a time keeps the eviction's own scans (``ZSCORE``, the trim) off
all but one write in 80 (docs/benchmarks.md).

Chunked and hybrid fan-out
--------------------------
Delivery to followers is decided on the followed feed's side (its fan-out
times against each follower's windows); a fan-out's per-follower work is only
the cache writes. ``store_activity`` therefore does everything ``add_activity``
does but those writes, and ``copy_to_followers`` makes them for one chunk
of listed followers: it skips those that no longer follow and an activity
the feed no longer owns, then writes as above (checked after the writes
too). A chunk that runs after an unfollow *and* a re-follow of
the same edge may cache an entry the merge would not deliver; the projector
sends chunks at once, so that needs a worker backlog longer than the two
events.

With ``celebrity_threshold`` set, a feed with more followers than that at a
fan-out becomes *hybrid* for good (``hy`` in its ``st`` hash, and its name in
the set ``P:hybrid``): its fan-outs write no follower's cache, so a post costs
the same few commands whatever the number of followers. A read merges the
deliveries of the hybrid feeds the reader has windows from (the
``candidates`` logic, floored at the page's last entry), so a timeline
reads the same with or without the threshold (the contract and the model
test run with thresholds 0 and 1). On a single server the read script does
it itself (``SINTER`` of the reader's sources with ``P:hybrid``). On a
cluster the script stays in the reader's slot: a provider keeps the set as
last read with its version, ``P:hybrid:v`` (a new random token whenever the
set grows), sends the token's ``GET`` in the same round trip as the script,
reads ``P:hybrid`` again (+2 round trips) only when the token changed, and
merges with one ``candidates`` call per hybrid feed the script reports.
Staying hybrid avoids re-caching a large audience when an account drifts
back under the threshold; crossing back would be correct too. On a cluster,
setting the threshold back to None once feeds went hybrid is not
supported: reads would stop merging them (rebuild the feeds with a replay).

Round trips (measured): ``add_activity`` 2 whatever the number of followers
(record, ownership and fan-out scripts; then the capped followers' caches;
on a cluster +1 for the check, and either way +2 to 4 when followers left
during it), ``copy_to_followers`` 2, ``add_to_many`` 1, ``follow`` /
``follow_many`` 1 (+1 to copy into capped followers), ``unfollow`` 1 (+1
to 3 to clean a capped follower's cache, +1 on a cluster),
``remove_activity`` 3, +1 per level of ``to`` hand-offs, ``read`` 1 on a
single server from a cache or a feed that follows nothing (the read script
returns the records too; 3 past the horizon), 2 on a cluster (the script,
then the records; +1 past the horizon, +1 when the page merges hybrid feeds'
posts). ``read_with_catalog_cache`` is ``read`` with what the catalog's
cache holds of each post, read by the same script (``RedisPageReader``): no
extra round trip. Batches are cut
every ``pipeline_chunk`` commands (one round trip each).

Memory: a cache entry is 16 bytes of member plus an integer score; with the
listpack encoding that is about 31 bytes per entry for an 800-entry timeline
(``MEMORY USAGE``). Redis uses listpack only up to ``zset-max-listpack-entries``
entries (128 by default): with ``configure_listpack=True`` the adapter raises
it to ``timeline_cap`` with ``CONFIG SET`` (server-wide, on every node of a
cluster, not persisted; put it in redis.conf for production). Where
``CONFIG`` is refused (managed Redis) it warns and ``listpack_configured``
is False: it still works, at ~4x the memory (skiplist: 126 bytes per entry,
measured).

Consistency: each script is atomic; a call is a few rounds of scripts across
slots, ordered so that a fan-out racing a follow or an unfollow of the same
edge still ends as one order or the other would (the follower's side is
written first, and a cache write checks the follow is still there). Two calls
racing on the same activity (re-adding it while removing it) may not; the
projector applies events one at a time, so it never does that. Scores are
exact integers for times from 1685 to 2255; other times are refused.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import (
    ClusterDownError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from adapters.redis.catalog_cache import SHOWN_LUA
from application.feeds import (
    DEFAULT_COPY_LIMIT,
    DEFAULT_READ_LIMIT,
    MAX_ADD_TO_MANY,
    MAX_FOLLOW_OFFSET,
    Activity,
    FeedId,
    FeedInputError,
    FeedProvider,
    FeedProviderError,
    FeedUnavailableError,
    Follow,
    StoredActivity,
    activity_id,
    activity_sort_key,
    check_copy_limit,
    check_fan_out_chunk,
    check_page,
    check_read_limit,
    past_every_list,
)

NAMESPACE = re.compile(r"^[A-Za-z0-9_.-]+$")
DEFAULT_TIMELINE_CAP = 800
DEFAULT_PIPELINE_CHUNK = 5000
# Followers per fan-out script call: enough to spread the call's cost, few
# enough that one call holds Redis for milliseconds at most.
DEFAULT_FAN_OUT_BATCH = 250
# Followers per lookup, after a fan-out, that they still follow its source.
_CHECK_BATCH = 1000
# Commands packed and sent at a time within one round trip (see _stream).
_SEND_SLICE = 16

_UNIX_EPOCH = datetime(1970, 1, 1)
# UUID timestamps count 100 ns from 1582-10-15; scores count microseconds from 1970.
_UUID_TO_UNIX_US = (_UNIX_EPOCH - datetime(1582, 10, 15)) // timedelta(microseconds=1)
_MAX_SCORE = 2**53  # doubles hold every integer up to here exactly
_TOP = b"\xff" * 17  # sorts after every 16-byte member

# (score, member): an activity's place in every feed.
Key = tuple[int, bytes]


# -- Lua ------------------------------------------------------------------------

_PRELUDE = r"""
local INF = math.huge
local KEPT = 1000  -- departures keeping history that a feed's kept zset holds
local TOP = string.rep('\255', 17)

local function split(s, sep)
  local out = {}
  if not s or s == '' then return out end
  local start = 1
  while true do
    local i = string.find(s, sep, start, true)
    if not i then
      out[#out + 1] = string.sub(s, start)
      return out
    end
    out[#out + 1] = string.sub(s, start, i - 1)
    start = i + 1
  end
end

-- Byte order, as Redis orders members of equal score (no locale involved).
local function bytes_lt(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function key_lt(s1, m1, s2, m2)
  if s1 ~= s2 then return s1 < s2 end
  return bytes_lt(m1, m2)
end

local function contains(list, x)
  for _, v in ipairs(list) do
    if v == x then return true end
  end
  return false
end

local function hex(s)
  return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end))
end

local function unhex(h)
  return (string.gsub(h, '..', function(x) return string.char(tonumber(x, 16)) end))
end

local function fmt(n) return string.format('%d', n) end

-- Own-entry metadata: direct|since|fan,fan|to-source,...|to-target,...
local function meta_get(om, m)
  local raw = redis.call('HGET', om, m)
  if not raw then return nil end
  local p = split(raw, '|')
  local fans = {}
  for _, f in ipairs(split(p[3], ',')) do fans[#fans + 1] = tonumber(f) end
  return {d = p[1] == '1', since = tonumber(p[2]), fans = fans,
          tosrc = split(p[4], ','), tos = split(p[5], ',')}
end

local function meta_put(om, m, meta)
  local fans = {}
  for i, f in ipairs(meta.fans) do fans[i] = fmt(f) end
  redis.call('HSET', om, m, table.concat({meta.d and '1' or '0', fmt(meta.since),
    table.concat(fans, ','), table.concat(meta.tosrc, ','), table.concat(meta.tos, ',')}, '|'))
end

local function drop_own(own, om, late, exc, m)
  redis.call('ZREM', own, m)
  redis.call('HDEL', om, m)
  redis.call('ZREM', late, m)
  redis.call('HDEL', exc, m)
end

-- A follower's windows: start,stop,copy-score,copy-member-hex,split;...
-- stop '' = still following; copy-score '+' copies nothing, '-' everything.
local function parse_windows(raw)
  local ws = {}
  for _, w in ipairs(split(raw, ';')) do
    local p = split(w, ',')
    local cs = INF
    if p[3] == '-' then cs = -INF elseif p[3] ~= '+' then cs = tonumber(p[3]) end
    ws[#ws + 1] = {start = tonumber(p[1]), stop = p[2] ~= '' and tonumber(p[2]) or nil,
                   cs = cs, cm = unhex(p[4]),
                   split = p[5] == '-' and -INF or tonumber(p[5]), split_s = p[5]}
  end
  return ws
end

-- The clock of the latest delivery of an owned entry through the windows, or nil.
local function delivery(meta, s, m, ws)
  local best = nil
  for _, w in ipairs(ws) do
    if meta.since < w.start and not key_lt(s, m, w.cs, w.cm) then
      if not best or w.start > best then best = w.start end
    end
    for _, f in ipairs(meta.fans) do
      if f >= w.start and (not w.stop or f <= w.stop) and (not best or f > best) then
        best = f
      end
    end
  end
  return best
end

local function excluded_at(exc, m, t)
  local raw = redis.call('HGET', exc, m)
  if not raw then return nil end
  for _, item in ipairs(split(raw, ',')) do
    local eq = string.find(item, '=', 1, true)
    if string.sub(item, 1, eq - 1) == t then return tonumber(string.sub(item, eq + 1)) end
  end
  return nil
end

local function delivered(om, exc, m, s, ws, t)
  local meta = meta_get(om, m)
  if not meta then return false end
  local d = delivery(meta, s, m, ws)
  if not d then return false end
  local x = excluded_at(exc, m, t)
  return not x or d > x
end

-- Follower t's k newest entries below the bound (us_str, um; none if nil),
-- scoring at least floor_str (none if nil), delivered from the feed whose
-- keys are own, om, win, exc, late: flat m, s, ...
local function candidates(own, om, win, exc, late, t, k, us_str, um, floor_str)
  local floor = floor_str and tonumber(floor_str)
  -- Whatever it returns is owned (late is part of own) and scores between
  -- the floor and the bound: with nothing there, the usual case for a full
  -- page, there is nothing to check.
  if floor and #redis.call('ZREVRANGEBYSCORE', own, us_str or '+inf', floor_str,
                            'LIMIT', 0, 1) == 0 then
    return {}
  end
  local raw = redis.call('HGET', win, t)
  if not raw then return {} end
  local ws = parse_windows(raw)
  local lo, lo_str = INF, nil
  for _, w in ipairs(ws) do
    if w.split < lo then lo, lo_str = w.split, w.split_s end
  end
  local us = us_str and tonumber(us_str)
  local out = {}
  local function scan(key, max, min)
    local off, batch = 0, 2 * k + 8
    while true do
      local got = redis.call('ZREVRANGEBYSCORE', key, max, min, 'WITHSCORES', 'LIMIT', off, batch)
      for i = 1, #got, 2 do
        local m, s = got[i], tonumber(got[i + 1])
        if (not us or key_lt(s, m, us, um)) and delivered(om, exc, m, s, ws, t) then
          out[#out + 1] = m
          out[#out + 1] = got[i + 1]
          if #out >= 2 * k then return end
        end
      end
      if #got < 2 * batch then return end
      off = off + batch
    end
  end
  -- Above the lowest split, scan what the feed owns; below it only fan-outs
  -- during a window deliver, and each of those was recorded in late. Nothing
  -- scoring below the floor is wanted (it could not make the page).
  local own_min = lo == -INF and '-inf' or lo_str
  if floor and (lo == -INF or floor > lo) then own_min = floor_str end
  scan(own, us_str or '+inf', own_min)
  if lo ~= -INF and #out < 2 * k and not (floor and floor >= lo) then
    local lmax = '(' .. lo_str
    if us and us < lo then lmax = us_str end
    scan(late, lmax, floor_str or '-inf')
  end
  return out
end

-- Window cache: every held entry scoring above the horizon h is in tl. Its
-- scores are negated times, so the newest entries come first in the
-- listpack and a ZADD of a new one finds its place at once (a listpack
-- insert scans from the head).
local function neg(s_str) return fmt(-tonumber(s_str)) end

local function raise_horizon(st, tl, s_str)
  local h = redis.call('HGET', st, 'h')
  if not h or tonumber(s_str) > tonumber(h) then redis.call('HSET', st, 'h', s_str) end
  redis.call('ZREMRANGEBYSCORE', tl, neg(s_str), '+inf')
end

-- cache_add for an entry known to score above the horizon (ns_str = -s).
local function cache_put(st, tl, m, s_str, s, ns_str, cap)
  if redis.call('ZCARD', tl) < cap then
    redis.call('ZADD', tl, ns_str, m)  -- an entry already there stays as it is
    return
  end
  if redis.call('ZSCORE', tl, m) then return end
  local oldest = redis.call('ZRANGE', tl, -1, -1, 'WITHSCORES')
  if s < -tonumber(oldest[2]) then
    raise_horizon(st, tl, s_str)
    return
  end
  -- Full: evict the oldest tenth at once (whole score levels, so the set
  -- never outgrows the cap, and listpack), so that the next writes find room
  -- without the eviction's cost; a new entry at or below the edge goes too.
  local drop = math.max(1, math.floor(cap / 10))
  local edge = neg(redis.call('ZRANGE', tl, -drop, -drop, 'WITHSCORES')[2])
  raise_horizon(st, tl, edge)
  if s > tonumber(edge) then redis.call('ZADD', tl, ns_str, m) end
end

-- A fan-out's write. It skips cache_add's horizon check: an entry at or
-- below the horizon is never read, and goes with the next eviction.
local function fan_write(tl, m, s_str, s, ns_str, cap)
  if redis.call('ZCARD', tl) < cap then
    redis.call('ZADD', tl, ns_str, m)  -- an entry already there stays as it is
  else
    cache_put(string.sub(tl, 1, -3) .. 'st', tl, m, s_str, s, ns_str, cap)
  end
end

-- The cache's entries below (us, um) (no bound if us_str is nil) and above
-- lo_str (exclusive; none if nil): newest first, at most n, flat m, s, ...
-- (times, not negated).
local function cache_below(tl, us_str, um, lo_str, n)
  if n <= 0 then return {} end
  local us = us_str and tonumber(us_str)
  local min = us_str and neg(us_str) or '-inf'
  local max = lo_str and ('(' .. neg(lo_str)) or '+inf'
  local found, tied = {}, false
  local off, batch, full = 0, n + 4, false
  while not full do
    local got = redis.call('ZRANGEBYSCORE', tl, min, max, 'WITHSCORES', 'LIMIT', off, batch)
    for i = 1, #got, 2 do
      local s = -tonumber(got[i + 1])
      local last = found[#found]
      -- Equal times come in ascending member order: read the n-th's whole level.
      if #found >= n and s ~= last[1] then
        full = true
        break
      end
      if not us or key_lt(s, got[i], us, um) then
        if last and s == last[1] then tied = true end
        found[#found + 1] = {s, got[i]}
      end
    end
    if #got < 2 * batch then break end
    off = off + batch
  end
  if tied then
    table.sort(found, function(x, y) return key_lt(y[1], y[2], x[1], x[2]) end)
  end
  local out = {}
  for i = 1, math.min(n, #found) do
    out[#out + 1] = found[i][2]
    out[#out + 1] = fmt(found[i][1])
  end
  return out
end

local function cache_add(st, tl, m, s_str, cap)
  local s = tonumber(s_str)
  local h = redis.call('HGET', st, 'h')
  if h and s <= tonumber(h) then return end
  cache_put(st, tl, m, s_str, s, neg(s_str), cap)
end

-- Entries of zset key below (us, um) (no bound if us_str is nil) and above
-- lo_str (exclusive; none if nil): newest first, at most n, flat m, s, ...
local function range_below(key, us_str, um, lo_str, n)
  local out = {}
  if n <= 0 then return out end
  local us = us_str and tonumber(us_str)
  local max = us_str or '+inf'
  local min = lo_str and ('(' .. lo_str) or '-inf'
  local off, batch = 0, n + 4
  while true do
    local got = redis.call('ZREVRANGEBYSCORE', key, max, min, 'WITHSCORES', 'LIMIT', off, batch)
    for i = 1, #got, 2 do
      if not us or key_lt(tonumber(got[i + 1]), got[i], us, um) then
        out[#out + 1] = got[i]
        out[#out + 1] = got[i + 1]
        if #out >= 2 * n then return out end
      end
    end
    if #got < 2 * batch then return out end
    off = off + batch
  end
end
"""

# KEYS own om st flw late tl. ARGV m score kind('d'|'t') to-source fan('1'|'0')
# cap threshold step newest-key ('' on a cluster) feed to-targets... Returns
# {} without fan-out, {'h'} if the
# feed is hybrid, else {clock, followers} (step 0) or {clock, bounds}: the
# follow clock (score in flw) of every step-th follower, to slice the
# followers by with fan_out_range.
_OWN_ADD = r"""
local own, om, st, flw, late, tl = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local m, s_str, kind, src = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local fan, cap = ARGV[5] == '1', tonumber(ARGV[6])
local newest, feed = ARGV[9], ARGV[10]
local c = redis.call('HINCRBY', st, 'c', 1)
local meta = meta_get(om, m)
if not meta then
  meta = {d = false, since = c, fans = {}, tosrc = {}, tos = {}}
  redis.call('ZADD', own, s_str, m)
  if cap > 0 then cache_add(st, tl, m, s_str, cap) end
  if newest ~= '' and redis.call('HGET', st, 'hy') then
    redis.call('ZADD', newest, 'GT', s_str, feed)
  end
end
if kind == 'd' then
  meta.d = true
elseif not contains(meta.tosrc, src) then
  meta.tosrc[#meta.tosrc + 1] = src
end
local thr, step = tonumber(ARGV[7]), tonumber(ARGV[8])
for i = 11, #ARGV do
  if not contains(meta.tos, ARGV[i]) then meta.tos[#meta.tos + 1] = ARGV[i] end
end
if not fan then
  meta_put(om, m, meta)
  return {}
end
-- Two fan-outs with no window opening or closing between them are
-- indistinguishable to every delivery test: keep only the later one.
local e = tonumber(redis.call('HGET', st, 'e') or '0')
local n = #meta.fans
if n > 0 and meta.fans[n] > e then meta.fans[n] = c else meta.fans[n + 1] = c end
local mcm = redis.call('HGET', st, 'm')
if mcm and tonumber(s_str) < tonumber(mcm) then redis.call('ZADD', late, s_str, m) end
meta_put(om, m, meta)
-- A hybrid feed (past the threshold once, for good) has its deliveries read
-- by a merge, not cached: 'h' says so (a follower name always has a colon).
-- The newest-key holds, for each hybrid feed, a score no entry it owns
-- exceeds: the read script skips a feed whose newest is below its page.
if thr >= 0 then
  local hy = redis.call('HGET', st, 'hy')
  if hy or redis.call('ZCARD', flw) > thr then
    if not hy then
      redis.call('HSET', st, 'hy', '1')
      if newest ~= '' then
        local top = redis.call('ZREVRANGE', own, 0, 0, 'WITHSCORES')
        redis.call('ZADD', newest, 'GT', top[2], feed)
      end
    end
    return {'h'}
  end
end
if step == 0 then return {fmt(c), redis.call('ZRANGE', flw, 0, -1)} end
local bounds = {}
for k = 0, redis.call('ZCARD', flw) - 1, step do
  bounds[#bounds + 1] = redis.call('ZRANGE', flw, k, k, 'WITHSCORES')[2]
end
return {fmt(c), bounds}
"""

# KEYS the tl key of each follower. ARGV cap member score.
# One batch of a fan-out to listed followers on a single server (a chunk,
# or the followers that left during a sliced fan-out): it does not check
# the follows, the caller does after the writes (RedisFeedProvider._fan_out).
# A follower's st key shares its tl key's hash tag (so its slot): it is
# derived when a full cache needs it (a cluster runs fan_out_declared).
_FAN_OUT = r"""
local cap, m, s_str = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local s, ns_str = tonumber(s_str), neg(s_str)
for i = 1, #KEYS do fan_write(KEYS[i], m, s_str, s, ns_str, cap) end
return 1
"""

# KEYS the tl and st keys of each follower, in pairs. ARGV cap member score.
# fan_out on a cluster, where a script may touch only the keys it declares
# (Redis routes it by them): a full cache's st key is passed, not derived.
_FAN_OUT_DECLARED = r"""
local cap, m, s_str = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local s, ns_str = tonumber(s_str), neg(s_str)
for i = 1, #KEYS, 2 do
  local tl = KEYS[i]
  if redis.call('ZCARD', tl) < cap then
    redis.call('ZADD', tl, ns_str, m)  -- an entry already there stays as it is
  else
    cache_put(KEYS[i + 1], tl, m, s_str, s, ns_str, cap)
  end
end
return 1
"""

# KEYS flw. ARGV cap member score min max key-prefix group-prefixes...
# One slice of a fan-out on a single server, where a script may write keys
# of any slot: the caches of the followers whose follow clocks lie in
# min..max. Each slice reads the followers as it writes them (atomically):
# one that unfollowed before is skipped, one that unfollows after finds the
# entry in the cache it cleans; one that followed after the fan-out (a
# later clock) is outside every slice.
_FAN_OUT_RANGE = r"""
local cap, m, s_str = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local s, ns_str = tonumber(s_str), neg(s_str)
local prefix, sub = ARGV[6], string.sub
for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[4], ARGV[5])) do
  for i = 7, #ARGV do  -- 'timeline:': the capped groups
    if sub(name, 1, #ARGV[i]) == ARGV[i] then
      fan_write(prefix .. name .. '}:tl', m, s_str, s, ns_str, cap)
      break
    end
  end
end
return 1
"""

# KEYS kept win flw. ARGV clock. The feeds that stopped following this one,
# keeping history, after the clock: a fan-out before that delivered to them,
# and its slices skipped them. kept holds the latest KEPT departures; if it
# no longer reaches back to the clock, the windows tell (a slow scan).
_DEPARTED = r"""
local kept, win, flw = KEYS[1], KEYS[2], KEYS[3]
local c = tonumber(ARGV[1])
local oldest = redis.call('ZRANGE', kept, 0, 0, 'WITHSCORES')
if #oldest == 0 then return {} end
if tonumber(oldest[2]) <= c or redis.call('ZCARD', kept) < KEPT then
  return redis.call('ZRANGEBYSCORE', kept, '(' .. ARGV[1], '+inf')
end
local out = {}
local all = redis.call('HGETALL', win)
for i = 1, #all, 2 do
  if not redis.call('ZSCORE', flw, all[i]) then
    local ws = parse_windows(all[i + 1])
    local stop = ws[#ws].stop
    if stop and stop > c then out[#out + 1] = all[i] end
  end
end
return out
"""

# KEYS fng st tl. ARGV cap nsources sources... then member, score pairs.
# Adds to the cache if the feed still follows one of the sources (none: own).
_CACHE_ADD = r"""
local fng, st, tl = KEYS[1], KEYS[2], KEYS[3]
local cap, nsrc = tonumber(ARGV[1]), tonumber(ARGV[2])
local ok = nsrc == 0
for i = 3, 2 + nsrc do
  if redis.call('ZSCORE', fng, ARGV[i]) then
    ok = true
    break
  end
end
if not ok then return 0 end
for i = 3 + nsrc, #ARGV, 2 do cache_add(st, tl, ARGV[i], ARGV[i + 1], cap) end
return 1
"""

# KEYS own st tl src. ARGV member, score, other owners joined by \n; ...
# The entry lost a path: drop it from the cache unless it is owned here, or
# another owner is a feed this one has windows from (then truncate: unsure).
_CACHE_DROP = r"""
local own, st, tl, src = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
for i = 1, #ARGV, 3 do
  local m, s_str = ARGV[i], ARGV[i + 1]
  if redis.call('ZSCORE', tl, m) and not redis.call('ZSCORE', own, m) then
    local unsure = false
    for _, o in ipairs(split(ARGV[i + 2], '\n')) do
      if redis.call('SISMEMBER', src, o) == 1 then
        unsure = true
        break
      end
    end
    if unsure then raise_horizon(st, tl, s_str) else redis.call('ZREM', tl, m) end
  end
end
return 1
"""

# KEYS own om tl win late exc. ARGV members... (remove_activity on this feed)
# Returns {member, to-targets, ... of owned entries dropped}, {window holders}.
_OWN_REMOVE = r"""
local own, om, tl, win, late, exc = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local lost = {}
for i = 1, #ARGV do
  local m = ARGV[i]
  redis.call('ZREM', tl, m)
  local meta = meta_get(om, m)
  if meta then
    drop_own(own, om, late, exc, m)
    lost[#lost + 1] = m
    lost[#lost + 1] = table.concat(meta.tos, ',')
  end
end
local holders = {}
if #lost > 0 then holders = redis.call('HKEYS', win) end
return {lost, holders}
"""

# KEYS own om win late exc. ARGV member source: the to path from source goes.
# Returns {1, to-targets, holders} if this feed no longer owns it, else {0}.
_DROP_TO = r"""
local own, om, win, late, exc = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local m, src = ARGV[1], ARGV[2]
local meta = meta_get(om, m)
if not meta then return {0} end
local kept = {}
for _, v in ipairs(meta.tosrc) do
  if v ~= src then kept[#kept + 1] = v end
end
meta.tosrc = kept
if meta.d or #kept > 0 then
  meta_put(om, m, meta)
  return {0}
end
drop_own(own, om, late, exc, m)
return {1, table.concat(meta.tos, ','), redis.call('HKEYS', win)}
"""

# KEYS own win exc st. ARGV follower members...: the follower removed them.
_EXCLUDE = r"""
local own, win, exc, st = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local t = ARGV[1]
if redis.call('HEXISTS', win, t) == 0 then return 0 end
local c = fmt(redis.call('HINCRBY', st, 'c', 1))
for i = 2, #ARGV do
  local m = ARGV[i]
  if redis.call('ZSCORE', own, m) then
    local items = {}
    for _, item in ipairs(split(redis.call('HGET', exc, m), ',')) do
      if string.sub(item, 1, #t + 1) ~= t .. '=' then items[#items + 1] = item end
    end
    items[#items + 1] = t .. '=' .. c
    redis.call('HSET', exc, m, table.concat(items, ','))
  end
end
return 1
"""

# KEYS fng src st. ARGV target. The follower's side of follow.
_FOLLOW_T = r"""
local fng, src, st = KEYS[1], KEYS[2], KEYS[3]
if redis.call('ZSCORE', fng, ARGV[1]) then return 0 end
local c = redis.call('HINCRBY', st, 'c', 1)
redis.call('ZADD', fng, c, ARGV[1])
redis.call('SADD', src, ARGV[1])
return 1
"""

# KEYS flw own st win. ARGV follower limit want-copies. The followed side:
# opens a window; returns nil if already followed, else the copies wanted.
_FOLLOW_S = r"""
local flw, own, st, win = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local t, limit, want = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
if redis.call('ZSCORE', flw, t) then return false end
local c = redis.call('HINCRBY', st, 'c', 1)
redis.call('ZADD', flw, c, t)
local cs, cm, split_s = '+', '', '-'
if limit == 0 then
  local top = redis.call('ZRANGE', own, -1, -1, 'WITHSCORES')
  if #top > 0 then split_s = top[2] end
else
  local nth = redis.call('ZREVRANGE', own, limit - 1, limit - 1, 'WITHSCORES')
  if #nth == 0 then
    cs = '-'
  else
    cs, cm, split_s = nth[2], hex(nth[1]), nth[2]
  end
end
local w = table.concat({fmt(c), '', cs, cm, split_s}, ',')
local old = redis.call('HGET', win, t)
if old and old ~= '' then w = old .. ';' .. w end
redis.call('HSET', win, t, w)
redis.call('HSET', st, 'e', c)
if split_s ~= '-' then
  local mcm = redis.call('HGET', st, 'm')
  if not mcm or tonumber(split_s) > tonumber(mcm) then redis.call('HSET', st, 'm', split_s) end
end
if want and limit > 0 then return redis.call('ZREVRANGE', own, 0, limit - 1, 'WITHSCORES') end
return {}
"""

# KEYS fng src. ARGV target keep. Returns 1 if it was following, else 0.
_UNFOLLOW_T = r"""
local fng, src = KEYS[1], KEYS[2]
local s, keep = ARGV[1], ARGV[2] == '1'
if not redis.call('ZSCORE', fng, s) then return 0 end
redis.call('ZREM', fng, s)
if not keep then redis.call('SREM', src, s) end
return 1
"""

# KEYS flw st win kept. ARGV follower keep.
_UNFOLLOW_S = r"""
local flw, st, win, kept = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local t, keep = ARGV[1], ARGV[2] == '1'
if not redis.call('ZSCORE', flw, t) then return 0 end
redis.call('ZREM', flw, t)
local c = fmt(redis.call('HINCRBY', st, 'c', 1))
redis.call('HSET', st, 'e', c, 'u', c)
if not keep then
  redis.call('HDEL', win, t)
  return 1
end
local ws = split(redis.call('HGET', win, t), ';')
for i, w in ipairs(ws) do
  local p = split(w, ',')
  if p[2] == '' then
    p[2] = c
    ws[i] = table.concat(p, ',')
  end
end
redis.call('HSET', win, t, table.concat(ws, ';'))
redis.call('ZADD', kept, c, t)
redis.call('ZREMRANGEBYRANK', kept, 0, -KEPT - 1)
return 1
"""

# KEYS own st tl src. ARGV cap limit has-bound bound-score bound-member
# feed namespace, then on a cluster ('' namespace) the hybrid feeds, or on a
# single server optionally the catalog cache's prefix and the posts'
# foreign-id prefix.
# Returns {'+', entries, records} for a whole page: from the cache, with
# what the hybrid feeds it follows deliver, or from a feed that follows
# nothing. Else, for the client to merge (a page past the horizon; or any
# page on a cluster, where a script stays in one slot and the client merges
# the hybrid feeds' deliveries): {cache entries, own entries past the
# horizon, the feeds to merge from (if a merge is needed), horizon or '',
# hybrid feeds to merge}.
_READ = r"""
local own, st, tl, src = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local cap, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local us_str, um = nil, nil
if ARGV[3] == '1' then us_str, um = ARGV[4], ARGV[5] end
local t, ns = ARGV[6], ARGV[7]
local cached, h = {}, nil
if cap > 0 then
  h = redis.call('HGET', st, 'h')
  cached = cache_below(tl, us_str, um, h, limit)
end
local owned, srcs = {}, {}
local need = limit - #cached / 2
local past = need > 0 and (cap == 0 or h)
if past then
  local bs, bm = us_str, um
  if h and (not us_str or tonumber(h) < tonumber(us_str)) then bs, bm = h, TOP end
  owned = range_below(own, bs, bm, nil, need)
  srcs = redis.call('SMEMBERS', src)
end
local hyb = {}
if ns == '' then
  -- On a cluster, ARGV[8..] are the hybrid feeds; the client merges them.
  for i = 8, #ARGV do
    if redis.call('SISMEMBER', src, ARGV[i]) == 1 then hyb[#hyb + 1] = ARGV[i] end
  end
  return {cached, owned, srcs, h or '', hyb}
end
hyb = redis.call('SINTER', src, ns .. ':hybrid')
if past and #srcs > 0 then return {cached, owned, srcs, h or '', hyb} end
for i = 1, #owned do cached[#cached + 1] = owned[i] end
if #hyb > 0 then
  -- Each hybrid feed's deliveries that could make the page: newer than its
  -- last entry once it is full (the floor). A feed whose newest entry
  -- scores below the floor has none (a feed missing from newest is merged
  -- anyway). The feeds go newest first, and the floor rises to the page's
  -- last entry as they fill it, so the later ones have less to check.
  local floor = #cached >= 2 * limit and cached[2 * limit] or nil
  local newest = redis.call('ZMSCORE', ns .. ':hybrid:newest', unpack(hyb))
  local top, order = {}, {}
  for i = 1, #hyb do
    top[i] = newest[i] and tonumber(newest[i]) or INF
    order[i] = i
  end
  table.sort(order, function(a, b)
    if top[a] ~= top[b] then return top[a] > top[b] end
    return a < b
  end)
  local all, seen = {}, {}
  local function add(flat)
    for i = 1, #flat, 2 do
      if not seen[flat[i]] then
        seen[flat[i]] = true
        all[#all + 1] = {tonumber(flat[i + 1]), flat[i], flat[i + 1]}
      end
    end
  end
  local function newest_first(x, y) return key_lt(y[1], y[2], x[1], x[2]) end
  add(cached)
  for _, i in ipairs(order) do
    if not (floor and top[i] < tonumber(floor)) then
      local p = ns .. ':{' .. hyb[i] .. '}:'
      local found = candidates(p .. 'own', p .. 'om', p .. 'win', p .. 'exc', p .. 'late', t,
                               limit, us_str, um, floor)
      if #found > 0 then
        add(found)
        if #all >= limit then
          table.sort(all, newest_first)
          for j = #all, limit + 1, -1 do all[j] = nil end
          floor = all[limit][3]
        end
      end
    end
  end
  table.sort(all, newest_first)
  cached = {}
  for i = 1, math.min(limit, #all) do
    cached[#cached + 1] = all[i][2]
    cached[#cached + 1] = all[i][3]
  end
end
local records = {}
if #cached > 0 then
  local keys = {}
  for i = 1, #cached, 2 do
    -- An activity id in hex: four 32-bit words, much cheaper than 16 bytes.
    local id = string.format('%08x%08x%08x%08x', struct.unpack('>I4I4I4I4', cached[i]))
    keys[#keys + 1] = ns .. ':a:{' .. id .. '}'
  end
  records = redis.call('MGET', unpack(keys))
end
-- With the catalog cache's prefix (ARGV[8]) and the posts' foreign-id prefix
-- (ARGV[9]): what the cache holds of each record's post (RedisPageReader).
local cp = ARGV[8]
if cp and cp ~= '' and #records > 0 then
  -- A post's foreign id is the prefix and its id, 36 characters, in the
  -- record's "f" (a plain find: no pattern to match).
  local field = '"f":"' .. ARGV[9]
  local vkeys = {}
  for i = 1, #records do
    local record, key = records[i], '-'
    local last = record and select(2, string.find(record, field, 1, true))
    if last and string.byte(record, last + 37) == 34 then  -- the closing quote
      key = string.gsub(string.sub(record, last + 1, last + 36), '-', '')
    end
    vkeys[i] = cp .. 'p:' .. key
  end
  local views, names = shown(cp, vkeys)
  return {'+', cached, records, views, names}
end
return {'+', cached, records}
"""

# KEYS own om win exc late. ARGV follower k has-bound bound-score bound-member
# floor-score ('' for none). See candidates.
_CANDIDATES = r"""
local us_str, um = nil, nil
if ARGV[3] == '1' then us_str, um = ARGV[4], ARGV[5] end
return candidates(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], tonumber(ARGV[2]),
                  us_str, um, ARGV[6] ~= '' and ARGV[6] or nil)
"""

_SCRIPTS = {
    "own_add": _OWN_ADD,
    "cache_add": _CACHE_ADD,
    "fan_out": _FAN_OUT,
    "fan_out_declared": _FAN_OUT_DECLARED,
    "fan_out_range": _FAN_OUT_RANGE,
    "departed": _DEPARTED,
    "cache_drop": _CACHE_DROP,
    "own_remove": _OWN_REMOVE,
    "drop_to": _DROP_TO,
    "exclude": _EXCLUDE,
    "follow_t": _FOLLOW_T,
    "follow_s": _FOLLOW_S,
    "unfollow_t": _UNFOLLOW_T,
    "unfollow_s": _UNFOLLOW_S,
    "read": SHOWN_LUA + _READ,  # the catalog cache's lookup, for RedisPageReader
    "candidates": _CANDIDATES,
}


# -- helpers --------------------------------------------------------------------


def _score(raw: bytes | str | int) -> int:
    return int(raw) if isinstance(raw, int) else int(float(raw))


def _key_of(aid: str) -> Key:
    """The (score, member) of an activity id; FeedInputError if it is none."""
    ticks, _ = activity_sort_key(aid)
    micros, rest = divmod(ticks, 10)
    member = uuid.UUID(aid).bytes if rest == 0 else _TOP
    return micros - _UUID_TO_UNIX_US, member


def _activity_id(member: bytes) -> str:
    """The activity id a timeline member stands for: ``str(uuid.UUID(bytes=member))``,
    without building the UUID (a page makes one per entry)."""
    h = member.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _pairs(flat: Sequence[Any]) -> list[Key]:
    return [(_score(flat[i + 1]), bytes(flat[i])) for i in range(0, len(flat), 2)]


def _scored(reply: Sequence[Any]) -> list[Key]:
    """A ``ZRANGE ... WITHSCORES`` reply as keys: redis-py pairs it up
    itself in some versions, and leaves it flat in others."""
    if reply and isinstance(reply[0], list | tuple):
        return [(_score(score), bytes(member)) for member, score in reply]
    return _pairs(reply)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


_PASSING = (
    RedisConnectionError,
    RedisTimeoutError,
    OutOfMemoryError,
    ReadOnlyError,
    TryAgainError,
    ClusterDownError,
)


# What redis-py raises: its cluster client's own errors do not extend RedisError.
_ERRORS = (RedisError, RedisClusterException)


def cluster_unreachable(error: RedisClusterException) -> bool:
    """Whether a cluster client's own error means the cluster is out of
    reach for now (no node answered, or its slots are not all covered)
    rather than a misuse of it."""
    return (
        isinstance(error, SlotNotCoveredError)
        or isinstance(error.__cause__, _PASSING)
        or str(error).startswith(("All slots are not covered", "startup_nodes could not agree"))
    )


def _error(error: RedisError | RedisClusterException) -> FeedProviderError:
    """What a Redis error means to the application: worth retrying later
    (unreachable, loading, out of memory, failing over, busy) or not (a bug)."""
    if isinstance(error, RedisClusterException):
        if cluster_unreachable(error):
            return FeedUnavailableError(f"Redis Cluster is unavailable: {error}")
        return FeedProviderError(f"Redis Cluster refused a feed command: {error}")
    if isinstance(error, _PASSING) or str(error).startswith(("BUSY", "NOREPLICAS")):
        return FeedUnavailableError(f"Redis is unavailable: {error}")
    return FeedProviderError(f"Redis refused a feed command: {error}")


def _owners(names: Iterable[bytes]) -> set[str]:
    """The feeds in an activity's owners set."""
    return set(map(_text, names))


@dataclass
class _Call:
    script: str | None  # None: a plain command
    parts: tuple[Any, ...]
    nkeys: int = 0


class _Batch:
    """Calls sent together: one pipeline (one round trip) per chunk."""

    def __init__(self, provider: RedisFeedProvider) -> None:
        self._provider = provider
        self.calls: list[_Call] = []

    def script(self, name: str, keys: Sequence[str | bytes], args: Iterable[Any] = ()) -> int:
        self.calls.append(_Call(name, (*keys, *args), len(keys)))
        return len(self.calls) - 1

    def command(self, *parts: Any) -> int:
        self.calls.append(_Call(None, parts))
        return len(self.calls) - 1

    def run(self) -> list[Any]:
        return self._provider._execute(self.calls)


class _Keys:
    """The names of one feed's keys (all in the feed's slot)."""

    __slots__ = ("exc", "flw", "fng", "kept", "late", "om", "own", "src", "st", "tl", "win")

    def __init__(self, namespace: str, feed: str) -> None:
        prefix = f"{namespace}:{{{feed}}}:"
        self.own = prefix + "own"
        self.om = prefix + "om"
        self.st = prefix + "st"
        self.tl = prefix + "tl"
        self.flw = prefix + "flw"
        self.fng = prefix + "fng"
        self.src = prefix + "src"
        self.win = prefix + "win"
        self.exc = prefix + "exc"
        self.late = prefix + "late"
        self.kept = prefix + "kept"


# -- the provider ---------------------------------------------------------------


class RedisFeedProvider(FeedProvider):
    """Feeds in Redis; share one instance between threads.

    ``client`` must return bytes (``decode_responses=False``). ``namespace``
    prefixes every key (letters, digits, ``_ . -``). Feeds of
    ``capped_groups`` keep a cache of their newest ``timeline_cap`` entries;
    older pages are merged from the feeds they follow. ``configure_listpack``
    raises ``zset-max-listpack-entries`` to the cap if the server allows it.
    ``pipeline_chunk`` bounds the commands sent in one round trip;
    ``fan_out_batch`` the followers one fan-out script call writes.
    ``celebrity_threshold``: a feed with more followers is fanned out at read
    time (None, the default here, never; the wiring passes 10,000).
    """

    def __init__(
        self,
        client: redis.Redis | RedisCluster,
        namespace: str = "chirp",
        timeline_cap: int = DEFAULT_TIMELINE_CAP,
        capped_groups: frozenset[str] = frozenset({"timeline"}),
        *,
        configure_listpack: bool = True,
        pipeline_chunk: int = DEFAULT_PIPELINE_CHUNK,
        fan_out_batch: int = DEFAULT_FAN_OUT_BATCH,
        celebrity_threshold: int | None = None,
    ) -> None:
        if not NAMESPACE.match(namespace):
            raise ValueError(f"namespace {namespace!r} may only contain letters, digits, _ . -")
        if timeline_cap < 1:
            raise ValueError(f"timeline_cap must be at least 1, not {timeline_cap}")
        if pipeline_chunk < 1:
            raise ValueError(f"pipeline_chunk must be at least 1, not {pipeline_chunk}")
        if client.get_encoder().decode_responses:
            raise ValueError("the Redis client must be made with decode_responses=False")
        self.client = client
        self.namespace = namespace
        self.timeline_cap = timeline_cap
        self.capped_groups = frozenset(capped_groups)
        self._capped_prefixes = tuple(f"{group}:".encode() for group in sorted(capped_groups))
        self.pipeline_chunk = pipeline_chunk
        if fan_out_batch < 1:
            raise ValueError(f"fan_out_batch must be at least 1, not {fan_out_batch}")
        self.fan_out_batch = fan_out_batch
        self._cluster = isinstance(client, RedisCluster)
        self._tag_prefix = f"{namespace}:{{"  # a feed's keys: <this><feed>}:<suffix>
        if celebrity_threshold is not None and celebrity_threshold < 0:
            raise ValueError(f"celebrity_threshold must not be negative, not {celebrity_threshold}")
        self.celebrity_threshold = celebrity_threshold
        self._hybrid_key = f"{namespace}:hybrid"
        self._hybrid_newest_key = f"{namespace}:hybrid:newest"  # read by the read script
        # On a cluster, the hybrid feeds as last read and the version token
        # they had: a read sends the token's GET beside its script.
        self._hybrid_version_key = f"{namespace}:hybrid:v"
        self._hybrids: tuple[bytes | None, tuple[str, ...]] = (None, ())
        self._shas = {
            name: hashlib.sha1((_PRELUDE + body).encode()).hexdigest()
            for name, body in _SCRIPTS.items()
        }
        self._load_scripts()
        self.listpack_configured = self._configure_listpack() if configure_listpack else False

    # -- writes -----------------------------------------------------------------

    supports_chunked_fan_out = True

    def add_activity(self, feed: FeedId, activity: Activity) -> str:
        return self._add_activity(feed, activity, cache_followers=True)

    def store_activity(self, feed: FeedId, activity: Activity) -> str:
        # Delivery to followers is derived from the fan-out recorded on the
        # feed's side; only their window caches are left to the chunks.
        return self._add_activity(feed, activity, cache_followers=False)

    def copy_to_followers(
        self, feed: FeedId, activity_id: str, followers: Sequence[FeedId]
    ) -> None:
        check_fan_out_chunk(followers)
        score, member = _key_of(activity_id)
        capped = [str(f).encode() for f in dict.fromkeys(followers) if self._capped_name(str(f))]
        if not capped:
            return
        source = str(feed)
        keys = _Keys(self.namespace, source)
        # A chunk may run late: skip what the feed no longer owns and the
        # feeds that no longer follow it, as of the feed's clock (read first:
        # an unfollow after it makes _fan_out check again after the writes).
        batch = _Batch(self)
        clock = batch.command("HGET", keys.st, "c")
        owned = batch.command("ZSCORE", keys.own, member)
        present = batch.command("ZMSCORE", keys.flw, *capped)
        results = batch.run()
        if results[owned] is None:
            return
        following = [
            name for name, hit in zip(capped, results[present], strict=True) if hit is not None
        ]
        if following:
            since = {source: int(results[clock])}
            self._fan_out(_Batch(self), member, score, {(source,): following}, since)

    def fans_out_on_read(self, feed: FeedId) -> bool:
        (flag,) = self._one("HGET", _Keys(self.namespace, str(feed)).st, "hy")
        return flag is not None

    def _add_activity(self, feed: FeedId, activity: Activity, cache_followers: bool) -> str:
        aid, (score, member) = self._identify(activity)
        targets = [t for t in dict.fromkeys(activity.to) if t != feed]
        batch = _Batch(self)
        self._queue_store(batch, aid, activity, [feed, *targets])
        fans = [(str(feed), self._own_add(batch, feed, member, score, "d", "", True, targets))]
        for target in targets:
            call = self._own_add(batch, target, member, score, "t", str(feed), True, ())
            fans.append((str(target), call))
        results = batch.run()
        hybrid = [source for source, call in fans if results[call] == [b"h"]]
        if not cache_followers:
            fans = fans[1:]
        # Per feed: its clock at the fan-out, and its followers then (on a
        # cluster) or the bounds of their slices (on a single server).
        fanned = {source: results[call] for source, call in fans if source not in hybrid}
        fan_out = _Batch(self)
        if hybrid:
            fan_out.command("SADD", self._hybrid_key, *hybrid)
            fan_out.command("SET", self._hybrid_version_key, uuid.uuid4().hex)
        if self._cluster:
            self._fan_out_listed(fan_out, member, score, fanned)
        elif fanned or fan_out.calls:
            self._fan_out_sliced(fan_out, member, score, fanned)
        return aid

    def _fan_out_sliced(
        self, batch: _Batch, member: bytes, score: int, fanned: dict[str, list[Any]]
    ) -> None:
        """On a single server: run ``batch`` with the fan-out's slices, one
        ``fan_out_range`` call per ``fan_out_batch`` followers of each feed,
        each reading its followers as it writes their caches (so no follower
        list travels to the client, and no follow needs checking after).
        Then the feeds' departures keeping history since the fan-out, which
        the slices skipped though it delivered to them, go the listed way."""
        departed: dict[str, tuple[int, int]] = {}
        for source, (clock, bounds) in fanned.items():
            keys = _Keys(self.namespace, source)
            for i, low in enumerate(bounds):
                high = b"(" + bounds[i + 1] if i + 1 < len(bounds) else clock
                batch.script(
                    "fan_out_range",
                    [keys.flw],
                    [
                        self.timeline_cap,
                        member,
                        score,
                        low,
                        high,
                        self._tag_prefix,
                        *self._capped_prefixes,
                    ],
                )
            if bounds:
                call = batch.script("departed", [keys.kept, keys.win, keys.flw], [clock])
                departed[source] = (int(clock), call)
        results = batch.run()
        for source, (clock, call) in departed.items():
            left = [name for name in results[call] if name.startswith(self._capped_prefixes)]
            if left:
                self._fan_out(_Batch(self), member, score, {(source,): left}, {source: clock})

    def _fan_out_listed(
        self, batch: _Batch, member: bytes, score: int, fanned: dict[str, list[Any]]
    ) -> None:
        """On a cluster, where a script's keys share a slot: run ``batch``
        with the fan-out to the listed followers of each feed (a follower of
        several of them written once), through ``_fan_out``."""
        since = {source: int(clock) for source, (clock, _) in fanned.items()}
        capped = self._capped_prefixes
        groups: dict[tuple[str, ...], list[bytes]]
        if len(fanned) == 1:  # the usual case: one feed's followers
            ((source, (_, followers)),) = fanned.items()
            groups = {(source,): [f for f in followers if f.startswith(capped)]}
        else:
            sources_of: dict[bytes, list[str]] = {}
            for source, (_, followers) in fanned.items():
                for follower in followers:
                    if follower.startswith(capped):
                        sources_of.setdefault(follower, []).append(source)
            groups = {}
            for follower, sources in sources_of.items():
                groups.setdefault(tuple(sources), []).append(follower)
        if groups or batch.calls:
            self._fan_out(batch, member, score, groups, since)

    def _fan_out(
        self,
        batch: _Batch,
        member: bytes,
        score: int,
        groups: dict[tuple[str, ...], list[bytes]],
        since: dict[str, int],
    ) -> None:
        """Run ``batch`` with ``member`` cached in the timelines of the
        groups' followers (names as bytes: they followed each source of
        their group at its clock ``since[source]``), then take it out again
        where the follower no longer follows any of its group's sources.

        The writes do not check the follow: that would cost each follower a
        second key and two more commands. The check comes after them, on the
        sources' side, and an unfollow removes the follower there before it
        reads the cache it cleans: so a write to a follower that unfollowed
        is either in what the unfollow cleans or followed by a check that
        sees it gone. The check is one ``HGET`` per source, of the clock of
        its last unfollow (``u``): only when that is later than ``since`` are
        the followers looked up (``ZMSCORE``). A single server runs a
        pipeline in order, so the checks ride behind the writes; on a
        cluster they wait for the writes to return."""
        prefix = self._tag_prefix.encode()
        for followers in groups.values():
            args = (self.timeline_cap, member, score)
            keys = [prefix + follower + b"}:tl" for follower in followers]
            for slot_keys in self._by_slot(keys):
                step = self.fan_out_batch
                for start in range(0, len(slot_keys), step):
                    chunk = slot_keys[start : start + step]
                    if self._cluster:  # each follower's st key declared beside its tl
                        pairs = [k for tl in chunk for k in (tl, tl[:-2] + b"st")]
                        batch.script("fan_out_declared", pairs, args)
                    else:
                        batch.script("fan_out", chunk, args)
        checks = _Batch(self) if self._cluster else batch
        sources = sorted({source for group in groups for source in group})
        unfollowed = {
            source: checks.command("HGET", _Keys(self.namespace, source).st, "u")
            for source in sources
        }
        results = batch.run()
        if checks is not batch:
            results = checks.run()
        changed = {
            source
            for source, call in unfollowed.items()
            if results[call] is not None and int(results[call]) > since[source]
        }
        # A group's followers still follow its sources that saw no unfollow.
        doubtful = {
            group: followers for group, followers in groups.items() if set(group) <= changed
        }
        if doubtful:
            self._uncache(member, score, self._gone(doubtful))

    def _gone(self, groups: dict[tuple[str, ...], list[bytes]]) -> list[bytes]:
        """The followers (names as bytes) that follow none of their group's sources now."""
        lookup = _Batch(self)
        calls = []
        for group, followers in groups.items():
            for source in group:
                flw = _Keys(self.namespace, source).flw
                for start in range(0, len(followers), _CHECK_BATCH):
                    chunk = followers[start : start + _CHECK_BATCH]
                    calls.append((group, chunk, lookup.command("ZMSCORE", flw, *chunk)))
        results = lookup.run()
        misses: dict[tuple[str, ...], Counter[bytes]] = {}
        for group, chunk, call in calls:
            absent = [f for f, hit in zip(chunk, results[call], strict=True) if hit is None]
            misses.setdefault(group, Counter()).update(absent)
        return [
            follower
            for group, counts in misses.items()
            for follower, count in counts.items()
            if count == len(group)  # absent from every source of its group
        ]

    def _uncache(self, member: bytes, score: int, feeds: list[bytes]) -> None:
        """Take ``member`` out of the caches of ``feeds``, which got it from
        feeds they no longer follow, unless another path may hold it there."""
        if not feeds:
            return
        (owners,) = self._one("SMEMBERS", self._owners_key(member.hex()))
        names = _owners(owners)
        batch = _Batch(self)
        for raw in feeds:
            feed = _text(raw)
            keys = _Keys(self.namespace, feed)
            others = "\n".join(sorted(names - {feed}))
            batch.script(
                "cache_drop", [keys.own, keys.st, keys.tl, keys.src], [member, score, others]
            )
        batch.run()

    def _by_slot(self, keys: list[bytes]) -> list[list[bytes]]:
        """``keys`` grouped by cluster slot; one group on a single server,
        which has no slots."""
        if not self._cluster:
            return [keys]
        groups: dict[int, list[bytes]] = {}
        for key in keys:
            groups.setdefault(key_slot(key), []).append(key)
        return list(groups.values())

    def add_to_many(self, activity: Activity, feeds: Sequence[FeedId]) -> str:
        if len(feeds) > MAX_ADD_TO_MANY:
            raise FeedInputError(
                f"add_to_many takes at most {MAX_ADD_TO_MANY} feeds, not {len(feeds)}"
            )
        aid, (score, member) = self._identify(activity)
        unique = list(dict.fromkeys(feeds))
        batch = _Batch(self)
        self._queue_store(batch, aid, activity, unique)
        for feed in unique:
            self._own_add(batch, feed, member, score, "d", "", False, ())
        batch.run()
        return aid

    def remove_activity(self, feed: FeedId, foreign_id: str) -> None:
        name = str(feed)
        (hexes,) = self._one("SMEMBERS", self._fid_key(foreign_id))
        if not hexes:
            return
        hex_ids = sorted(_text(h) for h in hexes)
        members = [bytes.fromhex(h) for h in hex_ids]
        keys = _Keys(self.namespace, name)
        batch = _Batch(self)
        owner_calls = [batch.command("SMEMBERS", self._owners_key(h)) for h in hex_ids]
        removed = batch.script(
            "own_remove", [keys.own, keys.om, keys.tl, keys.win, keys.late, keys.exc], members
        )
        results = batch.run()
        owners = {
            member: _owners(results[call])
            for member, call in zip(members, owner_calls, strict=True)
        }
        lost_flat, holders = results[removed]
        lost: dict[bytes, set[str]] = {}  # member -> feeds that stopped owning it
        holders_of: dict[str, list[str]] = {name: [_text(h) for h in holders]}
        handoffs: list[tuple[str, bytes, list[str]]] = []  # (from, member, to-targets)
        for i in range(0, len(lost_flat), 2):
            member = bytes(lost_flat[i])
            lost.setdefault(member, set()).add(name)
            handoffs.append((name, member, _text(lost_flat[i + 1]).split(",")))

        # The follow paths into this feed go by exclusions on the feeds that
        # deliver them; what it owned, owned through it, cascades to 'to' targets.
        batch = _Batch(self)
        for member in members:
            for source in sorted(owners[member] - {name}):
                s_keys = _Keys(self.namespace, source)
                batch.script(
                    "exclude", [s_keys.own, s_keys.win, s_keys.exc, s_keys.st], [name, member]
                )
        while handoffs or batch.calls:
            drops: list[tuple[str, bytes, int]] = []
            for source, member, targets in handoffs:
                for target in filter(None, targets):
                    t_keys = _Keys(self.namespace, target)
                    call = batch.script(
                        "drop_to",
                        [t_keys.own, t_keys.om, t_keys.win, t_keys.late, t_keys.exc],
                        [member, source],
                    )
                    drops.append((target, member, call))
            results = batch.run()
            handoffs = []
            for target, member, call in drops:
                outcome = results[call]
                if int(outcome[0]) == 1:
                    lost.setdefault(member, set()).add(target)
                    holders_of[target] = [_text(h) for h in outcome[2]]
                    handoffs.append((target, member, _text(outcome[1]).split(",")))
            batch = _Batch(self)

        final = _Batch(self)
        for member, gone in lost.items():
            score = self._score_of_member(member)
            others = "\n".join(sorted(owners.get(member, set()) - gone))
            touched = {t for feed_name in gone for t in holders_of.get(feed_name, [])}
            touched |= {g for g in gone if g != name}
            for holder in sorted(touched):
                if self._capped_name(holder):
                    h_keys = _Keys(self.namespace, holder)
                    final.script(
                        "cache_drop",
                        [h_keys.own, h_keys.st, h_keys.tl, h_keys.src],
                        [member, score, others],
                    )
            hex_id = member.hex()
            if others:
                final.command("SREM", self._owners_key(hex_id), *sorted(gone))
            else:
                final.command("UNLINK", self._record_key(hex_id), self._owners_key(hex_id))
                final.command("SREM", self._fid_key(foreign_id), hex_id)
        if final.calls:
            final.run()

    def follow(
        self, source: FeedId, target: FeedId, activity_copy_limit: int = DEFAULT_COPY_LIMIT
    ) -> None:
        check_copy_limit(activity_copy_limit)
        Follow(source, target)
        self._follow_all([(source, target)], activity_copy_limit)

    def follow_many(
        self, follows: Iterable[Follow], activity_copy_limit: int = DEFAULT_COPY_LIMIT
    ) -> None:
        check_copy_limit(activity_copy_limit)
        self._follow_all([(f.source, f.target) for f in follows], activity_copy_limit)

    def unfollow(self, source: FeedId, target: FeedId, keep_history: bool = False) -> None:
        self._unfollow_all([(source, target)], keep_history)

    def unfollow_many(self, follows: Iterable[Follow], keep_history: bool = False) -> None:
        self._unfollow_all([(f.source, f.target) for f in follows], keep_history)

    # -- reads ------------------------------------------------------------------

    def read(
        self, feed: FeedId, limit: int = DEFAULT_READ_LIMIT, id_lt: str | None = None
    ) -> list[StoredActivity]:
        found, _ = self.read_with_catalog_cache(feed, limit, id_lt)
        return found

    def read_with_catalog_cache(
        self,
        feed: FeedId,
        limit: int = DEFAULT_READ_LIMIT,
        id_lt: str | None = None,
        cache: tuple[str, str] | None = None,
    ) -> tuple[list[StoredActivity], list[tuple[bytes | None, bytes | None]] | None]:
        """``read``, and with ``cache`` (the catalog cache's key prefix, the
        posts' foreign-id prefix) what that cache holds of each activity's
        post: its view and its author's name (``SHOWN_LUA``), fetched by the
        same script. None instead when a page was not read that way (past
        the horizon, on a cluster): the caller then asks the cache itself."""
        check_read_limit(limit)
        bound: Key | None = None
        if id_lt is not None:
            bound = _key_of(id_lt)
            if bound[0] < -_MAX_SCORE:
                return [], [] if cache else None
            if bound[0] > _MAX_SCORE:
                bound = None
        found: list[StoredActivity] = []
        shown: list[tuple[bytes | None, bytes | None]] | None = [] if cache else None
        while True:
            want = limit - len(found)
            items, entries, last, page_shown = self._read_page(feed, want, bound, cache)
            found += items
            shown = None if shown is None or page_shown is None else shown + page_shown
            # A record can vanish under a concurrent removal: read on past it.
            if len(found) >= limit or entries < want or last is None:
                return found, shown
            bound = last

    def followers(self, feed: FeedId, limit: int = 25, offset: int = 0) -> list[FeedId]:
        return self._edges(_Keys(self.namespace, str(feed)).flw, limit, offset)

    def following(self, feed: FeedId, limit: int = 25, offset: int = 0) -> list[FeedId]:
        return self._edges(_Keys(self.namespace, str(feed)).fng, limit, offset)

    # -- maintenance ------------------------------------------------------------

    def clear(self) -> int:
        """Delete every key of this namespace (SCAN + UNLINK); return how many."""
        deleted = 0
        try:
            batch: list[bytes] = []
            for key in self.client.scan_iter(match=f"{self.namespace}:*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    deleted += int(self.client.unlink(*batch))
                    batch = []
            if batch:
                deleted += int(self.client.unlink(*batch))
        except _ERRORS as error:
            raise _error(error) from error
        return deleted

    # -- internals: writes ------------------------------------------------------

    def _identify(self, activity: Activity) -> tuple[str, Key]:
        aid = activity_id(activity.foreign_id, activity.time)
        micros = (activity.time - _UNIX_EPOCH) // timedelta(microseconds=1)
        if abs(micros) > _MAX_SCORE:
            raise FeedInputError(
                f"activity time {activity.time} is outside what the Redis feeds order exactly"
                " (1685 to 2255)"
            )
        return aid, (micros, uuid.UUID(aid).bytes)

    def _queue_store(
        self, batch: _Batch, aid: str, activity: Activity, owners: Sequence[FeedId]
    ) -> None:
        data = {
            "a": str(activity.actor),
            "v": str(activity.verb),
            "b": str(activity.object),
            "f": activity.foreign_id,
            "t": activity.time.isoformat(),
            "x": {name: str(value) for name, value in activity.extra.items()},
        }
        hex_id = uuid.UUID(aid).hex
        batch.command("SET", self._record_key(hex_id), json.dumps(data, separators=(",", ":")))
        # Owners are written before the feeds own it: the set stays a superset.
        if owners:
            batch.command("SADD", self._owners_key(hex_id), *(str(owner) for owner in owners))
        batch.command("SADD", self._fid_key(activity.foreign_id), hex_id)

    def _own_add(
        self,
        batch: _Batch,
        feed: FeedId,
        member: bytes,
        score: int,
        kind: str,
        to_source: str,
        fan: bool,
        targets: Iterable[FeedId],
    ) -> int:
        keys = _Keys(self.namespace, str(feed))
        return batch.script(
            "own_add",
            [keys.own, keys.om, keys.st, keys.flw, keys.late, keys.tl],
            [
                member,
                score,
                kind,
                to_source,
                "1" if fan else "0",
                self._cap_of(str(feed)),
                -1 if self.celebrity_threshold is None else self.celebrity_threshold,
                0 if self._cluster else self.fan_out_batch,  # listed or sliced fan-out
                "" if self._cluster else self._hybrid_newest_key,
                str(feed),
                *(str(t) for t in targets),
            ],
        )

    def _follow_all(self, edges: list[tuple[FeedId, FeedId]], copy_limit: int) -> None:
        if not edges:
            return
        batch = _Batch(self)
        calls = []
        for source, target in edges:
            s_keys = _Keys(self.namespace, str(source))
            t_keys = _Keys(self.namespace, str(target))
            want = copy_limit > 0 and self._capped_name(str(source))
            # The follower's side first: a fan-out that sees the new follower
            # must find the follow recorded when it writes the follower's cache.
            mine = batch.script("follow_t", [s_keys.fng, s_keys.src, s_keys.st], [str(target)])
            theirs = batch.script(
                "follow_s",
                [t_keys.flw, t_keys.own, t_keys.st, t_keys.win],
                [str(source), copy_limit, "1" if want else "0"],
            )
            calls.append((source, target, mine, theirs))
        results = batch.run()
        copies = _Batch(self)
        for source, target, mine, theirs in calls:
            copied = results[theirs]
            if int(results[mine]) == 1 and copied:
                keys = _Keys(self.namespace, str(source))
                args: list[Any] = [self.timeline_cap, 1, str(target)]
                for i in range(0, len(copied), 2):
                    args += [copied[i], copied[i + 1]]
                copies.script("cache_add", [keys.fng, keys.st, keys.tl], args)
        if copies.calls:
            copies.run()

    def _unfollow_all(self, edges: list[tuple[FeedId, FeedId]], keep_history: bool) -> None:
        if not edges:
            return
        keep = "1" if keep_history else "0"
        batch = _Batch(self)
        calls = []
        for source, target in edges:
            s_keys = _Keys(self.namespace, str(source))
            t_keys = _Keys(self.namespace, str(target))
            mine = batch.script("unfollow_t", [s_keys.fng, s_keys.src], [str(target), keep])
            batch.script(
                "unfollow_s", [t_keys.flw, t_keys.st, t_keys.win, t_keys.kept], [str(source), keep]
            )
            calls.append((source, target, mine))
        # The follower's cache is read once the followed side has let go of
        # it (in the same pipeline on a single server, which runs it in
        # order): a fan-out write it misses is followed by a fan-out check
        # that sees the unfollow (see _fan_out).
        snapshots = _Batch(self) if self._cluster else batch
        reads: dict[FeedId, int] = {}  # one per follower cache, however many unfollows
        if not keep_history:
            for source, _, _ in calls:
                if source not in reads and self._capped_name(str(source)):
                    tl = _Keys(self.namespace, str(source)).tl
                    reads[source] = snapshots.command("ZRANGE", tl, 0, -1, "WITHSCORES")
        results = batch.run()
        if not reads:
            return
        cached_of = results if snapshots is batch else snapshots.run()
        # The follower's cache: find its entries the unfollowed feed owns...
        owned = _Batch(self)
        checks = []
        for source, target, mine in calls:
            if source not in reads or int(results[mine]) == 0:  # uncached, or not following
                continue
            # A cache scores its entries by negated time.
            cached = [(-score, member) for score, member in _scored(cached_of[reads[source]])]
            if cached:
                members = [member for _, member in cached]
                own_key = _Keys(self.namespace, str(target)).own
                checks.append((source, target, cached, owned.command("ZMSCORE", own_key, *members)))
        if not checks:
            return
        scores = owned.run()
        candidates: list[tuple[FeedId, FeedId, Key]] = []
        for source, target, cached, call in checks:
            for key, hit in zip(cached, scores[call], strict=True):
                if hit is not None:
                    candidates.append((source, target, key))
        if not candidates:
            return
        # ...then who else owns them, then drop what no other path may hold.
        lookup = _Batch(self)
        unique = sorted({key[1] for _, _, key in candidates})
        owner_calls = {m: lookup.command("SMEMBERS", self._owners_key(m.hex())) for m in unique}
        fields = lookup.run()
        drops: dict[FeedId, list[Any]] = {}
        for source, target, (score, member) in candidates:
            owners = _owners(fields[owner_calls[member]])
            others = "\n".join(sorted(owners - {str(target)}))
            drops.setdefault(source, []).extend([member, score, others])
        final = _Batch(self)
        for source, args in drops.items():
            keys = _Keys(self.namespace, str(source))
            final.script("cache_drop", [keys.own, keys.st, keys.tl, keys.src], args)
        final.run()

    # -- internals: reads -------------------------------------------------------

    def _read_page(
        self, feed: FeedId, limit: int, bound: Key | None, cache: tuple[str, str] | None = None
    ) -> tuple[
        list[StoredActivity], int, Key | None, list[tuple[bytes | None, bytes | None]] | None
    ]:
        """Up to ``limit`` entries below ``bound``: the activities found, how
        many entries there were (records may have vanished), the last key,
        and with ``cache`` what the catalog cache holds of each activity's
        post (None if the page was not read by the script alone)."""
        name = str(feed)
        keys = _Keys(self.namespace, name)
        cap = self._cap_of(name)
        bound_args: list[Any] = ["0", "", ""] if bound is None else ["1", bound[0], bound[1]]

        def read_call(namespace: str, more: Sequence[str] = ()) -> _Call:
            # more: the hybrid feeds on a cluster; the catalog cache's prefixes otherwise
            args = (cap, limit, *bound_args, name, namespace, *more)
            return _Call("read", (keys.own, keys.st, keys.tl, keys.src, *args), 4)

        if not self._cluster:
            # A single server: the script merges the hybrid feeds' deliveries
            # and fetches the records, so a page is one round trip.
            (result,) = self._execute([read_call(self.namespace, cache or ())])
        elif self.celebrity_threshold is not None and cap > 0:
            result = self._read_on_cluster(read_call)
        else:
            (result,) = self._execute([read_call("")])
        companions: list[tuple[bytes | None, bytes | None]] | None = None
        if result[0] == b"+":
            entries = _pairs(result[1])
            records = cast(list[bytes | None], result[2])
            if len(result) > 3:
                companions = list(zip(result[3], result[4], strict=True))
            elif cache:
                companions = []  # an empty page
        else:
            cached_flat, owned_flat, srcs, horizon, hybrid_srcs = result
            entries = _pairs(cached_flat)
            need = limit - len(entries)
            if need > 0 and (cap == 0 or horizon != b""):
                entries += self._merge(name, need, bound, horizon, _pairs(owned_flat), srcs)
            if hybrid_srcs:
                entries = self._merge_hybrid(
                    name, limit, bound, entries, sorted(_text(h) for h in hybrid_srcs)
                )
            records = self._records([member for _, member in entries]) if entries else []
        if not entries:
            return [], 0, None, companions
        live = [i for i, record in enumerate(records) if record is not None]
        # One JSON document for the whole page: one parse instead of one per record.
        data = json.loads(b"[" + b",".join(cast(bytes, records[i]) for i in live) + b"]")
        items = [self._stored(entries[i][1], fields) for i, fields in zip(live, data, strict=True)]
        if companions is not None:
            companions = [companions[i] for i in live]
        return items, len(entries), entries[-1], companions

    def _read_on_cluster(self, read_call: Callable[..., _Call]) -> Any:
        """The read script's reply on a cluster, given the hybrid feeds (the
        script's keys stay in one slot, so the client names them). The
        provider keeps them as last read with their version, whose GET goes
        in the same round trip as the script; only when it changed is the
        set read again and the script run again with it."""
        token, hybrids = self._hybrids
        current, result = self._execute(
            [_Call(None, ("GET", self._hybrid_version_key)), read_call("", hybrids)]
        )
        if current != token:  # a feed turned hybrid since: read again with it
            members, current = self._execute(
                [
                    _Call(None, ("SMEMBERS", self._hybrid_key)),
                    _Call(None, ("GET", self._hybrid_version_key)),
                ]
            )
            hybrids = tuple(sorted(_text(m) for m in members))
            self._hybrids = (current, hybrids)
            (result,) = self._execute([read_call("", hybrids)])
        return result

    def _records(self, members: list[bytes]) -> list[bytes | None]:
        """The stored data of each activity (None if gone): one MGET on a
        single server; on a cluster, where keys of one command share a slot,
        one GET each in a pipeline."""
        keys = [self._record_key(member.hex()) for member in members]
        if self._cluster:
            return self._execute([_Call(None, ("GET", key)) for key in keys])
        (found,) = self._one("MGET", *keys)
        return cast(list[bytes | None], found)

    def _merge(
        self,
        name: str,
        need: int,
        bound: Key | None,
        horizon: bytes,
        owned: list[Key],
        srcs: list[bytes],
    ) -> list[Key]:
        """The ``need`` newest entries below the horizon (and bound): those
        the feed owns plus, from each feed it has windows from, those delivered."""
        merged = set(owned)
        upper = bound
        if horizon != b"":
            at_horizon = (_score(horizon), _TOP)
            upper = at_horizon if upper is None else min(upper, at_horizon)
        sources = sorted(_text(s) for s in srcs)
        if sources:
            bound_args: list[Any] = ["0", "", ""] if upper is None else ["1", upper[0], upper[1]]
            batch = _Batch(self)
            for source in sources:
                s_keys = _Keys(self.namespace, source)
                batch.script(
                    "candidates",
                    [s_keys.own, s_keys.om, s_keys.win, s_keys.exc, s_keys.late],
                    [name, need, *bound_args, ""],
                )
            for found in batch.run():
                merged.update(_pairs(found))
        return sorted(merged, reverse=True)[:need]

    def _merge_hybrid(
        self, name: str, limit: int, bound: Key | None, entries: list[Key], hybrids: list[str]
    ) -> list[Key]:
        """Add what the hybrid feeds ``hybrids`` deliver to ``name`` (their
        fan-outs skip its cache) to the page ``entries``; the ``limit`` newest.

        The page is exact: above the horizon the cache holds everything but
        these deliveries, the newest ``limit`` of which each feed returns, and
        below it ``entries`` already come from the full merge."""
        merged = set(entries)
        bound_args: list[Any] = ["0", "", ""] if bound is None else ["1", bound[0], bound[1]]
        # A full page already: what scores below its last entry cannot make it.
        floor = entries[limit - 1][0] if len(entries) >= limit else ""
        batch = _Batch(self)
        for source in hybrids:
            s_keys = _Keys(self.namespace, source)
            batch.script(
                "candidates",
                [s_keys.own, s_keys.om, s_keys.win, s_keys.exc, s_keys.late],
                [name, limit, *bound_args, floor],
            )
        for found in batch.run():
            merged.update(_pairs(found))
        return sorted(merged, reverse=True)[:limit]

    @staticmethod
    def _stored(member: bytes, data: dict[str, Any]) -> StoredActivity:
        return StoredActivity(
            id=_activity_id(member),
            actor=data["a"],
            verb=data["v"],
            object=data["b"],
            foreign_id=data["f"],
            time=datetime.fromisoformat(data["t"]),
            extra=data["x"],
        )

    def _edges(self, key: str, limit: int, offset: int) -> list[FeedId]:
        check_page(limit, offset)
        if past_every_list(offset):
            return []  # Redis takes no index past a 64-bit integer
        last = offset + limit - 1
        (names,) = self._one("ZREVRANGE", key, offset, last if last < MAX_FOLLOW_OFFSET else -1)
        return [FeedId.parse(_text(n)) for n in names]

    # -- internals: plumbing ----------------------------------------------------

    def _capped_name(self, feed: str) -> bool:
        return feed.partition(":")[0] in self.capped_groups

    def _cap_of(self, feed: str) -> int:
        return self.timeline_cap if self._capped_name(feed) else 0

    def _record_key(self, hex_id: str) -> str:
        return f"{self.namespace}:a:{{{hex_id}}}"

    def _owners_key(self, hex_id: str) -> str:
        return f"{self.namespace}:a:{{{hex_id}}}:o"

    def _fid_key(self, foreign_id: str) -> str:
        digest = hashlib.sha1(foreign_id.encode()).hexdigest()
        return f"{self.namespace}:f:{{{digest}}}"

    @staticmethod
    def _score_of_member(member: bytes) -> int:
        return _key_of(_activity_id(member))[0]

    def _one(self, *parts: Any) -> list[Any]:
        return self._execute([_Call(None, parts)])

    def _execute(self, calls: list[_Call]) -> list[Any]:
        results: list[Any] = []
        for start in range(0, len(calls), self.pipeline_chunk):
            results += self._execute_chunk(calls[start : start + self.pipeline_chunk])
        return results

    def _execute_chunk(self, calls: list[_Call]) -> list[Any]:
        if len(calls) == 1:  # no pipeline to build: a page read, say
            return [self._execute_one(calls[0])]
        results: list[Any] = [None] * len(calls)
        pending = list(range(len(calls)))
        send = self._pipeline if self._cluster else self._stream
        for attempt in range(2):
            try:
                replies = send([self._command(calls[i]) for i in pending])
            except _ERRORS as error:
                raise _error(error) from error
            missing = []
            for i, reply in zip(pending, replies, strict=True):
                if isinstance(reply, NoScriptError) and attempt == 0:
                    missing.append(i)
                elif isinstance(reply, RedisError):
                    raise _error(reply) from reply
                else:
                    results[i] = reply
            if not missing:
                return results
            # The server lost its script cache (restart, SCRIPT FLUSH): reload
            # and re-run the calls that failed; every call is idempotent.
            self._load_scripts()
            pending = missing
        raise FeedProviderError("Redis keeps refusing the feed scripts")  # pragma: no cover

    def _command(self, call: _Call) -> tuple[Any, ...]:
        if call.script is None:
            return call.parts
        return ("EVALSHA", self._shas[call.script], call.nkeys, *call.parts)

    def _pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """One round trip through redis-py's pipeline (a cluster's splits
        the commands per node); errors come back as replies."""
        with self.client.pipeline(transaction=False) as pipe:
            queue = cast(Callable[..., object], pipe.execute_command)
            for command in commands:
                queue(*command)
            return pipe.execute(raise_on_error=False)

    def _stream(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """One round trip on one connection, like a pipeline, but sent in
        slices as they are packed: the server runs the first commands of a
        large fan-out while the client packs the next (redis-py's pipeline
        packs them all first). Errors come back as replies; replies are as
        the server sent them (no redis-py response callbacks)."""
        pool = cast(redis.Redis, self.client).connection_pool  # never a cluster's
        connection: Any = pool.get_connection()
        try:
            for start in range(0, len(commands), _SEND_SLICE):
                connection.send_packed_command(
                    connection.pack_commands(commands[start : start + _SEND_SLICE])
                )
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except ResponseError as error:  # read whole: the stream stays in step
                    replies.append(error)
        except BaseException:
            connection.disconnect()  # replies may be left unread: never reuse it
            raise
        finally:
            pool.release(connection)
        return replies

    def _execute_one(self, call: _Call) -> Any:
        execute: Callable[..., Any] = self.client.execute_command
        for attempt in range(2):
            try:
                if call.script is None:
                    return execute(*call.parts)
                return execute("EVALSHA", self._shas[call.script], call.nkeys, *call.parts)
            except NoScriptError:
                if attempt:  # pragma: no cover - reloaded just before
                    raise FeedProviderError("Redis keeps refusing the feed scripts") from None
                self._load_scripts()  # the server lost its script cache: reload, run again
            except _ERRORS as error:
                raise _error(error) from error
        raise AssertionError("unreachable")  # pragma: no cover

    def _load_scripts(self) -> None:
        if self._cluster:
            self._load_scripts_on_primaries()
            return
        try:
            with self.client.pipeline(transaction=False) as pipe:
                queue = cast(Callable[..., object], pipe.execute_command)
                for body in _SCRIPTS.values():
                    queue("SCRIPT", "LOAD", _PRELUDE + body)
                shas = pipe.execute()
        except _ERRORS as error:
            raise _error(error) from error
        self._check_shas(shas)

    def _load_scripts_on_primaries(self) -> None:
        """On a cluster every primary needs the scripts. A cluster pipeline
        refuses ``SCRIPT LOAD`` (a command for all primaries, not one
        slot's), so each primary gets a pipeline of its own."""
        cluster = cast(RedisCluster, self.client)
        try:
            for node in cluster.get_primaries():  # type: ignore[no-untyped-call]
                with cluster.get_redis_connection(node).pipeline(transaction=False) as pipe:
                    queue = cast(Callable[..., object], pipe.execute_command)
                    for body in _SCRIPTS.values():
                        queue("SCRIPT", "LOAD", _PRELUDE + body)
                    self._check_shas(pipe.execute())
        except _ERRORS as error:
            raise _error(error) from error

    def _check_shas(self, shas: Sequence[Any]) -> None:
        for name, sha in zip(_SCRIPTS, shas, strict=True):
            if _text(sha) != self._shas[name]:  # pragma: no cover - sha1 is sha1
                raise FeedProviderError(f"Redis hashed the {name} script differently")

    def _configure_listpack(self) -> bool:
        """Make capped caches listpacks: ``zset-max-listpack-entries`` >= cap.
        On a cluster, on every node: caches live on all of them, and a
        cluster client sends ``CONFIG`` to one node only."""
        if self._cluster:
            cluster = cast(RedisCluster, self.client)
            every = cluster.get_nodes()  # type: ignore[no-untyped-call]
            nodes = [cluster.get_redis_connection(node) for node in every]
        else:
            nodes = [cast(redis.Redis, self.client)]
        try:
            configured = [self._configure_listpack_on(node) for node in nodes]
            return all(configured)
        except _ERRORS as error:
            warnings.warn(
                f"cannot set zset-max-listpack-entries to {self.timeline_cap} ({error}): "
                "timelines will use the skiplist encoding, about 4x the memory; "
                "set it in redis.conf",
                stacklevel=3,
            )
        return False

    def _configure_listpack_on(self, node: redis.Redis) -> bool:
        for setting in ("zset-max-listpack-entries", "zset-max-ziplist-entries"):
            current = node.config_get(setting).get(setting)
            if current is not None:
                if int(current) < self.timeline_cap:
                    node.config_set(setting, self.timeline_cap)
                return True
        return False
