//! The driver binaries parse their command lines (and this test makes `cargo test --workspace --no-run` build them
//! beside the agent binary, where `just demo` and `just bench-agent` run them from).

use std::process::Command;

#[test]
fn demo_and_bench_binaries_describe_their_flags() {
    for (bin, flag) in [
        (env!("CARGO_BIN_EXE_demo-driver"), "--values"),
        (env!("CARGO_BIN_EXE_bench-agent"), "--idle-seconds"),
    ] {
        let out = Command::new(bin).arg("--help").output().unwrap();
        assert!(out.status.success(), "{bin} --help: {out:?}");
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(help.contains(flag), "{bin} --help mentions {flag}:\n{help}");
    }
}
