//! The `sfsim` binary: help, the keygen subcommand the setup guide's
//! OpenSSL step stands for, and a demo org served over HTTP.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

const SFSIM: &str = env!("CARGO_BIN_EXE_sfsim");

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sfsim-{name}-{}-{}", std::process::id(), uuid_like()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

#[test]
fn help_and_version_describe_the_simulator() {
    let help = Command::new(SFSIM).arg("--help").output().expect("run");
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("serve") && text.contains("keygen"), "{text}");
    let version = Command::new(SFSIM).arg("--version").output().expect("run");
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), format!("sfsim {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn keygen_writes_a_pkcs8_key_and_the_certificate_that_matches_it() {
    let dir = temp_dir("keygen");
    let out = Command::new(SFSIM).args(["keygen", "--out"]).arg(&dir).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = std::fs::read_to_string(dir.join("server.key")).expect("server.key");
    let crt = std::fs::read_to_string(dir.join("server.crt")).expect("server.crt");
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "OpenSSL 3 writes PKCS#8: {key:.40}");
    assert!(crt.starts_with("-----BEGIN CERTIFICATE-----"));
    // The pair works: an org with this certificate accepts assertions signed by this key.
    let sim = sfsim::store::Sim::new(Default::default());
    let org = sim.create_org("k", sfsim::store::Locale::JaJp, false, None);
    let app = sim.create_app(&org, None, crt);
    let user = sim
        .create_user(
            &org,
            &sfsim::store::NewUser {
                username: "k@k.example.com".into(),
                first_name: None,
                last_name: "k".into(),
                email: None,
                active: true,
                user_type: "Standard".into(),
            },
        )
        .expect("user");
    sim.approve(&app, &user, true);
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let claims = json!({ "iss": app, "sub": "k@k.example.com", "aud": "https://login.salesforce.com",
        "exp": time::OffsetDateTime::now_utc().unix_timestamp() + 120 });
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(key.as_bytes()).expect("key"),
    )
    .expect("sign");
    let grant = sfsim::oauth::exchange(
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer"),
        Some(&jwt),
        &["https://login.salesforce.com"],
        time::OffsetDateTime::now_utc(),
        &sim,
    );
    assert!(grant.is_ok(), "{:?}", grant.err());
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn serve_with_a_demo_org_writes_credentials_that_log_in() {
    let dir = temp_dir("demo");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let mut child = Command::new(SFSIM)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--demo-records", "50", "--demo"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let credentials = dir.join("credentials.json");
    let started = Instant::now();
    while !credentials.exists() {
        assert!(started.elapsed() < Duration::from_secs(30), "no credentials.json");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let creds: Value = serde_json::from_str(&std::fs::read_to_string(&credentials).expect("read")).expect("json");
    let key = std::fs::read_to_string(dir.join("server.key")).expect("key");
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let claims = json!({ "iss": creds["consumer_key"], "sub": creds["username"], "aud": "https://login.salesforce.com",
        "exp": time::OffsetDateTime::now_utc().unix_timestamp() + 120 });
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(key.as_bytes()).expect("key"),
    )
    .expect("sign");
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{}/services/oauth2/token", creds["login_url"].as_str().expect("url")))
        .form(&[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", jwt.as_str())])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let token = login["access_token"].as_str().expect("token");
    let count: Value = http
        .get(format!("http://127.0.0.1:{port}/services/data/v61.0/query"))
        .query(&[("q", "SELECT COUNT() FROM Lead")])
        .bearer_auth(token)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(count["totalSize"], 50);
    child.kill().ok();
    child.wait().ok();
    std::fs::remove_dir_all(dir).ok();
}

/// runtime.md (the runtime contract, outside this repository) gives sfsim
/// `FA_SF_HTTP_ADDR`; `sfsim` alone serves, as
/// `sfsim serve` does, and listens there.
#[tokio::test]
async fn without_a_subcommand_it_serves_on_fa_sf_http_addr() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let mut child = Command::new(SFSIM)
        .env("FA_SF_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let http = reqwest::Client::new();
    let started = Instant::now();
    let versions = loop {
        match http.get(format!("http://127.0.0.1:{port}/services/data")).send().await {
            Ok(answer) => break answer,
            Err(e) => {
                assert!(started.elapsed() < Duration::from_secs(30), "sfsim never listened on FA_SF_HTTP_ADDR: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(versions.status(), 200);
    child.kill().ok();
    child.wait().ok();
}

#[tokio::test]
async fn generated_customers_look_like_a_japanese_org() {
    let server = sfsim::server::Server::start_local().await.expect("sfsim");
    let org = sfsim::fixture::connected_org(&server.sim, "Gen").expect("org");
    let http = reqwest::Client::new();
    let made: Value = http
        .post(format!("{}/sfsim/orgs/{}/generate", server.url, org.org.id))
        .json(&json!({ "leads": 5000, "contacts": 500, "accounts": 100, "seed": 5 }))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(made, json!({ "leads": 5000, "contacts": 500, "accounts": 100 }));
    let leads: Vec<Value> = http
        .get(format!("{}/sfsim/orgs/{}/records/Lead", server.url, org.org.id))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(leads.len(), 5000);
    let phones: Vec<&str> = leads.iter().filter_map(|l| l["Phone"].as_str()).collect();
    assert!(phones.iter().any(|p| p.contains('-')) && phones.iter().any(|p| p.starts_with("+81")), "typed forms vary");
    let stamps: Vec<&str> = leads.iter().filter_map(|l| l["SystemModstamp"].as_str()).collect();
    let (oldest, newest) = (stamps.iter().min().expect("min"), stamps.iter().max().expect("max"));
    let year = |stamp: &str| stamp[..4].parse::<i32>().expect("year");
    assert!(year(oldest) < year(newest), "modstamps spread over two years: {oldest} .. {newest}");
    let mut counts = std::collections::HashMap::new();
    for s in &stamps {
        *counts.entry(*s).or_insert(0) += 1;
    }
    assert!(counts.values().any(|n| *n >= 50), "a bulk import shares one timestamp");
    let contacts: Vec<Value> = http
        .get(format!("{}/sfsim/orgs/{}/records/Contact", server.url, org.org.id))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert!(contacts.iter().any(|c| c["AccountId"].is_null()) && contacts.iter().any(|c| c["AccountId"].is_string()));
    let named: Vec<&str> = contacts.iter().filter_map(|c| c["Name"].as_str()).collect();
    let first = &contacts[0];
    if let (Some(last), Some(given)) = (first["LastName"].as_str(), first["FirstName"].as_str()) {
        assert_eq!(first["Name"], format!("{last} {given}"), "ja_JP composes 姓 名");
    }
    assert_eq!(named.len(), 500);
}
