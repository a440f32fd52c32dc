//! Serve the emulator without building the whole CLI (which compiles wasmtime): handy while working on this crate.
//! `cargo run -p clearml-emulator --example serve -- 8008`. The supported entry point is
//! `clearml-k8s-agent emulator`.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "debug".into()),
        )
        .init();
    let port: u16 = std::env::args()
        .nth(1)
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(8008);
    let config = clearml_emulator::EmulatorConfig {
        bind: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        ..Default::default()
    };
    let emulator = clearml_emulator::Emulator::new(config.clone())?;
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    emulator
        .serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
