//! The bundled server's per-command cost on its hot path (decode, dispatch, execute, encode)
//! for SET, GET and INCR: batches of 1,000 pipelined commands on one connection to a
//! one-primary bundled cluster, keys spread over `--keys N` names (default 100,000; 1 makes
//! every command hit the same key). Prints time per command. A benchmark, not a test; it
//! replaces the ignored `hot_path_speed` developer test that lived in `src/server/db/tests`.
//!
//! Run: `cargo bench --bench server_hot_path -- [--keys N] [--batches N]`

use std::time::Instant;

use bytes::BytesMut;
use redcluster::resp::{decode, encode_command, Limits};
use redcluster::server::TestCluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Send `batch` pipelined and read as many replies; panics on an error reply.
async fn round_trip(sock: &mut TcpStream, batch: &[u8], n: usize, buf: &mut BytesMut) {
    sock.write_all(batch).await.expect("write");
    let mut got = 0;
    while got < n {
        while let Some(v) = decode(buf, &Limits::default()).expect("valid RESP") {
            assert!(!v.is_error(), "{v:?}");
            got += 1;
        }
        if got < n {
            assert!(
                sock.read_buf(buf).await.expect("read") > 0,
                "server hung up"
            );
        }
    }
}

fn main() {
    let keys = arg("--keys", 100_000).max(1);
    let batches = arg("--batches", 200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let cluster = TestCluster::builder().primaries(1).start().await.unwrap();
        let mut sock = TcpStream::connect(cluster.seeds()[0]).await.unwrap();
        sock.set_nodelay(true).unwrap();
        let mut buf = BytesMut::new();
        const PER_BATCH: usize = 1000;
        for cmd in ["SET", "GET", "INCR"] {
            if cmd == "INCR" {
                round_trip(&mut sock, b"*1\r\n$8\r\nFLUSHALL\r\n", 1, &mut buf).await;
            }
            let mut total = std::time::Duration::ZERO;
            for b in 0..batches {
                let mut batch = BytesMut::new();
                for i in 0..PER_BATCH {
                    let key = format!("key:{:012}", (b * PER_BATCH + i) % keys);
                    match cmd {
                        "SET" => encode_command(&mut batch, ["SET", key.as_str(), "xxx"]),
                        _ => encode_command(&mut batch, [cmd, key.as_str()]),
                    }
                }
                let t = Instant::now();
                round_trip(&mut sock, &batch, PER_BATCH, &mut buf).await;
                total += t.elapsed();
            }
            let n = (batches * PER_BATCH) as u32;
            println!(
                "{cmd:<5} {:?}/command ({n} commands, {keys} keys)",
                total / n
            );
        }
    });
}
