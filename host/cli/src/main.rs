//! `clearml-k8s-agent`: the one binary. Parses the command line and hands over to the library crates; no logic here.

mod cache;
mod emulator;
mod policy;
mod render;
mod run;
mod signal;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "clearml-k8s-agent",
    version,
    about = "Run ClearML tasks on Kubernetes, shaped by WebAssembly queue policies"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines (colours only when stderr is a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent: pull tasks from the values' queues and submit one pod per task.
    Run(run::RunArgs),
    /// Print the pod the agent would submit for a task, and each policy's changes, without submitting.
    Render(render::RenderArgs),
    /// Develop and test queue policies offline (test, run, bench, inspect).
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Run the in-memory ClearML API server emulator.
    Emulator(emulator::EmulatorArgs),
}

fn init_logging(format: LogFormat) {
    // Policies' own log lines are printed by the `policy` commands themselves; through tracing only their warnings
    // and errors, unless RUST_LOG asks for more.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,policy_runtime::state=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help, --version
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(run::EXIT_CONFIG);
        }
    };
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Render(args) => render::run(args),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Emulator(args) => emulator::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
