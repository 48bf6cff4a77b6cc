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
