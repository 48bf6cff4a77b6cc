//! The request span carries OpenTelemetry's database-client attributes and never a key or
//! a value.
#![cfg(feature = "server")]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use redcluster::Client;
use tracing_subscriber::fmt::format::FmtSpan;

/// Everything the fmt layer writes, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn spans_have_db_attributes_and_no_keys_or_values() {
    let c = support::bundled::cluster().await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("redcluster=debug")
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let client = Client::builder(c.seeds()).build().await.unwrap();
    client.set("secret-key-1", "secret-value-1").await.unwrap();
    let v: Option<String> = client.get("secret-key-1").await.unwrap();
    assert_eq!(v.as_deref(), Some("secret-value-1"));
    let e = client
        .cmd("INCR")
        .arg("secret-key-1")
        .query::<i64>()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), redcluster::ErrorKind::Server);

    // A pipeline and a transaction are one span each, sized, with the first error's kind.
    let mut p = client.pipeline();
    p.cmd("SET").arg("secret-key-2").arg("secret-value-2");
    p.cmd("INCR").arg("secret-key-2");
    p.cmd("GET").arg("secret-key-3");
    assert_eq!(p.query_each().await.len(), 3);
    let mut tx = client.transaction();
    tx.cmd("SET").arg("{t}secret-key-4").arg("1");
    tx.cmd("INCR").arg("{t}secret-key-4");
    assert_eq!(tx.exec::<((), i64)>().await.unwrap(), Some(((), 2)));

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let pipeline = text
        .lines()
        .find(|l| l.contains("db.operation.name=PIPELINE") && l.contains("close"))
        .unwrap_or_else(|| panic!("no PIPELINE span in:\n{text}"));
    assert!(pipeline.contains("db.operation.batch.size=3"), "{pipeline}");
    assert!(pipeline.contains("error.type=\"server\""), "{pipeline}");
    let multi = text
        .lines()
        .find(|l| l.contains("db.operation.name=MULTI") && l.contains("close"))
        .unwrap_or_else(|| panic!("no MULTI span in:\n{text}"));
    assert!(multi.contains("db.operation.batch.size=2"), "{multi}");
    assert!(!multi.contains("error.type"), "{multi}");
    let owner = client.topology();
    let slot = redcluster::slot::key_slot(b"secret-key-1");
    let addr = owner.primary_for_slot(slot).unwrap().to_string();
    let (host, port) = addr.rsplit_once(':').unwrap();
    let get = text
        .lines()
        .find(|l| l.contains("db.operation.name=GET"))
        .unwrap_or_else(|| panic!("no GET span in:\n{text}"));
    assert!(get.contains("db.system.name=\"redis\""), "{get}");
    assert!(get.contains(&format!("server.address=\"{host}\"")), "{get}");
    assert!(get.contains(&format!("server.port={port}")), "{get}");
    assert!(get.contains(&format!("db.redis.slot={slot}")), "{get}");
    let incr = text
        .lines()
        .find(|l| l.contains("db.operation.name=INCR"))
        .unwrap_or_else(|| panic!("no INCR span in:\n{text}"));
    assert!(incr.contains("error.type=\"server\""), "{incr}");
    assert!(!text.contains("secret-key"), "a key was logged:\n{text}");
    assert!(
        !text.contains("secret-value"),
        "a value was logged:\n{text}"
    );
    c.shutdown().await;
}
