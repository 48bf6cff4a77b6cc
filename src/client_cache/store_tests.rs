//! The store alone: hits, the race with invalidations, coalescing, every drop, budgets.

use std::sync::atomic::AtomicBool;

use super::super::size::BYTES_SHARED;
use super::*;

/// A connection as storing sees it.
struct Conn(u64, AtomicBool);

impl Served for Conn {
    fn id(&self) -> u64 {
        self.0
    }
    fn is_closed(&self) -> bool {
        self.1.load(Ordering::SeqCst)
    }
}

fn conn(id: u64) -> Conn {
    Conn(id, AtomicBool::new(false))
}

fn mem(max_bytes: usize) -> Arc<Memory> {
    Arc::new(Memory::new(max_bytes, usize::MAX, Duration::from_secs(60)))
}

fn lead(m: &Arc<Memory>, key: &str) -> Ticket {
    match m.lookup(
        key.as_bytes(),
        b"GET",
        crate::slot::key_slot(key.as_bytes()),
    ) {
        Lookup::Lead(t) => t,
        _ => panic!("expected a miss that leads for {key}"),
    }
}

fn hit(m: &Arc<Memory>, key: &str) -> Option<Value> {
    match m.lookup(
        key.as_bytes(),
        b"GET",
        crate::slot::key_slot(key.as_bytes()),
    ) {
        Lookup::Hit(v) => Some(v),
        Lookup::Lead(_) | Lookup::Follow(_) => None,
    }
}

fn store(m: &Arc<Memory>, key: &str, value: &str, c: &Conn) -> bool {
    lead(m, key).finish(&Value::bulk(value), Some(c))
}

#[test]
fn a_stored_reply_is_a_hit_until_invalidated() {
    let m = mem(1 << 20);
    let c = conn(1);
    assert!(store(&m, "k", "v1", &c));
    assert_eq!(hit(&m, "k"), Some(Value::bulk("v1")));
    m.invalidate_key(b"k");
    assert_eq!(hit(&m, "k"), None);
    assert_eq!(m.counters.invalidations.load(Ordering::Relaxed), 1);
    assert_eq!(m.counters.hits.load(Ordering::Relaxed), 1);
}

#[test]
fn an_invalidation_during_the_read_keeps_its_reply_out() {
    let m = mem(1 << 20);
    let c = conn(1);
    let t = lead(&m, "k");
    m.invalidate_key(b"k");
    assert!(!t.finish(&Value::bulk("old"), Some(&c)));
    assert_eq!(m.entries(), 0);
    assert_eq!(m.bytes(), 0);
    // The next read leads again and stores.
    assert!(store(&m, "k", "new", &c));
    assert_eq!(hit(&m, "k"), Some(Value::bulk("new")));
}

#[test]
fn a_slot_changing_owner_or_the_connection_closing_during_the_read_keeps_it_out() {
    let m = mem(1 << 20);
    let c = conn(1);
    let t = lead(&m, "k");
    m.drop_slots(&[crate::slot::key_slot(b"k")]);
    assert!(!t.finish(&Value::bulk("v"), Some(&c)));
    let t = lead(&m, "k");
    c.1.store(true, Ordering::SeqCst);
    assert!(!t.finish(&Value::bulk("v"), Some(&c)));
    // Through no tracking connection (an ASK): not stored either.
    assert!(!lead(&m, "k").finish(&Value::bulk("v"), None));
    assert_eq!(m.entries(), 0);
}

#[tokio::test]
async fn concurrent_misses_share_one_read() {
    let m = mem(1 << 20);
    let c = conn(1);
    let t = lead(&m, "k");
    let Lookup::Follow(rx) = m.lookup(b"k", b"GET", 0) else {
        panic!("second miss should follow");
    };
    assert!(t.finish(&Value::bulk("v"), Some(&c)));
    assert_eq!(rx.await.unwrap(), Value::bulk("v"));
    // A leader that fails (dropped) releases its followers to read alone.
    m.invalidate_key(b"k");
    let t = lead(&m, "k");
    let Lookup::Follow(rx) = m.lookup(b"k", b"GET", 0) else {
        panic!("second miss should follow");
    };
    drop(t);
    assert!(rx.await.is_err());
    assert_eq!(m.entries(), 0);
}

#[test]
fn connection_and_slot_drops_take_only_theirs() {
    let m = mem(1 << 20);
    let (a, b) = (conn(1), conn(2));
    assert!(store(&m, "x", "1", &a));
    assert!(store(&m, "y", "2", &b));
    m.drop_conn(1);
    assert_eq!(hit(&m, "x"), None);
    assert_eq!(hit(&m, "y"), Some(Value::bulk("2")));
    assert!(store(&m, "x", "1", &a));
    m.drop_slots(&[crate::slot::key_slot(b"y")]);
    assert_eq!(hit(&m, "y"), None);
    assert_eq!(hit(&m, "x"), Some(Value::bulk("1")));
    m.flush_conn(1);
    assert_eq!(hit(&m, "x"), None);
    assert_eq!(m.entries(), 0);
    assert_eq!(m.bytes(), 0);
}

#[test]
fn entries_expire_after_the_ttl() {
    let m = Arc::new(Memory::new(1 << 20, usize::MAX, Duration::ZERO));
    assert!(store(&m, "k", "v", &conn(1)));
    assert_eq!(hit(&m, "k"), None);
    assert_eq!(m.entries(), 0);
}

#[test]
fn bytes_and_entries_stay_within_budget_and_add_up() {
    let max = 200 * 1024;
    let m = mem(max);
    let c = conn(1);
    for i in 0..20_000 {
        store(&m, &format!("key:{i}"), &"x".repeat(i % 300), &c);
        assert!(m.bytes() <= max, "{} > {max} after {i}", m.bytes());
    }
    assert!(m.counters.evictions.load(Ordering::Relaxed) > 0);
    // The totals are the sums of what each record is charged.
    let (mut bytes, mut entries) = (0, 0);
    for s in m.shards.iter() {
        let s = lock(s);
        for (k, r) in s.map.iter() {
            assert_eq!(r.bytes, weigh(k.len(), r));
            bytes += r.bytes;
            entries += r.items.len();
        }
    }
    assert_eq!(bytes, m.bytes());
    assert_eq!(entries, m.entries());
    // A cache this small still holds a useful share (eviction does not empty it).
    assert!(m.bytes() > max / 2, "{}", m.bytes());

    let m = Arc::new(Memory::new(1 << 20, 100, Duration::from_secs(60)));
    for i in 0..1000 {
        store(&m, &format!("k{i}"), "v", &c);
    }
    assert!(m.entries() <= 100, "{}", m.entries());
}

#[test]
fn a_value_bigger_than_the_budget_is_not_kept() {
    let m = mem(4096);
    assert!(!store(&m, "big", &"x".repeat(10_000), &conn(1)));
    assert_eq!(m.bytes(), 0);
    assert_eq!(m.entries(), 0);
}

#[test]
fn compact_copies_and_heap_size_counts_nested_values() {
    let v = Value::Array(vec![Value::bulk("abc"), Value::Integer(1)]);
    let c = compact(&v);
    assert_eq!(c, v);
    assert_eq!(
        heap_size(&c),
        2 * size_of::<Value>() + ALLOC_OVERHEAD + 3 + BYTES_SHARED
    );
}
