//! `clearml-k8s-agent`: the one binary. Parses the command line and hands over to the library crates; no logic here.

mod emulator;
mod policy;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "clearml-k8s-agent",
    version,
    about = "Run ClearML tasks on Kubernetes, shaped by WebAssembly queue policies"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Develop and test queue policies offline (test, run, bench, inspect).
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Run the in-memory ClearML API server emulator.
    Emulator(emulator::EmulatorArgs),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            // Policies' own log lines are printed by the `policy` commands themselves; through tracing only
            // their warnings and errors, unless RUST_LOG asks for more.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,policy_runtime::state=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy(cmd) => policy::run(cmd),
        Command::Emulator(args) => emulator::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
