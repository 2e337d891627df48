//! `fa-migrate [URL]`: applies the connector's migrations to the database at
//! URL (default `FA_SF_DATABASE_URL`, then the default README.md's
//! "Configuration" gives, which is runtime.md's) and exits.
//! The services migrate at start anyway; this is for an SRE who wants the
//! schema ready before rolling out, and for the tests, which start several at
//! once as replicas starting together would.

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("FA_SF_DATABASE_URL").ok())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/fa_salesforce".to_owned());
    match fa_store::connect(&url, fa_store::PoolOptions::default()).await {
        Ok(pool) => {
            pool.close().await;
            println!("migrated");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
