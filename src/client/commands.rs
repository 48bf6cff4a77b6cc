//! Typed helpers for the most used commands. Each is `cmd(NAME).arg(..).query()` with the
//! reply type the command's documentation gives; the generic ones let the caller pick the
//! value type (`Option<String>`, `Bytes`, `i64` ...): the reply type is their only type
//! parameter, so both `let v: Option<String> = client.get(k).await?` and
//! `client.get::<Option<String>>(k)` work. Expiry is a [`Duration`].

use std::time::Duration;

use super::Client;
use crate::error::Error;
use crate::types::{FromValue, ToArg};

/// A time to live as whole seconds (`secs` form) when it is one, else as milliseconds rounded
/// up (`millis` form), so a short positive duration never becomes 0.
pub(crate) fn expiry(
    ttl: Duration,
    secs: &'static str,
    millis: &'static str,
) -> (&'static str, u64) {
    if ttl.subsec_nanos() == 0 {
        (secs, ttl.as_secs())
    } else {
        let ms = ttl.as_nanos().div_ceil(1_000_000);
        (millis, u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

impl Client {
    /// `GET key`: the value, `None`-able when asked for as `Option<T>`.
    pub async fn get<T: FromValue>(&self, key: impl ToArg) -> Result<T, Error> {
        self.cmd("GET").arg(key).query().await
    }

    /// `SET key value`.
    pub async fn set<K: ToArg, V: ToArg>(&self, key: K, value: V) -> Result<(), Error> {
        self.cmd("SET").arg(key).arg(value).query().await
    }

    /// `SET key value EX seconds` (or `PX milliseconds` when `ttl` is not whole seconds): set
    /// with a time to live, e.g. `set_ex(k, v, Duration::from_secs(1800))`.
    ///
    /// # Errors
    /// A zero `ttl` is refused by the server (`ERR invalid expire time`).
    pub async fn set_ex<K: ToArg, V: ToArg>(
        &self,
        key: K,
        value: V,
        ttl: Duration,
    ) -> Result<(), Error> {
        let (unit, n) = expiry(ttl, "EX", "PX");
        self.cmd("SET")
            .arg(key)
            .arg(value)
            .arg(unit)
            .arg(n)
            .query()
            .await
    }

    /// `SET key value NX`: true when the key was set (it did not exist).
    pub async fn set_nx<K: ToArg, V: ToArg>(&self, key: K, value: V) -> Result<bool, Error> {
        let r: Option<crate::resp::Value> = self
            .cmd("SET")
            .arg(key)
            .arg(value)
            .arg("NX")
            .query()
            .await?;
        Ok(r.is_some())
    }

    /// `DEL key`: how many keys were removed (0 or 1).
    pub async fn del<K: ToArg>(&self, key: K) -> Result<i64, Error> {
        self.cmd("DEL").arg(key).query().await
    }

    /// `EXISTS key`.
    pub async fn exists<K: ToArg>(&self, key: K) -> Result<bool, Error> {
        self.cmd("EXISTS").arg(key).query().await
    }

    /// `EXPIRE key seconds` (or `PEXPIRE key milliseconds` when `ttl` is not whole seconds):
    /// true when a timeout was set (false when the key does not exist).
    pub async fn expire<K: ToArg>(&self, key: K, ttl: Duration) -> Result<bool, Error> {
        let (name, n) = expiry(ttl, "EXPIRE", "PEXPIRE");
        self.cmd(name).arg(key).arg(n).query().await
    }

    /// `TTL key`: seconds to live, -1 without expiry, -2 when the key does not exist.
    pub async fn ttl<K: ToArg>(&self, key: K) -> Result<i64, Error> {
        self.cmd("TTL").arg(key).query().await
    }

    /// `INCR key`: the new value.
    pub async fn incr<K: ToArg>(&self, key: K) -> Result<i64, Error> {
        self.cmd("INCR").arg(key).query().await
    }

    /// `INCRBY key delta`: the new value.
    pub async fn incr_by<K: ToArg>(&self, key: K, delta: i64) -> Result<i64, Error> {
        self.cmd("INCRBY").arg(key).arg(delta).query().await
    }

    /// `DECR key`: the new value.
    pub async fn decr<K: ToArg>(&self, key: K) -> Result<i64, Error> {
        self.cmd("DECR").arg(key).query().await
    }

    /// `HGET key field`.
    pub async fn hget<T: FromValue>(&self, key: impl ToArg, field: impl ToArg) -> Result<T, Error> {
        self.cmd("HGET").arg(key).arg(field).query().await
    }

    /// `HSET key field value`: how many fields were added (0 when updated).
    pub async fn hset<K: ToArg, F: ToArg, V: ToArg>(
        &self,
        key: K,
        field: F,
        value: V,
    ) -> Result<i64, Error> {
        self.cmd("HSET")
            .arg(key)
            .arg(field)
            .arg(value)
            .query()
            .await
    }

    /// `HDEL key field`: how many fields were removed.
    pub async fn hdel<K: ToArg, F: ToArg>(&self, key: K, field: F) -> Result<i64, Error> {
        self.cmd("HDEL").arg(key).arg(field).query().await
    }

    /// `HGETALL key`, typically into a `HashMap<String, String>`.
    pub async fn hgetall<T: FromValue>(&self, key: impl ToArg) -> Result<T, Error> {
        self.cmd("HGETALL").arg(key).query().await
    }

    /// `LPUSH key value`: the list's new length.
    pub async fn lpush<K: ToArg, V: ToArg>(&self, key: K, value: V) -> Result<i64, Error> {
        self.cmd("LPUSH").arg(key).arg(value).query().await
    }

    /// `RPUSH key value`: the list's new length.
    pub async fn rpush<K: ToArg, V: ToArg>(&self, key: K, value: V) -> Result<i64, Error> {
        self.cmd("RPUSH").arg(key).arg(value).query().await
    }

    /// `LPOP key`.
    pub async fn lpop<T: FromValue>(&self, key: impl ToArg) -> Result<T, Error> {
        self.cmd("LPOP").arg(key).query().await
    }

    /// `LLEN key`.
    pub async fn llen<K: ToArg>(&self, key: K) -> Result<i64, Error> {
        self.cmd("LLEN").arg(key).query().await
    }

    /// `LRANGE key start stop`.
    pub async fn lrange<T: FromValue>(
        &self,
        key: impl ToArg,
        start: i64,
        stop: i64,
    ) -> Result<T, Error> {
        self.cmd("LRANGE")
            .arg(key)
            .arg(start)
            .arg(stop)
            .query()
            .await
    }

    /// `SADD key member`: how many members were added.
    pub async fn sadd<K: ToArg, M: ToArg>(&self, key: K, member: M) -> Result<i64, Error> {
        self.cmd("SADD").arg(key).arg(member).query().await
    }

    /// `SREM key member`: how many members were removed.
    pub async fn srem<K: ToArg, M: ToArg>(&self, key: K, member: M) -> Result<i64, Error> {
        self.cmd("SREM").arg(key).arg(member).query().await
    }

    /// `SMEMBERS key`, typically into a `HashSet<String>` or `Vec<String>`.
    pub async fn smembers<T: FromValue>(&self, key: impl ToArg) -> Result<T, Error> {
        self.cmd("SMEMBERS").arg(key).query().await
    }

    /// `SISMEMBER key member`.
    pub async fn sismember<K: ToArg, M: ToArg>(&self, key: K, member: M) -> Result<bool, Error> {
        self.cmd("SISMEMBER").arg(key).arg(member).query().await
    }

    /// `ZADD key score member`: how many members were added.
    pub async fn zadd<K: ToArg, M: ToArg>(
        &self,
        key: K,
        score: f64,
        member: M,
    ) -> Result<i64, Error> {
        self.cmd("ZADD")
            .arg(key)
            .arg(score)
            .arg(member)
            .query()
            .await
    }

    /// `ZRANGE key start stop`: members by rank.
    pub async fn zrange<T: FromValue>(
        &self,
        key: impl ToArg,
        start: i64,
        stop: i64,
    ) -> Result<T, Error> {
        self.cmd("ZRANGE")
            .arg(key)
            .arg(start)
            .arg(stop)
            .query()
            .await
    }

    /// `ZSCORE key member`.
    pub async fn zscore<K: ToArg, M: ToArg>(
        &self,
        key: K,
        member: M,
    ) -> Result<Option<f64>, Error> {
        self.cmd("ZSCORE").arg(key).arg(member).query().await
    }

    /// `PING` to one primary: `PONG` when the cluster answers.
    pub async fn ping(&self) -> Result<String, Error> {
        self.cmd("PING").query().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_uses_seconds_when_whole_else_milliseconds_rounded_up() {
        let e = |d| expiry(d, "EX", "PX");
        assert_eq!(e(Duration::from_secs(1800)), ("EX", 1800));
        assert_eq!(e(Duration::from_millis(1500)), ("PX", 1500));
        assert_eq!(e(Duration::from_micros(1)), ("PX", 1));
        assert_eq!(e(Duration::ZERO), ("EX", 0));
    }
}
