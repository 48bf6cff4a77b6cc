//! Random commands (every supported name, arguments from a hostile vocabulary) never panic
//! and never break the keyspace's indexes; replicas fed the propagation stay identical.

use bytes::Bytes;

use super::T;

const WORDS: &[&str] = &[
    "k1",
    "k2",
    "{k}3",
    "a",
    "b",
    "0",
    "1",
    "-1",
    "2",
    "10",
    "-100",
    "1.5",
    "inf",
    "-inf",
    "+inf",
    "nan",
    "(1",
    "[a",
    "(b",
    "-",
    "+",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "",
    "*",
    "?",
    "[",
    "\\",
    "NX",
    "XX",
    "GT",
    "LT",
    "CH",
    "INCR",
    "EX",
    "PX",
    "EXAT",
    "PXAT",
    "KEEPTTL",
    "GET",
    "PERSIST",
    "WITHSCORES",
    "LIMIT",
    "BYSCORE",
    "BYLEX",
    "REV",
    "COUNT",
    "MATCH",
    "TYPE",
    "LEFT",
    "RIGHT",
    "BEFORE",
    "AFTER",
    "RANK",
    "MAXLEN",
    "WEIGHTS",
    "AGGREGATE",
    "MIN",
    "MAX",
    "SUM",
    "REPLACE",
    "ABSTTL",
    "BIT",
    "BYTE",
    "WITHVALUES",
    "ENCODING",
    "DB",
    "4294967295",
    "536870911",
    // streams, geo, bitfield, sort, lcs
    "1-1",
    "2-0",
    "0-1",
    "1-*",
    "$",
    ">",
    "~",
    "=",
    "MINID",
    "NOMKSTREAM",
    "STREAMS",
    "GROUP",
    "g",
    "c1",
    "NOACK",
    "JUSTID",
    "FORCE",
    "IDLE",
    "TIME",
    "RETRYCOUNT",
    "LASTID",
    "CREATE",
    "SETID",
    "CREATECONSUMER",
    "DELCONSUMER",
    "DESTROY",
    "MKSTREAM",
    "ENTRIESREAD",
    "STREAM",
    "GROUPS",
    "CONSUMERS",
    "FULL",
    "13.36",
    "38.11",
    "m",
    "km",
    "WITHDIST",
    "WITHCOORD",
    "WITHHASH",
    "FROMMEMBER",
    "FROMLONLAT",
    "BYRADIUS",
    "BYBOX",
    "ASC",
    "DESC",
    "ANY",
    "STORE",
    "STOREDIST",
    "i8",
    "u4",
    "i64",
    "#2",
    "OVERFLOW",
    "SAT",
    "FAIL",
    "WRAP",
    "INCRBY",
    "SET",
    "ALPHA",
    "BY",
    "nosort",
    "IDX",
    "LEN",
    "MINMATCHLEN",
    "WITHMATCHLEN",
    "AND",
    "OR",
    "NOT",
    "ENCODING",
    "GETREG",
];

const KEYS: &[&str] = &["k1", "k2", "{k}3", "a"];
const SMALL: &[&str] = &["0", "1", "2", "-1", "a", "b", "c", "k1", "k2"];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as usize
    }
}

fn names() -> Vec<(&'static str, i32)> {
    crate::command::all()
        .iter()
        .map(|s| (s.name, s.arity))
        .filter(|(n, _)| super::super::Db::supports(n.as_bytes()))
        .collect()
}

#[test]
fn random_commands_never_panic_and_keep_indexes_consistent() {
    let names = names();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut p = T::new();
    let mut r = T::new();
    r.db.set_replica(true);
    let mut ok_replies = 0;
    let mut max_keys = 0;
    let mut propagated = 0;
    for step in 0..20_000 {
        let (name, arity) = names[rng.next() % names.len()];
        // Mostly the right number of arguments, sometimes a wrong one.
        let n = match (arity, rng.next() % 10) {
            (_, 0) => rng.next() % 7,
            (a, _) if a > 0 => a as usize - 1,
            (a, _) => (-a) as usize - 1 + rng.next() % 5,
        };
        let mut args = vec![Bytes::from_static(name.as_bytes())];
        for i in 0..n {
            // Mostly keys first, small numbers and members after, so commands do real work.
            let w = match (i, rng.next() % 4) {
                (0, 0..=2) => KEYS[rng.next() % KEYS.len()],
                (_, 0) => SMALL[rng.next() % SMALL.len()],
                _ => WORDS[rng.next() % WORDS.len()],
            };
            args.push(Bytes::from_static(w.as_bytes()));
        }
        // Skip huge-but-legal offsets that would allocate hundreds of MB.
        if matches!(name, "setrange" | "setbit" | "bitfield" | "bitfield_ro")
            && args.iter().any(|a| a.len() >= 9 && a[0].is_ascii_digit())
        {
            continue;
        }
        // PFSELFTEST is a fixed self-check of 100k insertions: too slow for every draw.
        if name == "pfselftest" {
            continue;
        }
        let reply = p.args(&args);
        if !reply.is_error() {
            ok_replies += 1;
        }
        p.now += (rng.next() % 3) as u64;
        if step % 500 == 0 {
            p.db.active_expire(p.now, 10);
        }
        r.now = p.now;
        for c in p.db.take_propagation() {
            propagated += 1;
            r.args(&c);
        }
        if step % 1000 == 0 {
            p.db.check_invariants();
            r.db.check_invariants();
            same(&p, &r);
            max_keys = max_keys.max(p.db.stats().keys);
        }
    }
    eprintln!("ok {ok_replies} propagated {propagated} max keys {max_keys}");
    assert!(
        ok_replies > 5_000 && propagated > 1_500,
        "the fuzz must exercise real work"
    );
    p.db.check_invariants();
    r.db.check_invariants();
    same(&p, &r);
}

/// Same keys with the same values and TTLs on primary and replica.
fn same(p: &T, r: &T) {
    let keys: Vec<Bytes> = p.db.entries().map(|(k, _)| k.to_bytes()).collect();
    assert_eq!(keys.len(), r.db.stats().keys);
    for k in keys {
        let (pe, re) = (p.db.peek(&k).unwrap(), r.db.peek(&k).unwrap());
        assert_eq!(pe.expire_at(), re.expire_at(), "{k:?}");
        assert_eq!(
            super::super::snapshot::encode_payload(&pe.data),
            super::super::snapshot::encode_payload(&re.data),
            "{k:?}"
        );
    }
}
