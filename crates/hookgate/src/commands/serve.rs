//! `hookgate serve`: runs the server until interrupted.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use hookgate_server::settings::Settings;

/// Options of `hookgate serve`.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  hookgate serve\n  hookgate serve --config hookgate.toml\n  \
HOOKGATE_LISTEN=0.0.0.0:8080 HOOKGATE_DELIVERY__TIMEOUT_MS=5000 hookgate serve\n  \
hookgate serve --database-url postgres://hookgate@db.internal/hookgate"
)]
pub struct Args {
    /// Settings file (TOML); HOOKGATE_* variables override it.
    #[arg(long, short, env = "HOOKGATE_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (overrides the settings).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Data directory (overrides the settings).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// PostgreSQL URL (overrides the settings; also HOOKGATE_DATABASE_URL):
    /// nodes given the same database share the work.
    #[arg(long)]
    database_url: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut settings = Settings::load(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        settings.data_dir = dir;
    }
    if let Some(url) = args.database_url {
        settings.database_url = Some(url);
        settings.validate()?;
    }
    super::init_logging(&settings.log);
    for name in Settings::unused_environment() {
        let is_client_variable = crate::profile::ENVIRONMENT.contains(&name.as_str());
        if !is_client_variable && !name.starts_with("HOOKGATE_TEST_") {
            tracing::warn!("{name} names no server setting and is ignored");
        }
    }

    let server = hookgate_server::start(settings.clone())
        .await
        .context("starting the server")?;
    if server.admin_token_generated {
        eprintln!(
            "Generated an admin token (shown once; also stored in {}):\n  {}",
            settings.data_dir.join("admin-token").display(),
            server.admin_token
        );
    }
    eprintln!("hookgate listening on http://{}", server.addr);
    eprintln!(
        "  signing public key (WaaS 2.0, Ed25519): {}",
        server.public_key_v2
    );

    tokio::select! {
        outcome = server.wait() => outcome?,
        _ = shutdown_signal() => eprintln!("stopping"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM can be watched");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
