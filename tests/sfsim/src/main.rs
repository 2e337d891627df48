//! `sfsim`: a local Salesforce for development, demos and tests.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

// sfsim builds and drops many small JSON values per page; glibc malloc
// spends more time than the rest of the server on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A local Salesforce that answers as the real one does (OAuth JWT bearer,
/// SOQL, REST writes, composite, SOSL, limits, faults), with a control API
/// under /sfsim/ to create orgs, apps, users and data.
///
/// Without a subcommand it serves, reading the same options as `serve`
/// (`FA_SF_HTTP_ADDR` among them).
#[derive(Parser)]
#[command(name = "sfsim", version, about, long_about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

/// What `serve` (and `sfsim` alone) reads.
#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "FA_SF_HTTP_ADDR", default_value = "127.0.0.1:8090")]
    addr: SocketAddr,
    /// Create a demo org with generated Japanese customers and write its
    /// credentials (consumer key, username, server.key) into this folder.
    #[arg(long)]
    demo: Option<PathBuf>,
    /// Records of each kind in the demo org.
    #[arg(long, default_value_t = 300)]
    demo_records: usize,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve(ServeArgs),
    /// Make a private key (server.key) and self-signed certificate
    /// (server.crt), as the setup guide has admins do with OpenSSL.
    Keygen {
        /// Folder to write server.key and server.crt into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// The certificate's common name.
        #[arg(long, default_value = "fa_jwt")]
        common_name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Keygen { out, common_name } => {
            match sfsim::keygen::generate(&common_name).and_then(|pair| sfsim::keygen::write_files(&pair, &out)) {
                Ok(()) => {
                    println!("wrote {} and {}", out.join("server.key").display(), out.join("server.crt").display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve(ServeArgs { addr, demo, demo_records }) => serve(addr, demo, demo_records),
    }
}

fn serve(addr: SocketAddr, demo: Option<PathBuf>, demo_records: usize) -> ExitCode {
    tracing_subscriber::fmt().with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into())).init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let server = match sfsim::server::Server::start(addr, Default::default()).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot listen on {addr} (FA_SF_HTTP_ADDR): {e}");
                return ExitCode::from(2);
            }
        };
        if let Some(dir) = demo {
            match demo_org(&server, &dir, demo_records) {
                Ok(()) => {}
                Err(e) => {
                    eprintln!("error: cannot create the demo org: {e:#}");
                    return ExitCode::FAILURE;
                }
            }
        }
        tracing::info!(url = %server.url, "sfsim is serving; control API under /sfsim/");
        let _ = tokio::signal::ctrl_c().await;
        ExitCode::SUCCESS
    })
}

fn demo_org(server: &sfsim::server::Server, dir: &std::path::Path, records: usize) -> anyhow::Result<()> {
    let fixture = sfsim::fixture::connected_org(&server.sim, "Demo Shoji")?;
    sfsim::control::generate_into(&server.sim, &fixture.org, records, records, records / 2, 7, 730);
    std::fs::create_dir_all(dir)?;
    sfsim::keygen::write_files(&fixture.keys, dir)?;
    let credentials = serde_json::json!({
        "login_url": server.url,
        "consumer_key": fixture.consumer_key,
        "username": fixture.username,
        "private_key_file": dir.join("server.key"),
        "org_id": fixture.org.id,
    });
    std::fs::write(dir.join("credentials.json"), serde_json::to_string_pretty(&credentials)?)?;
    tracing::info!(org_id = %fixture.org.id, consumer_key = %fixture.consumer_key, username = %fixture.username,
        credentials = %dir.join("credentials.json").display(), "demo org ready");
    Ok(())
}
