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

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
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
