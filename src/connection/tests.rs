//! Connection behaviour against a scripted server on 127.0.0.1:0.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

fn opts() -> ConnectOptions {
    ConnectOptions {
        connect_timeout: Duration::from_secs(2),
        ..ConnectOptions::default()
    }
}

/// A server that answers each `GET x` (inline framing ignored: it counts `*2` headers) with
/// `$len x` after `delay`, in order.
async fn echo_server(delay: Duration) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = BytesMut::new();
                loop {
                    if s.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                    while let Ok(Some(cmd)) =
                        crate::resp::decode_command(&mut buf, &Limits::default())
                    {
                        tokio::time::sleep(delay).await;
                        let arg = cmd.get(1).cloned().unwrap_or_default();
                        let mut out = BytesMut::new();
                        if cmd[0].eq_ignore_ascii_case(b"PUSHY") {
                            out.extend_from_slice(b">2\r\n$7\r\nmessage\r\n$1\r\nx\r\n");
                        }
                        crate::resp::encode_bulk(&mut out, &arg);
                        if s.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn concurrent_requests_get_their_own_replies() {
    let addr = echo_server(Duration::ZERO).await;
    let conn = Arc::new(Connection::connect(&addr, &opts()).await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..200 {
        let c = conn.clone();
        tasks.push(tokio::spawn(async move {
            let v = c.request(&["GET", &format!("k{i}")]).await.unwrap();
            assert_eq!(v, Value::bulk(format!("k{i}")));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(conn.pending(), 0);
}

#[tokio::test]
async fn a_dropped_request_does_not_shift_later_replies() {
    let addr = echo_server(Duration::from_millis(30)).await;
    let conn = Connection::connect(&addr, &opts()).await.unwrap();
    let slow = conn.request(&["GET", "first"]);
    assert!(tokio::time::timeout(Duration::from_millis(5), slow)
        .await
        .is_err());
    let v = conn.request(&["GET", "second"]).await.unwrap();
    assert_eq!(v, Value::bulk("second"));
}

#[tokio::test]
async fn resp3_pushes_are_not_replies() {
    let addr = echo_server(Duration::ZERO).await;
    let conn = Connection::connect(&addr, &opts()).await.unwrap();
    let v = conn.request(&["PUSHY", "mine"]).await.unwrap();
    assert_eq!(v, Value::bulk("mine"));
    let v = conn.request(&["GET", "next"]).await.unwrap();
    assert_eq!(v, Value::bulk("next"));
}

#[tokio::test]
async fn a_server_that_hangs_up_fails_requests_as_sent() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut b = [0u8; 64];
        let _ = s.read(&mut b).await;
        // Close without answering.
    });
    let conn = Connection::connect(&addr, &opts()).await.unwrap();
    let e = conn.request(&["SET", "k", "v"]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(e.maybe_applied(), "{e}");
    // Later requests fail at once, marked never sent.
    let e = conn.request(&["GET", "k"]).await.unwrap_err();
    assert!(!e.maybe_applied(), "{e}");
    assert!(conn.is_closed());
}

#[tokio::test]
async fn malformed_replies_close_the_connection_with_a_protocol_error() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut b = [0u8; 64];
        let _ = s.read(&mut b).await;
        let _ = s.write_all(b"?garbage\r\n").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let conn = Connection::connect(&addr, &opts()).await.unwrap();
    let e = conn.request(&["GET", "k"]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
}

#[tokio::test]
async fn connect_refused_is_io_never_sent() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    let e = Connection::connect(&addr, &opts()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(!e.maybe_applied());
}

#[tokio::test]
async fn an_idle_connection_notices_the_server_closing_it() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let (close_tx, close_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut b = [0u8; 64];
        let _ = s.read(&mut b).await;
        let _ = s.write_all(b"+OK\r\n").await;
        let _ = close_rx.await;
        // Dropping the socket closes it: the client is idle, nothing in flight.
    });
    let conn = Connection::connect(&addr, &opts()).await.unwrap();
    assert_eq!(
        conn.request(&["PING"]).await.unwrap(),
        Value::SimpleString(bytes::Bytes::from_static(b"OK"))
    );
    let _ = close_tx.send(());
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while !conn.is_closed() {
        assert!(
            std::time::Instant::now() < deadline,
            "the reader never saw the server close the idle connection"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The next request is refused before sending: it cannot have been applied.
    let e = conn.request(&["SET", "k", "v"]).await.unwrap_err();
    assert!(!e.maybe_applied(), "{e}");
}

/// A server on its own thread (so it runs while the test's runtime is blocked) that answers
/// the first command with `+OK`, then, once told to, reads one more command if `answer` is
/// given, answers it with `answer`, and closes the connection.
fn closing_server(answer: Option<&'static [u8]>) -> (String, std::sync::mpsc::Sender<()>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut b = [0u8; 256];
        let _ = s.read(&mut b);
        let _ = s.write_all(b"+OK\r\n");
        let _ = rx.recv();
        if let Some(reply) = answer {
            let _ = s.read(&mut b);
            let _ = s.write_all(reply);
        }
    });
    (addr, tx)
}

#[tokio::test]
async fn a_hang_up_the_reader_has_not_seen_refuses_the_next_write_as_unsent() {
    let (addr, close) = closing_server(None);
    let conn = Connection::connect(&addr, &opts()).await.unwrap();
    conn.request(&["PING"]).await.unwrap();
    close.send(()).unwrap();
    // Block this (current-thread) runtime: the reader cannot run and see the close, as when
    // a busy runtime starves it.
    std::thread::sleep(Duration::from_millis(200));
    let e = conn.request(&["SET", "k", "v"]).await.unwrap_err();
    assert!(!e.maybe_applied(), "{e}");
}

#[tokio::test]
async fn a_reply_that_comes_with_a_hang_up_is_delivered_and_the_next_write_refused_unsent() {
    let (addr, close) = closing_server(Some(b":1\r\n"));
    let conn = Connection::connect(&addr, &opts()).await.unwrap();
    conn.request(&["PING"]).await.unwrap();
    let mut first = Box::pin(conn.request(&["INCR", "n"]));
    assert!(tokio::time::timeout(Duration::from_millis(20), &mut first)
        .await
        .is_err());
    // The server answers INCR and hangs up while this runtime is blocked (starved): the
    // reply and the close wait in the socket together.
    close.send(()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(first.await.unwrap(), Value::Integer(1));
    let e = conn.request(&["SET", "k", "v"]).await.unwrap_err();
    assert!(!e.maybe_applied(), "{e}");
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[tokio::test]
async fn connections_ask_the_kernel_to_watch_for_a_vanished_server() {
    use rustix::net::sockopt;
    let addr = echo_server(Duration::ZERO).await;
    let conn = Connection::connect(&addr, &opts()).await.unwrap();
    let sock = conn.shared.stream.tcp().unwrap();
    assert!(sockopt::socket_keepalive(sock).unwrap());
    assert_eq!(
        sockopt::tcp_keepidle(sock).unwrap(),
        stream::PEER_SILENCE_LIMIT
    );
    assert_eq!(
        sockopt::tcp_user_timeout(sock).unwrap(),
        stream::PEER_SILENCE_LIMIT.as_millis() as u32
    );
}
