//! `make bench`: sfsim's own throughput, so that it never limits the
//! connector's benchmarks.
//!
//! 1. Simple API calls (`GET /sobjects/Lead/{id}`, authenticated, counted
//!    against the allowance) from CONCURRENCY clients: requests per second.
//! 2. Paging through 100,000 Leads with the importer's keyset query, 2,000
//!    a page: the server time the 50 pages cost (measured around the
//!    handlers, JSON encoding included) and the wall time seen by a client.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{extract::Request, middleware::Next, response::Response};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sfsim::store::{Sim, SimConfig};

const CALLS: usize = 20_000;

// sfsim builds and drops many small JSON values per page; glibc malloc
// spends more time than the rest of the server on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
const CONCURRENCY: usize = 32;
const RECORDS: usize = 100_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server_nanos = Arc::new(AtomicU64::new(0));
    let sim = Sim::new(SimConfig::default());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{}", listener.local_addr()?);
    sim.set_instance_url_for_bench(url.clone());
    let timer = server_nanos.clone();
    let app = sfsim::server::app(sim.clone()).layer(axum::middleware::from_fn(move |req: Request, next: Next| {
        let timer = timer.clone();
        async move {
            let started = Instant::now();
            let response: Response = next.run(req).await;
            timer.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            response
        }
    }));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let org = sfsim::fixture::connected_org_with(&sim, "Bench", sfsim::store::Locale::JaJp, Some(10_000_000))?;
    let generated = Instant::now();
    sfsim::control::generate_into(&sim, &org.org, RECORDS, 0, 0, 3, 730);
    let generate_secs = generated.elapsed().as_secs_f64();

    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let claims = json!({ "iss": org.consumer_key, "sub": org.username, "aud": "https://login.salesforce.com",
        "exp": time::OffsetDateTime::now_utc().unix_timestamp() + 180 });
    let jwt = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(org.keys.private_key_pem.as_bytes())?,
    )?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build()?;
    let login: Value = http
        .post(format!("{url}/services/oauth2/token"))
        .form(&[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", jwt.as_str())])
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"].as_str().ok_or_else(|| anyhow::anyhow!("login failed: {login}"))?.to_owned();
    let sample: Value = http
        .get(format!("{url}/services/data/v61.0/query"))
        .query(&[("q", "SELECT Id FROM Lead LIMIT 200")])
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let ids: Vec<String> = sample["records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["Id"].as_str().map(str::to_owned))
        .collect();
    let ids = Arc::new(ids);

    // 1. Simple calls.
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|t| {
            let (http, url, token, ids) = (http.clone(), url.clone(), token.clone(), ids.clone());
            tokio::spawn(async move {
                for i in (t..CALLS).step_by(CONCURRENCY) {
                    let id = &ids[i % ids.len()];
                    let response = http
                        .get(format!("{url}/services/data/v61.0/sobjects/Lead/{id}"))
                        .bearer_auth(&token)
                        .send()
                        .await?;
                    anyhow::ensure!(response.status().is_success(), "status {}", response.status());
                    response.bytes().await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let calls_per_sec = CALLS as f64 / started.elapsed().as_secs_f64();

    // 2. Paging 100,000 records.
    server_nanos.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let soql = "SELECT Id, FirstName, LastName, Company, Email, Phone, SystemModstamp FROM Lead \
                WHERE IsConverted = false AND SystemModstamp >= 2020-01-01T00:00:00Z ORDER BY SystemModstamp, Id";
    // The client only finds the next locator and counts rows, so that its
    // own JSON decoding does not take the cores the server is measured on.
    let mut page = http
        .get(format!("{url}/services/data/v61.0/query"))
        .query(&[("q", soql)])
        .bearer_auth(&token)
        .send()
        .await?
        .bytes()
        .await?;
    let mut rows = 0;
    let mut pages = 0;
    loop {
        pages += 1;
        let text = std::str::from_utf8(&page)?;
        rows += text.matches("{\"attributes\":").count();
        let Some((next, _)) = text.split_once("\"nextRecordsUrl\":\"").and_then(|(_, rest)| rest.split_once('"'))
        else {
            break;
        };
        let next = format!("{url}{next}");
        page = http.get(next).bearer_auth(&token).send().await?.bytes().await?;
    }
    let paging_wall = started.elapsed();
    let paging_server = Duration::from_nanos(server_nanos.load(Ordering::Relaxed));
    anyhow::ensure!(rows == RECORDS, "paged {rows} of {RECORDS} records");

    println!("sfsim, in-process on loopback, release build");
    println!("  generate {RECORDS} Japanese Leads: {generate_secs:.2} s");
    println!("  simple API calls (GET /sobjects/Lead/{{id}}, {CONCURRENCY} clients): {calls_per_sec:.0} requests/s");
    println!(
        "  page {RECORDS} Leads ({pages} pages of 2,000, keyset query): server time {:.0} ms, client wall time {:.0} ms",
        paging_server.as_secs_f64() * 1e3,
        paging_wall.as_secs_f64() * 1e3
    );
    Ok(())
}
