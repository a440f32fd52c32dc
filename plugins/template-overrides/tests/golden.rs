//! The golden cases in `cases/`, each its own test, against the plugin's logic natively (the host harness runs the
//! same folders against the built component: `just policy-cases`).

fn main() -> std::process::ExitCode {
    policy_kit::testing::main::<template_overrides::TemplateOverrides>(
        policy_kit::testing::cases_dir(env!("CARGO_MANIFEST_DIR")),
    )
}
