//! The append: one Lua script, run atomically by Redis, takes the next id from a counter and adds
//! the message to the stream under that id.
//!
//! Why a script: the id must be a plain integer that every node agrees on (a cursor valid on any
//! node), and id order must be stream order. `XADD *` gives ids like `1700000000000-0` that are
//! not the chat's 1, 2, 3; `INCR` then `XADD` as two commands could interleave between nodes
//! (node A takes 7, node B takes 8 and adds it first: the stream would hold 8 before 7); and
//! `MULTI` cannot feed `INCR`'s answer into the `XADD` of the same transaction. A script is one
//! step for Redis: no other command runs between its `INCR` and its `XADD`, so stream entry `N-0`
//! is message N and entries come in id order. It is loaded once (`SCRIPT LOAD`) and called by its
//! SHA1 (`EVALSHA`), so each append sends the message, not the script.
//!
//! Ids never go backwards: the caller passes the newest id it has seen (`floor`), and a counter
//! below it (Redis restarted without persistence and lost the counter) is raised past it; a
//! counter missing while the stream survived is raised past the stream's last entry.
//!
//! Retention: `MAXLEN ~ capacity` trims whole stream nodes, so Redis keeps at least `--capacity`
//! messages (a little more), at a fraction of the cost of exact trimming.

use redis::Cmd;

/// KEYS: stream, counter. ARGV: floor, capacity, name, message, microseconds since the epoch.
/// Returns the message's id.
pub const APPEND: &str = r"
local id = redis.call('INCR', KEYS[2])
local floor = tonumber(ARGV[1])
if id == 1 then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #last > 0 then
    local last_id = tonumber(string.match(last[1][1], '^(%d+)'))
    if last_id > floor then floor = last_id end
  end
end
if id <= floor then
  id = floor + 1
  redis.call('SET', KEYS[2], id)
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], string.format('%d-0', id),
  'n', ARGV[3], 'm', ARGV[4], 't', ARGV[5])
return id
";

/// The keys nodes share: `PREFIX:log` (the stream) and `PREFIX:next-id` (the counter).
#[derive(Clone, Debug)]
pub struct Keys {
    pub stream: String,
    pub counter: String,
    /// When this chat's log was first used (ms since the epoch): the nodes' shared ETag epoch.
    pub epoch: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            stream: format!("{prefix}:log"),
            counter: format!("{prefix}:next-id"),
            epoch: format!("{prefix}:epoch"),
        }
    }
}

/// `SET epoch now NX` then `GET epoch`, as one script: the first node's start time, for all.
pub fn epoch(keys: &Keys, now_ms: u64) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg("redis.call('SET', KEYS[1], ARGV[1], 'NX') return redis.call('GET', KEYS[1])")
        .arg(1)
        .arg(&keys.epoch)
        .arg(now_ms);
    cmd
}

/// Raises the counter to at least `newest` (the newest id a node holds), run by each node's
/// follower after it lost Redis: if Redis came back empty (no persistence), the next id is above
/// every id a running node holds, whichever node appends first, one that started empty included.
pub fn raise_counter(keys: &Keys, newest: u64) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(
        "if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then \
         redis.call('SET', KEYS[1], ARGV[1]) end return 1",
    )
    .arg(1)
    .arg(&keys.counter)
    .arg(newest);
    cmd
}

pub fn load() -> Cmd {
    let mut cmd = redis::cmd("SCRIPT");
    cmd.arg("LOAD").arg(APPEND);
    cmd
}

pub struct AppendArgs<'a> {
    pub floor: u64,
    pub capacity: usize,
    pub name: &'a str,
    pub message: &'a str,
    pub micros: u64,
}

pub fn append(sha: &str, keys: &Keys, args: &AppendArgs<'_>) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(sha)
        .arg(2)
        .arg(&keys.stream)
        .arg(&keys.counter)
        .arg(args.floor)
        .arg(args.capacity)
        .arg(args.name)
        .arg(args.message)
        .arg(args.micros);
    cmd
}
