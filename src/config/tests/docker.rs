//! The Docker image's dependency layer, checked without a Docker engine:
//! `scripts/docker-stubs` replayed against `Cargo.toml` and the workspace
//! members' manifests must leave a source at every path cargo looks for, or
//! `docker build` fails at target resolution.

use std::path::{Path, PathBuf};
use std::process::Command;

const DOCKERFILE: &str = include_str!("../../../Dockerfile");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace members' directories other than the root's.
fn members(manifest: &str) -> Vec<String> {
    let table: toml::Table = manifest.parse().expect("Cargo.toml parses");
    let members = table["workspace"]["members"].as_array().expect("members");
    members
        .iter()
        .filter_map(|m| m.as_str())
        .filter(|m| *m != ".")
        .map(str::to_owned)
        .collect()
}

/// Every manifest of the workspace as (directory, text), the root's first.
fn manifests(root_manifest: &str) -> Vec<(String, String)> {
    let mut out = vec![(".".to_owned(), root_manifest.to_owned())];
    for dir in members(root_manifest) {
        let text = std::fs::read_to_string(root().join(&dir).join("Cargo.toml"))
            .unwrap_or_else(|e| panic!("member {dir}: {e}"));
        out.push((dir, text));
    }
    out
}

/// Every target of the workspace as (kind, path), with cargo's default
/// paths; written apart from the script's awk so that each checks the other.
fn targets(root_manifest: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (dir, manifest) in manifests(root_manifest) {
        for (kind, path) in package_targets(&manifest, dir != ".") {
            let path = match dir.as_str() {
                "." => path,
                _ => format!("{dir}/{path}"),
            };
            out.push((kind, path));
        }
    }
    out
}

/// One manifest's targets; a member's lib is at the default path without
/// a [lib] table.
fn package_targets(manifest: &str, member: bool) -> Vec<(String, String)> {
    let table: toml::Table = manifest.parse().expect("Cargo.toml parses");
    let package = table["package"]["name"].as_str().expect("package.name");
    let text = |t: &toml::Value, key: &str| t.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let mut out = Vec::new();
    match table.get("lib") {
        Some(lib) => {
            let path = text(lib, "path").unwrap_or_else(|| "src/lib.rs".into());
            out.push(("lib".to_owned(), path));
        }
        None if member => out.push(("lib".to_owned(), "src/lib.rs".to_owned())),
        None => {}
    }
    for (kind, dir) in [
        ("bin", "src/bin"),
        ("bench", "benches"),
        ("test", "tests"),
        ("example", "examples"),
    ] {
        let tables = table.get(kind).and_then(|v| v.as_array()).cloned();
        for t in tables.unwrap_or_default() {
            let name = text(&t, "name").expect("a target has a name");
            let default = match kind {
                "bin" if name == package => "src/main.rs".to_owned(),
                _ => format!("{dir}/{name}.rs"),
            };
            out.push((kind.to_owned(), text(&t, "path").unwrap_or(default)));
        }
    }
    out
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "siphon-{name}-{}-{:x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs the stub step on the workspace's manifests (the root's being
/// `manifest`) in a fresh directory and returns it.
fn replay(manifest: &str) -> PathBuf {
    let dir = scratch("stubs");
    for (member, text) in manifests(manifest) {
        std::fs::create_dir_all(dir.join(&member)).expect("member dir");
        std::fs::write(dir.join(&member).join("Cargo.toml"), text).expect("write manifest");
    }
    let script = root().join("scripts/docker-stubs");
    let status = Command::new("sh")
        .arg(&script)
        .arg("create")
        .arg(&dir)
        .status()
        .expect("sh runs");
    assert!(status.success(), "docker-stubs create failed: {status}");
    dir
}

fn assert_stubbed(manifest: &str) -> Vec<(String, String)> {
    let dir = replay(manifest);
    let wanted = targets(manifest);
    for (kind, path) in &wanted {
        let stub = std::fs::read_to_string(dir.join(path))
            .unwrap_or_else(|e| panic!("no stub for {kind} {path}: {e}"));
        if kind != "lib" {
            assert!(stub.contains("fn main()"), "{kind} {path} stub has no main");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    wanted
}

#[test]
fn every_target_of_cargo_toml_gets_a_stub() {
    let manifest = include_str!("../../../Cargo.toml");
    let wanted = assert_stubbed(manifest);
    let paths: Vec<&str> = wanted.iter().map(|(_, p)| p.as_str()).collect();
    // The one that broke `docker build` before the stubs came from Cargo.toml.
    assert!(paths.contains(&"crates/load/src/main.rs"), "{paths:?}");
    assert!(paths.contains(&"crates/testkit/src/lib.rs"), "{paths:?}");
    assert!(paths.contains(&"benches/srtp.rs"), "{paths:?}");
}

#[test]
fn a_new_target_needs_no_change_to_the_stub_step() {
    let manifest = format!(
        "{}\n[[bin]]\nname = \"siphon-probe\"\npath = \"src/tools/probe.rs\"\n\n\
         [[bench]]\nname = \"rewrite\"\nharness = false\n\n[[test]]\nname = \"wire\"\n",
        include_str!("../../../Cargo.toml")
    );
    let wanted = assert_stubbed(&manifest);
    let paths: Vec<&str> = wanted.iter().map(|(_, p)| p.as_str()).collect();
    for new in ["src/tools/probe.rs", "benches/rewrite.rs", "tests/wire.rs"] {
        assert!(paths.contains(&new), "{new} not in {paths:?}");
    }
}

#[test]
fn the_dockerfile_builds_dependencies_on_the_stubs() {
    let lines: Vec<&str> = DOCKERFILE.lines().map(str::trim).collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("Dockerfile lacks {needle:?}"))
    };
    let copy = at("scripts/docker-stubs ./");
    let create = at("docker-stubs create");
    // Cargo loads every member's manifest, the stub build's too.
    for member in members(include_str!("../../../Cargo.toml")) {
        let line = at(&format!("COPY {member}/Cargo.toml {member}/"));
        assert!(
            line < create,
            "{member}'s manifest is copied after the stubs"
        );
    }
    let first_build = at("cargo build --release --locked");
    let copy_all = at("COPY . .");
    let touch = at("docker-stubs touch");
    assert!(lines[copy].starts_with("COPY Cargo.toml Cargo.lock"));
    assert!(copy < create && create < first_build && first_build < copy_all);
    assert!(
        copy_all < touch,
        "the real sources must be touched after COPY"
    );
}
