//! The Lua scripts of the Redis store. Redis runs a script without interleaving any other
//! command, which is what makes reserve's check-and-add atomic across replicas.
//!
//! **Cluster rule.** Every key a script touches is passed in `KEYS`, and the keys of one
//! script share one hash tag, so each script touches one slot: the month scripts take the
//! five keys of [`super::keys::MonthKeys`] (`{m:YYYY-MM}`), the epoch scripts the one key of the
//! `{meta}` slot, and the breaker script one key of the `{breakers}` slot.
//!
//! Entries live as fields of the month's `entries` hash, named `<id>:<field>` (`s` state,
//! `a` amount in micro-USD, `x` expiry ms, `t` when the create call was sent, `u` updated ms,
//! `n` note, `m` the immutable rest as JSON, `l` its budget levels, space-separated), so that
//! expiry can settle any entry of the month without touching a key that was not declared.
//!
//! A budget level's totals are fields of the month's `totals` hash beside the month's own:
//! `<level>#c`, `<level>#d`, `<level>#r` (committed, in doubt, reserved) for a level key such
//! as `team:growth@2026-12`. Every level of a month (and of its days) is in the month's slot,
//! so one script checks and moves the month and all of an entry's levels together: on a
//! cluster too, the guarantee needs no cross-slot step.
//!
//! Amounts are integers of micro-USD. Lua numbers are doubles, exact up to 2^53 micro-USD
//! (about nine billion dollars), far past any budget this store accepts.

/// Shared by the month scripts: `KEYS` = epoch, totals, open, log, entries; `ARGV[1]` = the
/// epoch this process has seen, `ARGV[2]` = now (ms). A month whose marker is not that epoch
/// answers `-1` before anything is read or written.
const MONTH_PRELUDE: &str = r#"
local E, T, O, L, N = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
if redis.call('GET', E) ~= ARGV[1] then
  return {-1, 0}
end
local now = tonumber(ARGV[2])
-- Adds `by` to total `field` (reserved, committed, in_doubt) of the month and of every
-- level of entry `id`.
local SHORT = {reserved = '#r', committed = '#c', in_doubt = '#d'}
local function move(id, field, by)
  redis.call('HINCRBY', T, field, by)
  local levels = redis.call('HGET', N, id .. ':l')
  if levels then
    for level in string.gmatch(levels, '%S+') do
      redis.call('HINCRBY', T, level .. SHORT[field], by)
    end
  end
end
local stale = redis.call('ZRANGEBYSCORE', O, '-inf', now)
for _, id in ipairs(stale) do
  if redis.call('HGET', N, id .. ':s') == 'reserved' then
    local amount = tonumber(redis.call('HGET', N, id .. ':a'))
    move(id, 'reserved', -amount)
    if redis.call('HEXISTS', N, id .. ':t') == 1 then
      redis.call('HSET', N, id .. ':s', 'in_doubt', id .. ':u', now, id .. ':n', 'expired_after_send')
      move(id, 'in_doubt', amount)
    else
      redis.call('HSET', N, id .. ':s', 'expired', id .. ':u', now)
    end
  end
  redis.call('ZREM', O, id)
end
"#;

/// Refuses a call that reaches Redis after its caller gave up (`ARGV[n]`: the caller's
/// deadline, in Redis' own clock): the queued commands of a paused Redis run when it wakes,
/// and a reservation or "sent" mark that nobody waits for would hold budget until its expiry.
fn too_late(arg: usize) -> String {
    format!(
        r#"
local clock = redis.call('TIME')
if tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) > tonumber(ARGV[{arg}]) then
  return {{-2, 0}}
end
"#
    )
}

/// Reserve: `ARGV[3]` amount, `ARGV[4]` budget, `ARGV[5]` id, `ARGV[6]` the entry's JSON,
/// `ARGV[7]` expiry, `ARGV[8]` the caller's deadline, then pairs of a level key and its
/// budget from `ARGV[9]`. Answers `{1, counted, 0}` when reserved (or when this id already
/// was: a call sent again after a lost connection reserves once), `{0, counted, i}` when
/// over budget (`i` 0: the month's; else the `i`-th level's), `{-2, 0, 0}` when too late.
pub fn reserve() -> String {
    format!(
        r#"{MONTH_PRELUDE}{late}
local id = ARGV[5]
if redis.call('HEXISTS', N, id .. ':s') == 1 then
  return {{1, 0, 0}}
end
local amount = tonumber(ARGV[3])
local function counted(prefix)
  local t = redis.call('HMGET', T, prefix[1], prefix[2], prefix[3])
  return (tonumber(t[1]) or 0) + (tonumber(t[2]) or 0) + (tonumber(t[3]) or 0)
end
local month = counted({{'committed', 'in_doubt', 'reserved'}})
if month + amount > tonumber(ARGV[4]) then
  return {{0, month, 0}}
end
local levels = {{}}
for i = 9, #ARGV, 2 do
  local level = ARGV[i]
  local c = counted({{level .. '#c', level .. '#d', level .. '#r'}})
  if c + amount > tonumber(ARGV[i + 1]) then
    return {{0, c, (i - 7) / 2}}
  end
  levels[#levels + 1] = level
end
redis.call('HSET', N, id .. ':s', 'reserved', id .. ':a', ARGV[3], id .. ':x', ARGV[7],
  id .. ':u', now, id .. ':m', ARGV[6])
if #levels > 0 then
  redis.call('HSET', N, id .. ':l', table.concat(levels, ' '))
end
move(id, 'reserved', amount)
redis.call('ZADD', O, ARGV[7], id)
redis.call('ZADD', L, now, id)
return {{1, month, 0}}
"#,
        late = too_late(8)
    )
}

/// Mark sent: `ARGV[3]` id, `ARGV[4]` the caller's deadline. Answers `{1}`, `{0}` when the
/// entry is not reserved, `{-2, 0}` when too late.
pub fn mark_sent() -> String {
    format!(
        r#"{MONTH_PRELUDE}{late}
if redis.call('HGET', N, ARGV[3] .. ':s') ~= 'reserved' then
  return {{0}}
end
redis.call('HSET', N, ARGV[3] .. ':t', now)
return {{1}}
"#,
        late = too_late(4)
    )
}

/// Finish (commit, release, in doubt): `ARGV[3]` id, `ARGV[4]` note (empty: keep), then
/// rows of five from `ARGV[5]`: `state:x` or `state:-` (whether the note marks an expiry
/// after send), the new state, and the change of reserved, committed and in doubt in
/// multiples of the amount. The rows come from [`crate::finish_move`], so the table of
/// moves is written once, in Rust. Answers `{1}`, or `{0}` when no row matches.
pub fn finish() -> String {
    format!(
        r#"{MONTH_PRELUDE}
local id = ARGV[3]
local s = redis.call('HGET', N, id .. ':s')
if not s then
  return {{0}}
end
local key = s .. ((redis.call('HGET', N, id .. ':n') == 'expired_after_send') and ':x' or ':-')
for i = 5, #ARGV, 5 do
  if ARGV[i] == key then
    local amount = tonumber(redis.call('HGET', N, id .. ':a'))
    local dr, dc, dd = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
    if dr == 0 and dc == 0 and dd == 0 then
      return {{1}}
    end
    if dr ~= 0 then move(id, 'reserved', dr * amount) end
    if dc ~= 0 then move(id, 'committed', dc * amount) end
    if dd ~= 0 then move(id, 'in_doubt', dd * amount) end
    redis.call('ZREM', O, id)
    redis.call('HSET', N, id .. ':s', ARGV[i + 1], id .. ':u', now)
    if ARGV[4] ~= '' then
      redis.call('HSET', N, id .. ':n', ARGV[4])
    end
    return {{1}}
  end
end
return {{0}}
"#
    )
}

/// Totals, after settling expired reservations: `{1, committed, in_doubt, reserved}`.
pub fn totals() -> String {
    format!(
        r#"{MONTH_PRELUDE}
local t = redis.call('HMGET', T, 'committed', 'in_doubt', 'reserved')
return {{1, tonumber(t[1]) or 0, tonumber(t[2]) or 0, tonumber(t[3]) or 0}}
"#
    )
}

/// The totals of levels `ARGV[3..]` of the month, after settling expired reservations:
/// `{1, c1, d1, r1, c2, d2, r2, ...}`.
pub fn level_totals() -> String {
    format!(
        r#"{MONTH_PRELUDE}
local out = {{1}}
for i = 3, #ARGV do
  local t = redis.call('HMGET', T, ARGV[i] .. '#c', ARGV[i] .. '#d', ARGV[i] .. '#r')
  out[#out + 1] = tonumber(t[1]) or 0
  out[#out + 1] = tonumber(t[2]) or 0
  out[#out + 1] = tonumber(t[3]) or 0
end
return out
"#
    )
}

/// Take a place in a bounded set (`KEYS[1]`, a sorted set scored by each place's end):
/// `ARGV[1]` now, `ARGV[2]` member, `ARGV[3]` limit, `ARGV[4]` until. Answers `{1, 0}` when
/// taken (a member holding a place renews it), `{0, ms}` when full: the first place ends at
/// `ms`. The key expires a second after its last place (in the caller's clock), so idle sets
/// cost nothing.
pub const SLOT_TAKE: &str = r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[2]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[2])
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[1], math.max(math.floor(tonumber(last[2]) - tonumber(ARGV[1])), 0) + 1000)
  return {1, 0}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, math.floor(tonumber(first[2]))}
"#;

/// The epoch marker (`KEYS[1]`, a hash in the `{meta}` slot): creates it with id `ARGV[1]`
/// when `ARGV[2]` is `1` and it is absent, then answers `{id or false, accepted_ms or false,
/// server time in ms}`. Server time, so that replicas compare instants on one clock.
pub const EPOCH: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[2] == '1' and redis.call('HEXISTS', KEYS[1], 'id') == 0 then
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'created_ms', now)
end
return {redis.call('HGET', KEYS[1], 'id'), redis.call('HGET', KEYS[1], 'accepted_ms'), now}
"#;

/// An operator's acceptance of the ledger as it is (`KEYS[1]` the marker, `KEYS[2]` the log
/// list, both in `{meta}`): a new epoch `ARGV[1]`, stamped with the server's time, and a
/// record of who replaced what (`ARGV[2]` note). Answers the server time in ms.
pub const ACCEPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local previous = redis.call('HGET', KEYS[1], 'id') or ''
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'created_ms', now, 'accepted_ms', now, 'note', ARGV[2])
redis.call('RPUSH', KEYS[2], cjson.encode({at_ms = now, epoch = ARGV[1], previous = previous, note = ARGV[2]}))
return now
"#;

/// Compare-and-set of one breaker (`KEYS[1]`): writes `ARGV[2]` if the key still holds
/// `ARGV[1]` (empty: absent). Answers 1 when written, 0 when another replica won the race.
pub const BREAKER_CAS: &str = r#"
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"#;
