//! `clearml-k8s-agent emulator`: serve the in-memory ClearML API (crate `clearml-emulator`) until Ctrl-C/SIGTERM.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clearml_emulator::{DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Emulator, EmulatorConfig};

/// Arguments of `clearml-k8s-agent emulator`.
#[derive(clap::Args)]
pub struct EmulatorArgs {
    /// Port to listen on (loopback unless --bind says otherwise); 0 picks a free port.
    #[arg(long, default_value_t = 8008)]
    pub port: u16,
    /// Address to bind. Loopback by default: the emulator has one shared key pair and no TLS.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// Access key clients log in with.
    #[arg(long, env = "CLEARML_EMULATOR_ACCESS_KEY", default_value = DEFAULT_ACCESS_KEY)]
    pub access_key: String,
    /// Secret key clients log in with.
    #[arg(long, env = "CLEARML_EMULATOR_SECRET_KEY", default_value = DEFAULT_SECRET_KEY, hide_default_value = true, hide_env_values = true)]
    pub secret_key: String,
    /// JSON file to load the state from at start (if it exists) and save it to on shutdown.
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// `feature_set` claim of the tokens: `basic` (open-source server) or e.g. `enterprise`, which also serves the
    /// enterprise-only endpoints.
    #[arg(long, default_value = "basic")]
    pub feature_set: String,
    /// Write the actual listening address (`http://host:port`) to this file once bound (for scripts using --port 0).
    #[arg(long)]
    pub url_file: Option<PathBuf>,
}

pub fn run(args: EmulatorArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: EmulatorArgs) -> anyhow::Result<()> {
    let config = EmulatorConfig {
        bind: SocketAddr::new(args.bind, args.port),
        credentials: vec![(args.access_key.clone(), args.secret_key)],
        state_file: args.state_file,
        feature_set: args.feature_set,
        ..EmulatorConfig::default()
    };
    let addr = config.bind;
    let emulator = Emulator::new(config)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let url = format!("http://{local}");
    if let Some(path) = &args.url_file {
        std::fs::write(path, &url).with_context(|| format!("writing {}", path.display()))?;
    }
    tracing::info!(%url, access_key = %args.access_key, "ClearML API emulator listening");
    emulator.serve(listener, crate::signal::shutdown()).await?;
    Ok(())
}
