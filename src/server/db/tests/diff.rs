//! Developer tool, not a test of its own: replays commands from `$DB_DIFF_IN` (one command per
//! line, words split on spaces; a line starting with `3 ` is sent as RESP3) and writes each
//! reply's wire bytes to `$DB_DIFF_OUT`, to diff against a real redis-server. Run with
//! `DB_DIFF_IN=cmds DB_DIFF_OUT=out cargo test --lib diff_against_file -- --ignored`.

use bytes::{Bytes, BytesMut};

use crate::resp::{encode_value, Protocol};
use crate::server::db::{Db, ExecCtx};

#[test]
#[ignore]
fn diff_against_file() {
    let (Ok(input), Ok(output)) = (std::env::var("DB_DIFF_IN"), std::env::var("DB_DIFF_OUT"))
    else {
        return;
    };
    let text = std::fs::read_to_string(input).unwrap();
    let mut db = Db::new();
    let mut out = String::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (resp3, cmd) = match line.strip_prefix("3 ") {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let args: Vec<Bytes> = cmd
            .split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let v = db.execute(&args, &ExecCtx { now_ms, resp3 });
        let mut buf = BytesMut::new();
        let proto = if resp3 {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        };
        encode_value(&mut buf, &v, proto);
        let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
        out.push_str(&format!("{line} => {hex}\n"));
    }
    std::fs::write(output, out).unwrap();
}

/// Developer tool: engine cost per GET/SET/INCR without the network, e.g.
/// `NKEYS=1 cargo test --release --lib hot_path_speed -- --ignored --nocapture`.
/// Prints numbers only; nothing is asserted about time.
#[test]
#[ignore]
fn hot_path_speed() {
    let mut db = Db::new();
    db.set_propagation(false);
    let ctx = ExecCtx {
        now_ms: 1,
        resp3: false,
    };
    let nkeys: usize = std::env::var("NKEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let keys: Vec<Bytes> = (0..nkeys)
        .map(|i| Bytes::from(format!("key:{i:012}")))
        .collect();
    let val = Bytes::from(vec![b'x'; 3]);
    let (set, get, incr) = (Bytes::from("SET"), Bytes::from("GET"), Bytes::from("INCR"));
    let n = 1_000_000;
    let t = std::time::Instant::now();
    for i in 0..n {
        db.execute(
            &[set.clone(), keys[i % keys.len()].clone(), val.clone()],
            &ctx,
        );
    }
    eprintln!("SET {:?}/op", t.elapsed() / n as u32);
    let t = std::time::Instant::now();
    for i in 0..n {
        db.execute(&[get.clone(), keys[i % keys.len()].clone()], &ctx);
    }
    eprintln!("GET {:?}/op", t.elapsed() / n as u32);
    db.execute(&[Bytes::from("FLUSHALL")], &ctx);
    let t = std::time::Instant::now();
    for i in 0..n {
        db.execute(&[incr.clone(), keys[i % keys.len()].clone()], &ctx);
    }
    eprintln!("INCR {:?}/op", t.elapsed() / n as u32);
}
