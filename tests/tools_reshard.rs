//! `redis-cli --cluster reshard | rebalance | fix` against the `redcluster-server` binary,
//! unchanged, with keys in the slots that move: every key ends up on the new owner and
//! readable through `redis-cli -c`, none lost, and `redis-cli --cluster check` agrees.
//!
//! The debug-build server answers each `CLUSTER SETSLOT ... NODE` after a gossip round, so
//! the tests move tens of slots, not thousands.

mod support;

use std::time::Duration;

use redcluster::slot::key_slot;
use support::real_cluster::{cli, redis_available};
use support::server_bin::{run_tool, ServerProcess};
use support::wait::wait_until;

const TOOL_LIMIT: Duration = Duration::from_secs(120);

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Run `redis-cli args`; panics (with its output) unless it exits 0.
fn tool(args: &[&str]) -> String {
    let out = run_tool("redis-cli", args, TOOL_LIMIT);
    let text = output_text(&out);
    assert!(out.status.success(), "redis-cli {args:?} failed:\n{text}");
    text
}

/// `redis-cli --cluster check` passes: all slots covered, views agree, no open slot.
fn assert_check_ok(seed: &str) {
    let text = tool(&["--cluster", "check", seed]);
    assert!(
        text.contains("[OK] All nodes agree about slots configuration."),
        "{text}"
    );
    assert!(text.contains("[OK] All 16384 slots covered."), "{text}");
    assert!(
        !text.contains("[WARNING]") && !text.contains("[ERR]"),
        "{text}"
    );
}

/// A hash tag whose keys land in `slot`.
fn tag_for(slot: u16) -> String {
    (0u64..)
        .map(|n| format!("t{n}"))
        .find(|t| key_slot(t.as_bytes()) == slot)
        .expect("every slot has a tag")
}

/// `per_slot` keys in each of `slots`, written with `redis-cli -c` (one MSET per slot).
/// Returns `(key, value)` pairs grouped by slot.
fn load(port: u16, slots: &[u16], per_slot: usize) -> Vec<Vec<(String, String)>> {
    slots
        .iter()
        .map(|&slot| {
            let tag = tag_for(slot);
            let pairs: Vec<(String, String)> = (0..per_slot)
                .map(|i| (format!("{{{tag}}}:{i}"), format!("v{slot}-{i}")))
                .collect();
            let mut args = vec!["-c", "MSET"];
            for (k, v) in &pairs {
                args.push(k);
                args.push(v);
            }
            assert_eq!(cli(port, &args).trim(), "OK", "MSET in slot {slot}");
            pairs
        })
        .collect()
}

/// Every key reads back its value through `redis-cli -c` (one MGET per slot).
fn assert_all_readable(port: u16, groups: &[Vec<(String, String)>]) {
    for pairs in groups {
        let mut args = vec!["-c", "MGET"];
        args.extend(pairs.iter().map(|(k, _)| k.as_str()));
        let got = cli(port, &args);
        let values: Vec<&str> = got
            .lines()
            .filter(|l| !l.starts_with("-> Redirected"))
            .collect();
        let want: Vec<&str> = pairs.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, want, "keys {:?}", pairs.first());
    }
}

fn count_in_slot(port: u16, slot: u16) -> usize {
    cli(port, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()])
        .trim()
        .parse()
        .unwrap_or(usize::MAX)
}

fn myid(port: u16) -> String {
    cli(port, &["CLUSTER", "MYID"]).trim().to_string()
}

fn started(primaries: usize) -> ServerProcess {
    let n = primaries.to_string();
    let server = ServerProcess::start(primaries, &["--primaries", &n]);
    wait_until(Duration::from_secs(20), || {
        server
            .ports()
            .all(|p| cli(p, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
    });
    server
}

#[test]
fn reshard_moves_slots_and_every_key_in_them() {
    if !redis_available() {
        return;
    }
    let server = started(3);
    let (a, b) = (server.base_port, server.base_port + 1);
    // reshard takes the source's lowest slots: 0..20 of the first primary.
    let moved: Vec<u16> = (0..20).collect();
    let mut groups = load(a, &moved, 10);
    groups.extend(load(a, &[100, 5000, 7000, 12000], 10));
    assert_check_ok(&server.addr(0));

    let (a_id, b_id) = (myid(a), myid(b));
    tool(&[
        "--cluster",
        "reshard",
        &server.addr(0),
        "--cluster-from",
        &a_id,
        "--cluster-to",
        &b_id,
        "--cluster-slots",
        "20",
        "--cluster-yes",
    ]);

    for &slot in &moved {
        assert_eq!(count_in_slot(a, slot), 0, "slot {slot} left on the source");
        assert_eq!(count_in_slot(b, slot), 10, "slot {slot} on the target");
    }
    let slots_b = cli(b, &["CLUSTER", "NODES"]);
    assert!(
        slots_b
            .lines()
            .any(|l| l.contains("myself") && l.contains(" 0-19")),
        "{slots_b}"
    );
    assert_check_ok(&server.addr(0));
    assert_all_readable(server.base_port + 2, &groups);
}

#[test]
fn rebalance_gives_an_added_empty_primary_its_share() {
    if !redis_available() {
        return;
    }
    let server = ServerProcess::start(4, &["--empty", "--nodes", "4"]);
    tool(&[
        "--cluster",
        "create",
        &server.addr(0),
        &server.addr(1),
        &server.addr(2),
        "--cluster-yes",
    ]);
    wait_until(Duration::from_secs(20), || {
        (0..3).all(|i| cli(server.base_port + i, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
    });
    let text = tool(&["--cluster", "add-node", &server.addr(3), &server.addr(0)]);
    assert!(text.contains("[OK] New node added correctly."), "{text}");
    let d = server.base_port + 3;
    wait_until(Duration::from_secs(20), || {
        (0..3).all(|i| {
            cli(server.base_port + i, &["CLUSTER", "NODES"])
                .lines()
                .count()
                == 4
        })
    });
    // Each primary gives its lowest slots: put keys there, and elsewhere.
    let mut slots: Vec<u16> = (0..20).chain(5461..5481).chain(10923..10943).collect();
    slots.extend([3000, 9000, 15000]);
    let groups = load(server.base_port, &slots, 5);

    // A small weight for the new node keeps the move to ~55 slots (a debug build moving
    // 4096 would take minutes); the path is the same for any count.
    let weight = format!("{}=0.01", myid(d));
    let text = tool(&[
        "--cluster",
        "rebalance",
        &server.addr(0),
        "--cluster-use-empty-masters",
        "--cluster-weight",
        &weight,
    ]);
    assert!(text.contains("to 127.0.0.1:"), "nothing moved:\n{text}");
    let owned = cli(d, &["CLUSTER", "NODES"]);
    let mine = owned
        .lines()
        .find(|l| l.contains("myself"))
        .unwrap_or_default()
        .to_string();
    assert!(
        mine.split(' ').count() > 8,
        "the new primary owns slots: {mine}"
    );
    let moved_keys: usize = slots.iter().map(|&s| count_in_slot(d, s)).sum();
    assert!(moved_keys > 0, "keys moved with their slots");
    assert_check_ok(&server.addr(0));
    assert_all_readable(server.base_port, &groups);
}

#[test]
fn fix_finishes_half_done_migrations() {
    if !redis_available() {
        return;
    }
    let server = started(3);
    let (a, b) = (server.base_port, server.base_port + 1);
    let (a_id, b_id) = (myid(a), myid(b));
    // Slot 100: importing on b, migrating on a, 4 of 10 keys already moved.
    // Slot 200: migrating on a only (an interrupted reshard), no key moved.
    let groups = load(a, &[100, 200], 10);
    assert_eq!(
        cli(b, &["CLUSTER", "SETSLOT", "100", "IMPORTING", &a_id]).trim(),
        "OK"
    );
    for slot in ["100", "200"] {
        assert_eq!(
            cli(a, &["CLUSTER", "SETSLOT", slot, "MIGRATING", &b_id]).trim(),
            "OK"
        );
    }
    let b_port = b.to_string();
    let mut migrate = vec!["MIGRATE", "127.0.0.1", &b_port, "", "0", "5000", "KEYS"];
    migrate.extend(groups[0][..4].iter().map(|(k, _)| k.as_str()));
    assert_eq!(cli(a, &migrate).trim(), "OK");
    let check = output_text(&run_tool(
        "redis-cli",
        &["--cluster", "check", &server.addr(0)],
        TOOL_LIMIT,
    ));
    assert!(check.contains("The following slots are open"), "{check}");

    let text = tool(&["--cluster", "fix", &server.addr(0)]);
    assert!(text.contains("Fixing open slot 100"), "{text}");
    assert!(text.contains("Fixing open slot 200"), "{text}");
    assert_check_ok(&server.addr(0));
    for (slot, _) in [(100u16, ()), (200, ())] {
        let counts: Vec<usize> = server.ports().map(|p| count_in_slot(p, slot)).collect();
        assert_eq!(
            counts.iter().filter(|&&c| c == 10).count(),
            1,
            "slot {slot}: all keys on one node: {counts:?}"
        );
        assert_eq!(counts.iter().sum::<usize>(), 10, "slot {slot}: {counts:?}");
    }
    assert_all_readable(server.base_port + 2, &groups);
}
