//! Builds the default plugins (`plugins/`, a guest workspace) for `wasm32-wasip2` and generates `plugins.rs`: one
//! `(name, bytes)` entry per plugin, so the agent binary carries them and `run` needs no extra files.
//!
//! The nested cargo builds into `$WASM_TARGET_DIR` (what `just plugins` uses, so the two share artifacts) or, when
//! that is unset, a folder under `OUT_DIR`. It gets a clean environment: the outer build's flags, wrappers (clippy)
//! and target dir must not leak into a build for another target.

// A build script's inputs are its environment (CARGO_MANIFEST_DIR, OUT_DIR, WASM_TARGET_DIR, CARGO).
#![allow(clippy::disallowed_methods)]

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Plugins shipped with the agent, in the order `policy inspect`-style listings show them.
const PLUGINS: &[&str] = &[
    "template-overrides",
    "gpu-sizing",
    "team-labels",
    "guardrails",
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.join("../..");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for watched in ["plugins", "wit", "common/pod-template"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=WASM_TARGET_DIR");
    let target_dir = env::var_os("WASM_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| out_dir.join("wasm-target"));

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "--quiet",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(root.join("plugins/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for package in PLUGINS {
        build.args(["-p", package]);
    }
    for leaked in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        build.env_remove(leaked);
    }
    let status = build
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the default plugins: {e}"));
    assert!(
        status.success(),
        "building the default plugins (plugins/, wasm32-wasip2) failed: {status}; is the target installed? \
         (`rustup target add wasm32-wasip2`, or `just setup`)"
    );

    let mut generated = String::from(
        "/// Every default plugin: `(name, component bytes)`.\npub static PLUGINS: &[(&str, &[u8])] = &[\n",
    );
    for package in PLUGINS {
        let wasm = wasm_path(&target_dir, package);
        assert!(
            wasm.is_file(),
            "the plugin build did not produce {}",
            wasm.display()
        );
        writeln!(
            generated,
            "    ({package:?}, include_bytes!({:?})),",
            wasm.display().to_string()
        )
        .expect("writing to a String cannot fail");
    }
    generated.push_str("];\n");
    std::fs::write(out_dir.join("plugins.rs"), generated)
        .expect("cannot write plugins.rs into OUT_DIR");
}

fn wasm_path(target_dir: &Path, package: &str) -> PathBuf {
    target_dir
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", package.replace('-', "_")))
}
