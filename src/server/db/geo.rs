//! Geo commands on sorted sets, with Redis 7.0's geohash (52-bit interleaved scores), search
//! areas (a cell and its 8 neighbours at a step estimated from the radius), haversine
//! distance on a 6372797.560856 m sphere, and reply formatting (`%.4f` distances, 17-decimal
//! coordinates), so results and their order equal redis-server's.

use bytes::Bytes;

use super::util::{eq, err, float_arg, int_arg, parse_f64, tri, zset_ref, SYNTAX};
use super::{zset, Data, Db, ExecCtx, ZSet};
use crate::resp::Value;

use super::geohash::*;

/// One search hit.
struct Point {
    member: Bytes,
    score: f64,
    lon: f64,
    lat: f64,
    dist: f64,
}

/// Scan the shape's cells (`limit` > 0 stops early, for ANY).
fn scan(z: &ZSet, shape: &Shape, limit: usize) -> Vec<Point> {
    let mut out = Vec::new();
    let cells = shape.cells();
    // Redis skips a neighbour equal to the last one processed, except when that was the
    // centre (its `last_processed` index 0 doubles as "none").
    let mut last: Option<Hash> = None;
    for (i, cell) in cells.iter().enumerate() {
        let Some(cell) = cell else { continue };
        if last.is_some_and(|l| l == *cell) {
            continue;
        }
        if limit > 0 && out.len() >= limit {
            break;
        }
        let min = align52(*cell) as f64;
        let max = align52(Hash {
            bits: cell.bits + 1,
            step: cell.step,
        }) as f64;
        for (m, s) in z.iter_from(min) {
            if s >= max {
                break;
            }
            let (x, y) = decode_score(s);
            if let Some(d) = shape.contains(x, y) {
                out.push(Point {
                    member: m.clone(),
                    score: s,
                    lon: x,
                    lat: y,
                    dist: d,
                });
            }
            if limit > 0 && out.len() >= limit {
                break;
            }
        }
        last = (i != 0).then_some(*cell);
    }
    out
}

fn lonlat(a: &[Bytes]) -> Result<(f64, f64), Value> {
    let x = float_arg(&a[0])?;
    let y = float_arg(&a[1])?;
    if !(LON_MIN..=LON_MAX).contains(&x) || !(LAT_MIN..=LAT_MAX).contains(&y) {
        return Err(Value::error(format!(
            "ERR invalid longitude,latitude pair {x:.6},{y:.6}"
        )));
    }
    Ok((x, y))
}

fn unit(u: &[u8]) -> Result<f64, Value> {
    if eq(u, b"m") {
        Ok(1.0)
    } else if eq(u, b"km") {
        Ok(1000.0)
    } else if eq(u, b"ft") {
        Ok(0.3048)
    } else if eq(u, b"mi") {
        Ok(1609.34)
    } else {
        Err(err(
            "ERR unsupported unit provided. please use M, KM, FT, MI",
        ))
    }
}

fn dist_reply(d: f64) -> Value {
    Value::BulkString(Bytes::from(format!("{d:.4}")))
}

/// `addReplyHumanLongDouble`: 17 decimals with trailing zeros trimmed (Redis' bytes
/// exactly), a bulk string for RESP2 and a double for RESP3.
fn human(v: f64, resp3: bool) -> Value {
    if resp3 {
        return crate::resp::human_double(v);
    }
    Value::BulkString(Bytes::from(crate::resp::format_human(v)))
}

pub(crate) fn geoadd(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let (mut nx, mut xx) = (false, false);
    let mut i = 2;
    while i < a.len() {
        if eq(&a[i], b"nx") {
            nx = true;
        } else if eq(&a[i], b"xx") {
            xx = true;
        } else if !eq(&a[i], b"ch") {
            break;
        }
        i += 1;
    }
    if (a.len() - i) % 3 != 0 || (xx && nx) {
        return err(SYNTAX);
    }
    let mut z = Vec::with_capacity(i + (a.len() - i) / 3 * 2);
    z.push(Bytes::from_static(b"zadd"));
    z.extend(a[1..i].iter().cloned());
    for t in a[i..].chunks(3) {
        let (x, y) = tri!(lonlat(t));
        let bits = align52(encode(x, y, STEP_MAX));
        z.push(super::util::u64_bytes(bits));
        z.push(t[2].clone());
    }
    zset::zadd(db, &z, c)
}

pub(crate) fn geopos(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let z = tri!(zset_ref(db, &a[1], c.now_ms));
    Value::Array(
        a[2..]
            .iter()
            .map(|m| match z.and_then(|z| z.score(m)) {
                None => Value::NullArray,
                Some(s) => {
                    let (x, y) = decode_score(s);
                    Value::Array(vec![human(x, c.resp3), human(y, c.resp3)])
                }
            })
            .collect(),
    )
}

pub(crate) fn geohash(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    const ALPHA: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let z = tri!(zset_ref(db, &a[1], c.now_ms));
    Value::Array(
        a[2..]
            .iter()
            .map(|m| match z.and_then(|z| z.score(m)) {
                None => Value::Null,
                Some(s) => {
                    let (x, y) = decode_score(s);
                    let h = encode_in((-180.0, 180.0), (-90.0, 90.0), x, y, 26);
                    let mut buf = [0u8; 11];
                    for (i, b) in buf.iter_mut().enumerate() {
                        let idx = if i == 10 {
                            0
                        } else {
                            (h.bits >> (52 - (i + 1) * 5)) & 0x1f
                        };
                        *b = ALPHA[idx as usize];
                    }
                    Value::BulkString(Bytes::copy_from_slice(&buf))
                }
            })
            .collect(),
    )
}

pub(crate) fn geodist(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let conv = match a.len() {
        5 => tri!(unit(&a[4])),
        n if n > 5 => return err(SYNTAX),
        _ => 1.0,
    };
    let Some(z) = tri!(zset_ref(db, &a[1], c.now_ms)) else {
        return Value::Null;
    };
    let (Some(s1), Some(s2)) = (z.score(&a[2]), z.score(&a[3])) else {
        return Value::Null;
    };
    let (p1, p2) = (decode_score(s1), decode_score(s2));
    dist_reply(distance(p1.0, p1.1, p2.0, p2.1) / conv)
}

/// Which command runs the search.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Radius { ro: bool },
    ByMember { ro: bool },
    Search,
    SearchStore,
}

pub(crate) fn georadius(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    generic(db, a, c, Kind::Radius { ro: false })
}
pub(crate) fn georadius_ro(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    generic(db, a, c, Kind::Radius { ro: true })
}
pub(crate) fn georadiusbymember(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    generic(db, a, c, Kind::ByMember { ro: false })
}
pub(crate) fn georadiusbymember_ro(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    generic(db, a, c, Kind::ByMember { ro: true })
}
pub(crate) fn geosearch(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    generic(db, a, c, Kind::Search)
}
pub(crate) fn geosearchstore(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    generic(db, a, c, Kind::SearchStore)
}

fn radius_arg(a: &[Bytes]) -> Result<(f64, f64), Value> {
    let r = parse_f64(&a[0]).ok_or_else(|| err("ERR need numeric radius"))?;
    if r < 0.0 {
        return Err(err("ERR radius cannot be negative"));
    }
    Ok((r, unit(&a[1])?))
}

fn member_pos(z: &ZSet, m: &[u8]) -> Result<(f64, f64), Value> {
    z.score(m)
        .map(decode_score)
        .ok_or_else(|| err("ERR could not decode requested zset member"))
}

/// `georadiusGeneric`.
fn generic(db: &mut Db, a: &[Bytes], c: &ExecCtx, kind: Kind) -> Value {
    let src = if kind == Kind::SearchStore { 2 } else { 1 };
    let z: Option<&ZSet> = tri!(zset_ref(db, &a[src], c.now_ms)).map(|z| &**z);
    let search = matches!(kind, Kind::Search | Kind::SearchStore);
    let mut shape = Shape {
        lon: 0.0,
        lat: 0.0,
        conv: 1.0,
        size: Ok(0.0),
    };
    let base = match kind {
        Kind::Radius { .. } => {
            let (x, y) = tri!(lonlat(&a[2..4]));
            let (r, conv) = tri!(radius_arg(&a[4..6]));
            shape = Shape {
                lon: x,
                lat: y,
                conv,
                size: Ok(r),
            };
            6
        }
        Kind::ByMember { .. } => {
            if let Some(z) = z {
                let (x, y) = tri!(member_pos(z, &a[2]));
                let (r, conv) = tri!(radius_arg(&a[3..5]));
                shape = Shape {
                    lon: x,
                    lat: y,
                    conv,
                    size: Ok(r),
                };
            }
            5
        }
        Kind::Search => 2,
        Kind::SearchStore => 3,
    };
    let ro = matches!(
        kind,
        Kind::Radius { ro: true } | Kind::ByMember { ro: true }
    );
    let mut store: Option<Bytes> = (kind == Kind::SearchStore).then(|| a[1].clone());
    let (mut storedist, mut withdist, mut withhash, mut withcoord, mut any) =
        (false, false, false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut sort = 0; // 0 none, 1 asc, 2 desc
    let mut count: i64 = 0;
    let rest = &a[base.min(a.len())..];
    let mut i = 0;
    while i < rest.len() {
        let arg = &rest[i];
        let left = rest.len() - i - 1;
        if eq(arg, b"withdist") {
            withdist = true;
        } else if eq(arg, b"withhash") {
            withhash = true;
        } else if eq(arg, b"withcoord") {
            withcoord = true;
        } else if eq(arg, b"any") {
            any = true;
        } else if eq(arg, b"asc") {
            sort = 1;
        } else if eq(arg, b"desc") {
            sort = 2;
        } else if eq(arg, b"count") && left >= 1 {
            count = tri!(int_arg(&rest[i + 1]));
            if count <= 0 {
                return err("ERR COUNT must be > 0");
            }
            i += 1;
        } else if (eq(arg, b"store") || eq(arg, b"storedist")) && left >= 1 && !ro && !search {
            store = Some(rest[i + 1].clone());
            storedist = eq(arg, b"storedist");
            i += 1;
        } else if eq(arg, b"storedist") && kind == Kind::SearchStore {
            storedist = true;
        } else if eq(arg, b"frommember") && left >= 1 && search && !fromloc {
            if let Some(z) = z {
                let (x, y) = tri!(member_pos(z, &rest[i + 1]));
                shape.lon = x;
                shape.lat = y;
            }
            frommember = true;
            i += 1;
        } else if eq(arg, b"fromlonlat") && left >= 2 && search && !frommember {
            let (x, y) = tri!(lonlat(&rest[i + 1..i + 3]));
            shape.lon = x;
            shape.lat = y;
            fromloc = true;
            i += 2;
        } else if eq(arg, b"byradius") && left >= 2 && search && !bybox {
            let (r, conv) = tri!(radius_arg(&rest[i + 1..i + 3]));
            shape.size = Ok(r);
            shape.conv = conv;
            byradius = true;
            i += 2;
        } else if eq(arg, b"bybox") && left >= 3 && search && !byradius {
            let w = tri!(parse_f64(&rest[i + 1]).ok_or_else(|| err("ERR need numeric width")));
            let h = tri!(parse_f64(&rest[i + 2]).ok_or_else(|| err("ERR need numeric height")));
            if h < 0.0 || w < 0.0 {
                return err("ERR height or width cannot be negative");
            }
            shape.conv = tri!(unit(&rest[i + 3]));
            shape.size = Err((w, h));
            bybox = true;
            i += 3;
        } else {
            return err(SYNTAX);
        }
        i += 1;
    }
    if store.is_some() && (withdist || withhash || withcoord) {
        return Value::error(format!(
            "ERR {} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            if kind == Kind::SearchStore {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            }
        ));
    }
    let name = String::from_utf8_lossy(&a[0]);
    if search && !(frommember || fromloc) {
        return Value::error(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        ));
    }
    if search && !(byradius || bybox) {
        return Value::error(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {name}"
        ));
    }
    if any && count == 0 {
        return err("ERR the ANY argument requires COUNT argument");
    }
    let Some(z) = z else {
        if let Some(dst) = store {
            if db.exists(&dst, c.now_ms) {
                db.remove(&dst);
                db.prop_args(&[Bytes::from_static(b"DEL"), dst]);
            }
            return Value::Integer(0);
        }
        return Value::Array(Vec::new());
    };
    if count != 0 && sort == 0 && !any {
        sort = 1;
    }
    let limit = if any { count as usize } else { 0 };
    let mut pts = scan(z, &shape, limit);
    if pts.is_empty() && store.is_none() {
        return Value::Array(Vec::new());
    }
    if sort != 0 {
        let desc = sort == 2;
        pts.sort_by(|x, y| {
            let o = x
                .dist
                .partial_cmp(&y.dist)
                .unwrap_or(std::cmp::Ordering::Equal);
            if desc {
                o.reverse()
            } else {
                o
            }
        });
    }
    let n = if count == 0 {
        pts.len()
    } else {
        pts.len().min(count as usize)
    };
    pts.truncate(n);
    let Some(dst) = store else {
        let opts = usize::from(withdist) + usize::from(withhash) + usize::from(withcoord);
        return Value::Array(
            pts.into_iter()
                .map(|p| {
                    let m = Value::BulkString(p.member);
                    if opts == 0 {
                        return m;
                    }
                    let mut v = vec![m];
                    if withdist {
                        v.push(dist_reply(p.dist / shape.conv));
                    }
                    if withhash {
                        v.push(Value::Integer(p.score as i64));
                    }
                    if withcoord {
                        v.push(Value::Array(vec![
                            human(p.lon, c.resp3),
                            human(p.lat, c.resp3),
                        ]));
                    }
                    Value::Array(v)
                })
                .collect(),
        );
    };
    if n > 0 {
        let mut out = ZSet::default();
        for p in pts {
            let s = if storedist {
                p.dist / shape.conv
            } else {
                p.score
            };
            out.insert(p.member, s);
        }
        db.insert(&dst, Data::Zset(Box::new(out)), None);
        db.prop_args(a);
    } else if db.exists(&dst, c.now_ms) {
        db.remove(&dst);
        db.prop_args(&[Bytes::from_static(b"DEL"), dst]);
    }
    Value::Integer(n as i64)
}
