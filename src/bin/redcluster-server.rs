//! `redcluster-server`: run the bundled Redis Cluster for any RESP client.
//!
//! ```text
//! redcluster-server --primaries 3 --replicas-per-primary 1 --port 7000
//! redcluster-server --empty --nodes 6 --port 7000      # for redis-cli --cluster create
//! redcluster-server path/to/redis.conf --port 7100      # redis.conf syntax, flags override
//! redcluster-server --tls-port 7000 --port 0 --tls-cert-file node.crt \
//!     --tls-key-file node.key --tls-ca-cert-file ca.crt  # TLS only (feature tls)
//! redcluster-server --tls-port 7000 --port 7100 ...      # TLS on 7000.., plaintext on 7100..
//! redcluster-server sentinel.conf --sentinel             # one Sentinel (sentinel_mode.rs)
//! redcluster-server --standalone --replicas 2 --port 7000  # primary + replicas (standalone_mode.rs)
//! ```

use std::process::ExitCode;
use std::time::Duration;

use redcluster::server::{Role, TestCluster};

#[path = "redcluster-server/sentinel_mode.rs"]
mod sentinel_mode;
#[path = "redcluster-server/standalone_mode.rs"]
mod standalone_mode;

const USAGE: &str = "usage: redcluster-server [CONFIG_FILE] [--primaries N] \
[--replicas-per-primary R] [--port BASE] [--empty --nodes N] [--requirepass-file PATH] \
[--cluster-node-timeout MS] [--DIRECTIVE VALUE ...]

  CONFIG_FILE               redis.conf syntax, one directive per line: port,
                            requirepass, user, cluster-node-timeout, maxclients, tcp-backlog,
                            client-output-buffer-limit, primaries, replicas-per-primary,
                            nodes, empty; cluster-enabled, appendonly, dir, daemonize no ...
                            are accepted and ignored. Flags given after it override it.
  --primaries N             primaries, slots spread evenly (default 3)
  --replicas-per-primary R  replicas of each primary (default 0)
  --port BASE               first client port; nodes use consecutive ports (default 7000)
  --empty --nodes N         start N empty cluster-enabled nodes (for redis-cli --cluster create)
  --standalone              cluster mode off (or `cluster-enabled no`): a primary on --port,
                            --replicas R replicas on the next ports (default 0), databases
                            0-15; --replicaof HOST PORT makes the primary a replica of HOST:PORT;
                            --sentinels N: N bundled Sentinels watching it as mymaster
  --requirepass-file PATH   read the password every client (and replica) must AUTH with
                            from PATH (one line); or set REDCLUSTER_REQUIREPASS
  --requirepass PASS        the same, but on the command line other local users can read it
                            (ps, /proc/PID/cmdline); on Unix the server re-runs itself at once
                            with the password moved out of its arguments, which shortens but
                            does not close that window: prefer the file or the environment
  --cluster-node-timeout MS node timeout in milliseconds (default 15000)
  --user 'NAME RULES...'    an ACL user on every node, as redis.conf's `user` directive
                            (e.g. 'app on >secret ~app:* +@all'); repeatable
  --maxclients N            clients per node (default 10000); the open-files limit is raised
                            to fit every node, or maxclients lowered when it cannot be
  --tcp-backlog N           listen queue length (default 511)
  --client-output-buffer-limit 'CLASS HARD SOFT SECS'
                            as in redis.conf (default 'normal 0 0 0 replica 256mb 64mb 60
                            pubsub 32mb 8mb 60')

  --tls-port BASE           serve TLS on BASE.. (feature tls; needs the three files below
                            and --port 0 for TLS only, or --port BASE2 for plaintext on
                            BASE2.. too, where MOVED/ASK name plaintext ports); replication
                            and MIGRATE links between nodes use TLS (--tls-replication yes,
                            --tls-cluster yes)
  --tls-cert-file F --tls-key-file F --tls-ca-cert-file F
                            node certificate (valid for 127.0.0.1), its key, the CA
  --tls-auth-clients yes|no|optional
                            require client certificates signed by the CA (default yes)

  REDCLUSTER_LOG            log filter (default warn), e.g. info or redcluster=debug";

/// The password handed over by the re-run that removed `--requirepass` from the arguments.
const PASS_FROM_ARGS: &str = "REDCLUSTER_REQUIREPASS_FROM_ARGS";

/// Descriptors kept for everything but clients (listeners, bus, replication), per node and
/// once for the process, as Redis' `CONFIG_MIN_RESERVED_FDS`.
const RESERVED_FDS: u64 = 32;

#[derive(Debug)]
struct Args {
    primaries: usize,
    replicas: usize,
    /// `--port`; `None` when not given (7000 without TLS).
    port: Option<u16>,
    empty: bool,
    nodes: Option<usize>,
    requirepass: Option<String>,
    /// `user NAME RULES...` directives: ACL users created on every node.
    users: Vec<(String, String)>,
    node_timeout_ms: u64,
    /// Other directives, handed to every node.
    settings: Vec<(String, String)>,
    /// `tls-*` directives.
    tls: TlsArgs,
    /// Cluster mode off (`--standalone`, `cluster-enabled no`), and its options.
    standalone: standalone_mode::StandaloneArgs,
}

/// The `tls-*` directives, as redis-server takes them.
#[derive(Debug, Default)]
struct TlsArgs {
    port: Option<u16>,
    cert_file: Option<String>,
    key_file: Option<String>,
    ca_file: Option<String>,
    auth_clients: Option<String>,
    /// `tls-replication` and `tls-cluster` as given (both must be yes with TLS).
    links: Vec<(String, bool)>,
}

/// Directives of the reference set-up's node files that mean nothing here.
const IGNORED: &[&str] = &[
    "appendonly",
    "appendfilename",
    "cluster-config-file",
    "daemonize",
    "dbfilename",
    "dir",
    "logfile",
    "loglevel",
    "pidfile",
    "protected-mode",
    "save",
];

fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{name}: not a valid number: {v}"))
}

fn read_password_file(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the password file {path}: {e}"))?;
    let pass = text.lines().next().unwrap_or("").to_string();
    if pass.is_empty() {
        return Err(format!("the password file {path} is empty"));
    }
    Ok(pass)
}

/// Apply one directive (from the config file or a `--name value` flag).
fn directive(args: &mut Args, name: &str, values: &[String]) -> Result<(), String> {
    let name = name.to_ascii_lowercase();
    let one = || match values {
        [v] => Ok(v.as_str()),
        _ => Err(format!("'{name}' takes one argument")),
    };
    match name.as_str() {
        "primaries" => args.primaries = num(&name, one()?)?,
        "replicas-per-primary" => args.replicas = num(&name, one()?)?,
        "port" => args.port = Some(num(&name, one()?)?),
        "nodes" => args.nodes = Some(num(&name, one()?)?),
        "empty" => args.empty = values.is_empty() || one()?.eq_ignore_ascii_case("yes"),
        "requirepass" => args.requirepass = Some(one()?.to_string()),
        "requirepass-file" => args.requirepass = Some(read_password_file(one()?)?),
        "cluster-node-timeout" => args.node_timeout_ms = num(&name, one()?)?,
        "user" => {
            // `user alice on >pw ~* +@all` in a file; `--user 'alice on >pw ...'` as a flag.
            let words: Vec<&str> = values.iter().flat_map(|v| v.split_whitespace()).collect();
            let Some((user, rules)) = words.split_first() else {
                return Err("'user' needs a name and ACL rules".into());
            };
            args.users.push((user.to_string(), rules.join(" ")));
        }
        "tls-port" => args.tls.port = Some(num(&name, one()?)?),
        "tls-cert-file" => args.tls.cert_file = Some(one()?.to_string()),
        "tls-key-file" => args.tls.key_file = Some(one()?.to_string()),
        "tls-ca-cert-file" => args.tls.ca_file = Some(one()?.to_string()),
        "tls-auth-clients" => args.tls.auth_clients = Some(one()?.to_string()),
        "tls-replication" | "tls-cluster" => {
            let on = match one()?.to_ascii_lowercase().as_str() {
                "yes" => true,
                "no" => false,
                _ => return Err(format!("'{name}' takes yes or no")),
            };
            args.tls.links.push((name.clone(), on));
        }
        "cluster-enabled" => match one()?.to_ascii_lowercase().as_str() {
            "yes" => args.standalone.on = false,
            "no" => args.standalone.on = true,
            _ => return Err("'cluster-enabled' takes yes or no".into()),
        },
        "replicas" => args.standalone.replicas = num(&name, one()?)?,
        "sentinels" => args.standalone.sentinels = num(&name, one()?)?,
        "sentinel-port" => args.standalone.sentinel_port = Some(num(&name, one()?)?),
        "replicaof" | "slaveof" => match values {
            [host, port] => {
                args.standalone.replicaof = Some((host.clone(), num(&name, port)?));
            }
            _ => return Err(format!("'{name}' takes a host and a port")),
        },
        "bind" if values.iter().all(|v| v == "127.0.0.1" || v == "localhost") => {}
        "bind" => return Err("nodes listen on 127.0.0.1 only".into()),
        n if IGNORED.contains(&n) => {}
        _ if values.is_empty() => return Err(format!("'{name}' needs a value")),
        _ => args.settings.push((name, values.join(" "))),
    }
    Ok(())
}

/// Split a redis.conf line into words: blanks separate, "double quotes" (with \n \t \" \\
/// \xHH escapes) and 'single quotes' group.
fn split_line(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else {
            return Ok(words);
        };
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("unbalanced quotes".into()),
                    Some(c) if c == first => break,
                    Some('\\') if first == '"' => match chars.next() {
                        Some('n') => word.push('\n'),
                        Some('r') => word.push('\r'),
                        Some('t') => word.push('\t'),
                        Some('x') => {
                            let hex: String = chars.by_ref().take(2).collect();
                            let b = u8::from_str_radix(&hex, 16).map_err(|_| "bad \\x escape")?;
                            word.push(char::from(b));
                        }
                        Some(c) => word.push(c),
                        None => return Err("unbalanced quotes".into()),
                    },
                    Some(c) => word.push(c),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err("closing quote must be followed by a space".into());
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                word.push(c);
            }
        }
        words.push(word);
    }
}

fn read_config_file(args: &mut Args, path: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the config file {path}: {e}"))?;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |why: String| {
            // Never echo a line that may carry a password.
            format!("config file {path}, line {}: {why}", i + 1)
        };
        let words = split_line(line).map_err(&fail)?;
        let (name, values) = words.split_first().ok_or_else(|| fail("empty".into()))?;
        directive(args, name, values).map_err(&fail)?;
    }
    Ok(())
}

fn parse(argv: Vec<String>) -> Result<Args, String> {
    let mut args = Args {
        primaries: 3,
        replicas: 0,
        port: None,
        empty: false,
        nodes: None,
        requirepass: None,
        users: Vec::new(),
        node_timeout_ms: 15_000,
        settings: Vec::new(),
        tls: TlsArgs::default(),
        standalone: Default::default(),
    };
    let mut it = argv.into_iter().peekable();
    if let Some(path) = it.next_if(|a| !a.starts_with('-')) {
        read_config_file(&mut args, &path)?;
    }
    // Precedence, lowest first: config file, environment, command line.
    if let Ok(pass) = std::env::var("REDCLUSTER_REQUIREPASS") {
        args.requirepass = Some(pass);
    }
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--empty" => args.empty = true,
            "--standalone" => args.standalone.on = true,
            "--replicaof" | "--slaveof" => {
                let host = it.next().ok_or_else(|| format!("{flag} needs a host"))?;
                let port = it.next().ok_or_else(|| format!("{flag} needs a port"))?;
                directive(&mut args, &flag[2..], &[host, port])?;
            }
            f if f.starts_with("--") && f.len() > 2 => {
                let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
                directive(&mut args, &f[2..], &[value])?;
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if let Ok(pass) = std::env::var(PASS_FROM_ARGS) {
        args.requirepass = Some(pass);
    }
    if args.primaries == 0 {
        return Err("--primaries must be at least 1".into());
    }
    if args.nodes.is_some() && !args.empty {
        return Err("--nodes goes with --empty".into());
    }
    Ok(args)
}

/// Rust cannot rewrite its own process title without `unsafe` (the crate forbids it), so a
/// password given with `--requirepass` is taken out of the arguments by running this
/// program again in place (same pid) with the password in the environment, which only the
/// same user can read. The window before that is as long as Redis' own, before it rewrites
/// its title.
#[cfg(unix)]
fn rerun_without_password_in_args() {
    use std::os::unix::process::CommandExt;
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let Some(i) = argv.iter().position(|a| a == "--requirepass") else {
        return;
    };
    let (Some(pass), Ok(exe)) = (argv.get(i + 1), std::env::current_exe()) else {
        return;
    };
    let rest = argv[1..i].iter().chain(&argv[i + 2..]);
    let err = std::process::Command::new(exe)
        .arg0(&argv[0])
        .args(rest)
        .env(PASS_FROM_ARGS, pass)
        .exec();
    eprintln!(
        "redcluster-server: could not re-run without the password in the arguments ({err}); \
         it stays readable by other users"
    );
}

/// Raise the soft open-files limit to what `nodes` nodes of `maxclients` clients need, as
/// Redis does at start; when the hard limit is lower, the `maxclients` that fits.
fn fit_open_files(nodes: u64, maxclients: u64) -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let need = nodes * (maxclients + RESERVED_FDS) + RESERVED_FDS;
    let old = getrlimit(Resource::Nofile);
    let current = old.current.unwrap_or(u64::MAX);
    if current >= need {
        return None;
    }
    let hard = old.maximum.unwrap_or(u64::MAX);
    let want = need.min(hard);
    let set = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(want),
            maximum: old.maximum,
        },
    );
    let got = match set {
        Ok(()) => want,
        Err(e) => {
            eprintln!("redcluster-server: cannot raise the open files limit to {want}: {e}");
            current
        }
    };
    if got > current {
        eprintln!(
            "redcluster-server: increased maximum number of open files to {got} \
             (it was originally set to {current})"
        );
    }
    if got >= need {
        return None;
    }
    let fits = (got.saturating_sub(RESERVED_FDS) / nodes)
        .saturating_sub(RESERVED_FDS)
        .max(1);
    eprintln!(
        "redcluster-server: {nodes} nodes with maxclients {maxclients} need {need} open files; \
         the limit is {got}: maxclients reduced to {fits} per node. If you need more, \
         increase 'ulimit -n'."
    );
    Some(fits)
}

fn main() -> ExitCode {
    #[cfg(unix)]
    rerun_without_password_in_args();
    let filter = tracing_subscriber::EnvFilter::try_from_env("REDCLUSTER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "--sentinel") {
        return sentinel_mode::main(argv);
    }
    let mut args = match parse(std::env::args().skip(1).collect()) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("redcluster-server: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if e.is_empty() { 0 } else { 2 });
        }
    };
    // One worker thread per node (at least one per CPU): a node gets the same share of a
    // busy machine as a single-threaded redis-server process would.
    let nodes = if args.standalone.on {
        1 + args.standalone.replicas
    } else if args.empty {
        args.nodes.unwrap_or(6)
    } else {
        args.primaries * (1 + args.replicas)
    };
    let maxclients = args
        .settings
        .iter()
        .rev()
        .find(|(k, _)| k == "maxclients")
        .map_or(Ok(10_000), |(_, v)| num::<u64>("maxclients", v));
    match maxclients {
        Ok(m) => {
            if let Some(fits) = fit_open_files(nodes as u64, m) {
                args.settings.push(("maxclients".into(), fits.to_string()));
            }
        }
        Err(e) => {
            eprintln!("redcluster-server: {e}");
            return ExitCode::from(2);
        }
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(nodes.max(cpus).min(64))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("redcluster-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

/// What the `tls-*` directives ask for (`None`: plaintext only): the TLS base port, the
/// plaintext base port when `--port` serves plaintext next to TLS, and the TLS settings.
fn tls_setup(args: &Args) -> Result<Option<(u16, Option<u16>, TlsSettings)>, String> {
    let t = &args.tls;
    let Some(port) = t.port else {
        if t.cert_file.is_some() || t.key_file.is_some() || t.ca_file.is_some() {
            return Err("the tls-*-file options need --tls-port".into());
        }
        return Ok(None);
    };
    let plain = match args.port {
        None => {
            return Err(
                "--tls-port needs --port 0 (TLS only) or --port BASE (plaintext on \
                        BASE.. too)"
                    .into(),
            )
        }
        Some(0) => None,
        Some(p) => Some(p),
    };
    if let Some((name, _)) = t.links.iter().find(|(_, on)| !on) {
        return Err(format!(
            "nodes that serve TLS only link over TLS: {name} must be yes"
        ));
    }
    load_tls(t).map(|tls| Some((port, plain, tls)))
}

#[cfg(feature = "tls")]
type TlsSettings = redcluster::server::ServerTls;
#[cfg(not(feature = "tls"))]
type TlsSettings = ();

#[cfg(feature = "tls")]
fn load_tls(t: &TlsArgs) -> Result<TlsSettings, String> {
    use redcluster::server::{ServerTls, TlsAuthClients};
    let read = |what: &str, path: &Option<String>| -> Result<Vec<u8>, String> {
        let path = path
            .as_ref()
            .ok_or_else(|| format!("--tls-port needs --{what}"))?;
        std::fs::read(path).map_err(|e| format!("cannot read {what} {path}: {e}"))
    };
    let cert = read("tls-cert-file", &t.cert_file)?;
    let key = read("tls-key-file", &t.key_file)?;
    let ca = read("tls-ca-cert-file", &t.ca_file)?;
    let mode = match t.auth_clients.as_deref() {
        None => TlsAuthClients::Yes,
        Some(v) => TlsAuthClients::parse(v)
            .ok_or_else(|| format!("tls-auth-clients takes yes, no or optional, not {v}"))?,
    };
    let tls = ServerTls::from_pem(&cert, &key, &ca).map_err(|e| e.to_string())?;
    Ok(tls.auth_clients(mode))
}

#[cfg(not(feature = "tls"))]
fn load_tls(_: &TlsArgs) -> Result<TlsSettings, String> {
    Err("this redcluster-server was built without TLS (cargo feature tls)".into())
}

async fn run(args: Args) -> ExitCode {
    let tls = match tls_setup(&args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("redcluster-server: {e}");
            return ExitCode::from(2);
        }
    };
    let base_port = tls
        .as_ref()
        .map_or(args.port.unwrap_or(7000), |(p, _, _)| *p);
    if args.standalone.on {
        return standalone_mode::run(args, base_port, tls).await;
    }
    let mut builder = TestCluster::builder()
        .base_port(base_port)
        .node_timeout(Duration::from_millis(args.node_timeout_ms));
    if args.empty {
        builder = builder.unconfigured_nodes(args.nodes.unwrap_or(6));
    } else {
        builder = builder
            .primaries(args.primaries)
            .replicas_per_primary(args.replicas);
    }
    if let Some(pass) = args.requirepass {
        builder = builder.requirepass(pass);
    }
    for (name, rules) in &args.users {
        builder = builder.acl_user(name, rules);
    }
    for (name, value) in args.settings {
        builder = builder.config(name, value);
    }
    #[cfg(feature = "tls")]
    if let Some((_, plain, tls)) = tls {
        builder = builder.tls(tls);
        if let Some(p) = plain {
            builder = builder.plaintext_port(p);
        }
    }
    #[cfg(not(feature = "tls"))]
    let _ = tls;
    let cluster = match builder.start().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("redcluster-server: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    for node in cluster.nodes() {
        let role = match (node.role, &node.primary_id) {
            (_, _) if args.empty => "empty".to_string(),
            (Role::Replica, Some(p)) => format!("replica of {p}"),
            _ => {
                let slots: Vec<String> = node
                    .slots
                    .iter()
                    .map(|r| format!("{}-{}", r.start(), r.end()))
                    .collect();
                format!("primary slots {}", slots.join(","))
            }
        };
        println!("{} {} {role}", node.addr, node.id);
    }
    println!("ready; Ctrl-C to stop");
    let _ = tokio::signal::ctrl_c().await;
    cluster.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::split_line;

    #[test]
    fn config_lines_split_like_redis() {
        assert_eq!(split_line("port 7000").unwrap(), ["port", "7000"]);
        assert_eq!(
            split_line("client-output-buffer-limit replica 1mb 0 0").unwrap(),
            ["client-output-buffer-limit", "replica", "1mb", "0", "0"]
        );
        assert_eq!(
            split_line(r#"requirepass "a b\"c" 'd e'"#).unwrap(),
            ["requirepass", "a b\"c", "d e"]
        );
        assert!(split_line("requirepass \"open").is_err());
    }
}
