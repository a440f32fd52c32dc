//! The Rust template's golden cases, each its own test (`cargo test --test template_golden -- --list` names them).

use std::process::ExitCode;

fn main() -> ExitCode {
    policy_testing::cases_main(
        cache_paths::test_policy("rust-policy-template"),
        cache_paths::package_dir(cache_paths::process_env, env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/rust-policy-template/cases"),
    )
}
