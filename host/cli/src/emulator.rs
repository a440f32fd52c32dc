//! `clearml-k8s-agent emulator`: serve the in-memory ClearML API (owned by the clearml-emulator work).

use std::process::ExitCode;

/// Arguments of `clearml-k8s-agent emulator`.
#[derive(clap::Args)]
pub struct EmulatorArgs {
    /// Port to listen on (loopback unless --bind says otherwise).
    #[arg(long, default_value_t = 8008)]
    pub port: u16,
}

pub fn run(_args: EmulatorArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the emulator subcommand is not wired yet")
}
