//! The bundled server's files import each other without a circle (only `mod.rs` wiring may
//! see everything): `tools/import_cycles.py` builds the graph of `use`s and inline paths
//! between the files of `src/server` and must find no cycle. A tree with a planted cycle
//! shows the check can fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `python3 tools/import_cycles.py dir` from `cwd`, or `None` when python3 is missing
/// (a failure under `REDCLUSTER_REQUIRE_REAL=1`, as CI has python3).
fn run(cwd: &Path, dir: &str) -> Option<Output> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/import_cycles.py");
    match Command::new("python3")
        .arg(script)
        .arg(dir)
        .current_dir(cwd)
        .output()
    {
        Ok(out) => Some(out),
        Err(e) => {
            assert!(
                std::env::var("REDCLUSTER_REQUIRE_REAL").as_deref() != Ok("1"),
                "python3 is needed for the import-cycle check: {e}"
            );
            eprintln!("skipped: no python3 ({e})");
            None
        }
    }
}

#[test]
fn src_server_has_no_import_cycle() {
    let Some(out) = run(Path::new(env!("CARGO_MANIFEST_DIR")), "src/server") else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("no import cycles among"), "{text}");
}

fn write(root: &Path, file: &str, text: &str) {
    let path = root.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_planted_cycle_is_reported() {
    let root: PathBuf = std::env::temp_dir().join(format!("import-cycles-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    // a -> b (use), b -> x/c (inline path), x/c -> a (grouped use); x/mod.rs may see all.
    write(
        &root,
        "src/server/a.rs",
        "use super::b::B;\npub(crate) struct A;\n",
    );
    write(
        &root,
        "src/server/b.rs",
        "pub(crate) struct B;\nfn f() { let _ = crate::server::x::c::C; }\n",
    );
    write(
        &root,
        "src/server/x/c.rs",
        "// use super::super::nothing;\npub(crate) struct C;\nuse crate::server::{a::A, b};\n",
    );
    write(&root, "src/server/x/mod.rs", "mod c;\nuse super::a::A;\n");
    write(&root, "src/server/leaf.rs", "use super::x::c::C;\n");
    let out = run(&root, "src/server");
    let _ = std::fs::remove_dir_all(&root);
    let Some(out) = out else { return };
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("import cycle among 3 files"), "{text}");
    for edge in [
        "src/server/a.rs -> src/server/b.rs",
        "src/server/b.rs -> src/server/x/c.rs",
        "src/server/x/c.rs -> src/server/a.rs",
    ] {
        assert!(text.contains(edge), "{edge} missing from:\n{text}");
    }
    assert!(!text.contains("leaf.rs"), "{text}");
}
