//! The bundled server under a hostile or careless client, against the `redcluster-server`
//! binary, with a real redis-server 7 as the expectation: each probe is sent to both and the
//! bytes they answer (and whether they close) must be the same.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::real_cluster::{cli, RealNode};
use support::server_bin::ServerProcess;
use support::wait::wait_until;

/// What a server did with a probe: the bytes it answered, and whether it closed.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    bytes: Vec<u8>,
    closed: bool,
}

/// Send `input` on a fresh connection, then read until the server closes or stays quiet for
/// `quiet`.
fn probe(port: u16, input: &[u8], quiet: Duration) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(quiet)).unwrap();
    // A server may close while we still write (it refused the start): not an error here.
    let _ = s.write_all(input);
    read_answer(&mut s)
}

fn read_answer(s: &mut TcpStream) -> Answer {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match s.read(&mut buf) {
            Ok(0) => {
                return Answer {
                    bytes,
                    closed: true,
                }
            }
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Answer {
                    bytes,
                    closed: true,
                }
            }
            Err(_) => {
                return Answer {
                    bytes,
                    closed: false,
                }
            }
        }
        assert!(Instant::now() < deadline, "server kept talking for 20 s");
    }
}

/// The probes: (what, bytes). Keys and values are fixed so both servers answer alike.
fn probes() -> Vec<(&'static str, Vec<u8>)> {
    let mut v: Vec<(&str, Vec<u8>)> = vec![
        ("inline too big", vec![b'a'; 70 * 1024]),
        ("bulk too long", b"*1\r\n$536870913\r\n".to_vec()),
        ("multibulk too long", b"*1048577000\r\n".to_vec()),
        ("nested array", b"*1\r\n*1\r\n$4\r\nPING\r\n".to_vec()),
        ("bad bulk header", b"*1\r\n:4\r\nPING\r\n".to_vec()),
        ("unbalanced quotes", b"SET \"a b\r\n".to_vec()),
        ("negative multibulk", b"*-5\r\nPING\r\n".to_vec()),
        ("garbage", b"\x00\x01\xfe\xff\r\n".to_vec()),
        (
            "http post",
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n\
              Content-Length: 30\r\n\r\nSET {b}pwned yes\r\nQUIT\r\n"
                .to_vec(),
        ),
        (
            "host: as multibulk after a command",
            b"*2\r\n$4\r\nECHO\r\n$1\r\na\r\n*2\r\n$5\r\nhOsT:\r\n$1\r\nx\r\n\
              *3\r\n$3\r\nSET\r\n$7\r\n{b}host\r\n$1\r\nv\r\n"
                .to_vec(),
        ),
        (
            "post in lower case",
            b"post /x\r\nSET {b}lower 1\r\n".to_vec(),
        ),
        ("empty lines", b"\r\n\r\n\n\nPING\r\n".to_vec()),
    ];
    // A command split byte by byte is the slow-client case; sent at once it must match.
    v.push((
        "pipeline",
        b"SET {b}k v\r\nGET {b}k\r\n*2\r\n$3\r\nGET\r\n$4\r\n{b}k\r\n".to_vec(),
    ));
    v
}

#[test]
fn bad_input_gets_what_redis_answers() {
    let Some(real) = RealNode::start_single(&[]) else {
        return;
    };
    let ours = ServerProcess::start_with(1, &["--primaries", "1"], &[], true);
    let quiet = Duration::from_millis(300);
    for (what, input) in probes() {
        let expected = probe(real.port, &input, quiet);
        let got = probe(ours.base_port, &input, quiet);
        assert_eq!(
            got,
            expected,
            "{what}: ours {:?}, redis {:?}",
            String::from_utf8_lossy(&got.bytes),
            String::from_utf8_lossy(&expected.bytes)
        );
    }
    // Nothing an HTTP request carried was executed.
    for key in ["{b}pwned", "{b}host", "{b}lower"] {
        assert_eq!(cli(real.port, &["EXISTS", key]).trim(), "0", "redis: {key}");
        assert_eq!(
            cli(ours.base_port, &["EXISTS", key]).trim(),
            "0",
            "ours: {key}"
        );
    }
    wait_until(Duration::from_secs(5), || {
        ours.log().contains("Possible SECURITY ATTACK detected")
    });
}

#[test]
fn slow_and_idle_clients_are_served() {
    let ours = ServerProcess::start(1, &["--primaries", "1"]);
    let mut s = TcpStream::connect(("127.0.0.1", ours.base_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for b in b"*2\r\n$4\r\nECHO\r\n$5\r\nslow!\r\n" {
        s.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut buf = [0u8; 11];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"$5\r\nslow!\r\n");
    // Idle (timeout 0, as Redis' default): still served after a pause.
    std::thread::sleep(Duration::from_millis(500));
    s.write_all(b"PING\r\n").unwrap();
    let mut pong = [0u8; 7];
    s.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"+PONG\r\n");
}

#[test]
fn maxclients_refuses_like_redis() {
    let Some(real) = RealNode::start_single(&[("maxclients", "3")]) else {
        return;
    };
    let ours = ServerProcess::start(1, &["--primaries", "1", "--maxclients", "3"]);
    for port in [real.port, ours.base_port] {
        let mut held: Vec<TcpStream> = Vec::new();
        for _ in 0..3 {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(b"PING\r\n").unwrap();
            let mut pong = [0u8; 7];
            s.read_exact(&mut pong).unwrap();
            held.push(s);
        }
        let got = probe(port, b"PING\r\n", Duration::from_secs(5));
        assert_eq!(
            got,
            Answer {
                bytes: b"-ERR max number of clients + cluster connections reached\r\n".to_vec(),
                closed: true
            },
            "port {port}"
        );
        drop(held);
        // The slots free up again.
        wait_until(Duration::from_secs(5), || {
            cli(port, &["PING"]).trim() == "PONG"
        });
        let stats = cli(port, &["INFO", "stats"]);
        assert!(
            stats.contains("rejected_connections:") && !stats.contains("rejected_connections:0"),
            "{stats}"
        );
    }
    let conf = cli(ours.base_port, &["CONFIG", "GET", "maxclients"]);
    assert!(conf.contains("\n3"), "{conf}");
}

#[test]
fn listen_backlog_is_redis_default_and_configurable() {
    let ours = ServerProcess::start(1, &["--primaries", "1"]);
    let got = cli(ours.base_port, &["CONFIG", "GET", "tcp-backlog"]);
    assert_eq!(got.trim(), "tcp-backlog\n511");
    let refused = cli(ours.base_port, &["CONFIG", "SET", "tcp-backlog", "100"]);
    assert!(refused.contains("can't set immutable config"), "{refused}");
    drop(ours);
    let ours = ServerProcess::start(1, &["--primaries", "1", "--tcp-backlog", "1024"]);
    let got = cli(ours.base_port, &["CONFIG", "GET", "tcp-backlog"]);
    assert_eq!(got.trim(), "tcp-backlog\n1024");
}

/// The password must reach the nodes without being readable by other users.
#[test]
fn password_from_file_env_or_config_file_not_the_command_line() {
    let dir = std::env::temp_dir().join(format!("redcluster-abuse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pass_file = dir.join("pass");
    std::fs::write(&pass_file, "from-file\n").unwrap();
    let conf = dir.join("node.conf");
    std::fs::write(
        &conf,
        "# as the reference set-up writes it\nport 1\ncluster-enabled yes\n\
         cluster-config-file nodes.conf\nappendonly yes\nrequirepass \"from conf\"\n\
         maxclients 77\nprimaries 1\n",
    )
    .unwrap();
    let authed = |port: u16, pass: &str| {
        let denied = cli(port, &["GET", "x"]);
        assert!(denied.contains("NOAUTH"), "{denied}");
        cli(port, &["-a", pass, "--no-auth-warning", "PING"]).trim() == "PONG"
    };
    let file = pass_file.to_str().unwrap();
    let by_file = ServerProcess::start(1, &["--primaries", "1", "--requirepass-file", file]);
    assert!(authed(by_file.base_port, "from-file"));
    drop(by_file);
    let by_env = ServerProcess::start_with(
        1,
        &["--primaries", "1"],
        &[("REDCLUSTER_REQUIREPASS", "from-env")],
        false,
    );
    assert!(authed(by_env.base_port, "from-env"));
    drop(by_env);
    // The config file, then the flags after it (here the port) override it.
    let by_conf = ServerProcess::start(1, &[conf.to_str().unwrap()]);
    assert!(authed(by_conf.base_port, "from conf"));
    let max = cli(
        by_conf.base_port,
        &[
            "-a",
            "from conf",
            "--no-auth-warning",
            "CONFIG",
            "GET",
            "maxclients",
        ],
    );
    assert!(max.contains("77"), "{max}");
    drop(by_conf);
    // On the command line it still works, but is gone from the process's arguments.
    let by_arg = ServerProcess::start(1, &["--primaries", "1", "--requirepass", "on-cmdline"]);
    assert!(authed(by_arg.base_port, "on-cmdline"));
    if cfg!(target_os = "linux") {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", by_arg.pid())).unwrap();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(!cmdline.contains("on-cmdline"), "{cmdline}");
        assert!(cmdline.contains("--primaries 1"), "{cmdline}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Read until the server closes; the bytes received. Panics after 20 s.
fn drain(s: &mut TcpStream) -> usize {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return total,
            Err(e) => panic!("still open after 20 s ({e}), {total} bytes read"),
        }
    }
}

/// A client that pipelines big reads and does not read the replies, and a subscriber that
/// does not read its messages, are closed at their class's output buffer limit.
#[test]
fn non_reading_clients_are_closed_at_their_output_limit() {
    let Some(real) = RealNode::start_single(&[]) else {
        return;
    };
    let ours = ServerProcess::start(1, &["--primaries", "1"]);
    const GETS: usize = 200;
    for port in [real.port, ours.base_port] {
        let limits = "normal 1mb 0 0 pubsub 256kb 0 0";
        let set = cli(
            port,
            &["CONFIG", "SET", "client-output-buffer-limit", limits],
        );
        assert_eq!(set.trim(), "OK", "port {port}");
        // Too long for a command-line argument: over a socket.
        let mut setter = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let value = "v".repeat(512 * 1024);
        let set = format!(
            "*3\r\n$3\r\nSET\r\n$6\r\n{{b}}big\r\n${}\r\n{value}\r\n",
            value.len()
        );
        setter.write_all(set.as_bytes()).unwrap();
        let mut ok = [0u8; 5];
        setter.read_exact(&mut ok).unwrap();
        assert_eq!(&ok, b"+OK\r\n");
        // 200 x 512 KiB = 100 MiB of replies asked for, none read.
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(&b"GET {b}big\r\n".repeat(GETS)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let got = drain(&mut c);
        assert!(got < GETS * 512 * 1024, "port {port}: all {got} bytes sent");
        // The subscriber.
        let mut sub = TcpStream::connect(("127.0.0.1", port)).unwrap();
        sub.write_all(b"SUBSCRIBE ch\r\n").unwrap();
        let mut confirm = [0u8; 31];
        sub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        sub.read_exact(&mut confirm).unwrap();
        let message = "m".repeat(16 * 1024);
        let mut publisher = TcpStream::connect(("127.0.0.1", port)).unwrap();
        // 32 MiB: more than the kernel's socket buffers can absorb.
        let publish = format!("PUBLISH ch {message}\r\n").repeat(2000);
        publisher.write_all(publish.as_bytes()).unwrap();
        let got = drain(&mut sub);
        assert!(got < 2000 * 16 * 1024, "port {port}: every message sent");
        // The node still serves.
        assert_eq!(cli(port, &["PING"]).trim(), "PONG");
    }
}
