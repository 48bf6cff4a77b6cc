//! Command name -> handler and arity, without allocating: the name is lowercased into a stack
//! buffer and matched as a byte string.

use bytes::Bytes;

use super::{hash, keys, list, set, strings, zrange, zset, Db, ExecCtx};
use crate::resp::Value;

/// A command implementation.
pub(super) type Handler = fn(&mut Db, &[Bytes], &ExecCtx) -> Value;

/// The handler and Redis arity (positive: exact; negative: at least) of `name`, any case.
pub(super) fn lookup(name: &[u8]) -> Option<(Handler, i32)> {
    let mut buf = [0u8; 20];
    if name.len() > buf.len() {
        return None;
    }
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    let found: (Handler, i32) = match &*lower {
        // strings
        b"get" => (strings::get, 2),
        b"set" => (strings::set, -3),
        b"mget" => (strings::mget, -2),
        b"mset" => (strings::mset, -3),
        b"msetnx" => (strings::msetnx, -3),
        b"incr" => (strings::incr, 2),
        b"decr" => (strings::decr, 2),
        b"incrby" => (strings::incrby, 3),
        b"decrby" => (strings::decrby, 3),
        b"incrbyfloat" => (strings::incrbyfloat, 3),
        b"append" => (strings::append, 3),
        b"strlen" => (strings::strlen, 2),
        b"getdel" => (strings::getdel, 2),
        b"getex" => (strings::getex, -2),
        b"setnx" => (strings::setnx, 3),
        b"setex" => (strings::setex, 4),
        b"psetex" => (strings::psetex, 4),
        b"getrange" => (strings::getrange, 4),
        b"substr" => (strings::getrange, 4),
        b"setrange" => (strings::setrange, 4),
        b"getset" => (strings::getset, 3),
        // keys
        b"del" => (keys::del, -2),
        b"unlink" => (keys::del, -2),
        b"exists" => (keys::exists, -2),
        b"touch" => (keys::touch, -2),
        b"expire" => (keys::expire, -3),
        b"pexpire" => (keys::pexpire, -3),
        b"expireat" => (keys::expireat, -3),
        b"pexpireat" => (keys::pexpireat, -3),
        b"expiretime" => (keys::expiretime, 2),
        b"pexpiretime" => (keys::pexpiretime, 2),
        b"ttl" => (keys::ttl, 2),
        b"pttl" => (keys::pttl, 2),
        b"persist" => (keys::persist, 2),
        b"type" => (keys::type_cmd, 2),
        b"rename" => (keys::rename, 3),
        b"renamenx" => (keys::renamenx, 3),
        b"copy" => (keys::copy, -3),
        b"keys" => (keys::keys, 2),
        b"scan" => (keys::scan, -2),
        b"dbsize" => (keys::dbsize, 1),
        b"flushall" => (keys::flushall, -1),
        b"flushdb" => (keys::flushall, -1),
        b"randomkey" => (keys::randomkey, 1),
        b"object" => (keys::object, -2),
        b"dump" => (keys::dump, 2),
        b"restore" => (keys::restore, -4),
        // hashes
        b"hset" => (hash::hset, -4),
        b"hmset" => (hash::hmset, -4),
        b"hsetnx" => (hash::hsetnx, 4),
        b"hget" => (hash::hget, 3),
        b"hmget" => (hash::hmget, -3),
        b"hgetall" => (hash::hgetall, 2),
        b"hdel" => (hash::hdel, -3),
        b"hexists" => (hash::hexists, 3),
        b"hlen" => (hash::hlen, 2),
        b"hkeys" => (hash::hkeys, 2),
        b"hvals" => (hash::hvals, 2),
        b"hincrby" => (hash::hincrby, 4),
        b"hincrbyfloat" => (hash::hincrbyfloat, 4),
        b"hstrlen" => (hash::hstrlen, 3),
        b"hscan" => (hash::hscan, -3),
        b"hrandfield" => (hash::hrandfield, -2),
        // lists
        b"lpush" => (list::lpush, -3),
        b"rpush" => (list::rpush, -3),
        b"lpushx" => (list::lpushx, -3),
        b"rpushx" => (list::rpushx, -3),
        b"lpop" => (list::lpop, -2),
        b"rpop" => (list::rpop, -2),
        b"llen" => (list::llen, 2),
        b"lrange" => (list::lrange, 4),
        b"lindex" => (list::lindex, 3),
        b"lset" => (list::lset, 4),
        b"lrem" => (list::lrem, 4),
        b"ltrim" => (list::ltrim, 4),
        b"linsert" => (list::linsert, 5),
        b"lpos" => (list::lpos, -3),
        b"lmove" => (list::lmove, 5),
        b"rpoplpush" => (list::rpoplpush, 3),
        // sets
        b"sadd" => (set::sadd, -3),
        b"srem" => (set::srem, -3),
        b"smembers" => (set::smembers, 2),
        b"sismember" => (set::sismember, 3),
        b"smismember" => (set::smismember, -3),
        b"scard" => (set::scard, 2),
        b"spop" => (set::spop, -2),
        b"srandmember" => (set::srandmember, -2),
        b"sinter" => (set::sinter, -2),
        b"sintercard" => (set::sintercard, -3),
        b"sunion" => (set::sunion, -2),
        b"sdiff" => (set::sdiff, -2),
        b"sinterstore" => (set::sinterstore, -3),
        b"sunionstore" => (set::sunionstore, -3),
        b"sdiffstore" => (set::sdiffstore, -3),
        b"smove" => (set::smove, 4),
        b"sscan" => (set::sscan, -3),
        // sorted sets
        b"zadd" => (zset::zadd, -4),
        b"zrem" => (zset::zrem, -3),
        b"zscore" => (zset::zscore, 3),
        b"zmscore" => (zset::zmscore, -3),
        b"zincrby" => (zset::zincrby, 4),
        b"zcard" => (zset::zcard, 2),
        b"zcount" => (zrange::zcount, 4),
        b"zlexcount" => (zrange::zlexcount, 4),
        b"zrange" => (zrange::zrange, -4),
        b"zrangebyscore" => (zrange::zrangebyscore, -4),
        b"zrevrangebyscore" => (zrange::zrevrangebyscore, -4),
        b"zrevrange" => (zrange::zrevrange, -4),
        b"zrangebylex" => (zrange::zrangebylex, -4),
        b"zrevrangebylex" => (zrange::zrevrangebylex, -4),
        b"zrank" => (zset::zrank, 3),
        b"zrevrank" => (zset::zrevrank, 3),
        b"zpopmin" => (zset::zpopmin, -2),
        b"zpopmax" => (zset::zpopmax, -2),
        b"zremrangebyscore" => (zrange::zremrangebyscore, 4),
        b"zremrangebyrank" => (zrange::zremrangebyrank, 4),
        b"zremrangebylex" => (zrange::zremrangebylex, 4),
        b"zunionstore" => (zrange::zunionstore, -4),
        b"zinterstore" => (zrange::zinterstore, -4),
        b"zrandmember" => (zrange::zrandmember, -2),
        b"zscan" => (zrange::zscan, -3),
        _ => return None,
    };
    Some(found)
}
