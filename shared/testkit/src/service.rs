//! The promises every service binary keeps (runtime.md, the runtime contract
//! outside this repository), written once and
//! checked against each of the three binaries by their own tests.

use std::{collections::HashMap, path::Path, time::Duration};

use crate::{TestDatabase, TestVhost, eventually, process::Service};

/// A binary under test and the variables it requires besides the common ones.
pub struct Binary<'a> {
    /// The binary's name, as `--version` prints it.
    pub name: &'a str,
    /// Its path (`env!("CARGO_BIN_EXE_<name>")`).
    pub path: &'a str,
    /// Values for the variables only this service requires.
    pub required: &'a [(&'a str, &'a str)],
}

impl Binary<'_> {
    fn env(&self, amqp_url: &str, database_url: &str, port: u16) -> HashMap<String, String> {
        let mut env: HashMap<String, String> =
            self.required.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        env.insert("FA_SF_AMQP_URL".into(), amqp_url.into());
        env.insert("FA_SF_DATABASE_URL".into(), database_url.into());
        env.insert("FA_SF_HTTP_ADDR".into(), format!("127.0.0.1:{port}"));
        env.insert("RUST_LOG".into(), "debug".into());
        env
    }

    fn start(&self, env: &HashMap<String, String>) -> Service {
        Service::start(Path::new(self.path), &[], env).expect("the binary starts")
    }
}

async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let response = reqwest::get(format!("http://127.0.0.1:{port}{path}")).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

/// Waits up to 30 s for the service on `port` to answer `/readyz` with 200,
/// and returns that answer's body; panics (failing the test) after that.
pub async fn wait_ready(port: u16) -> String {
    eventually(Duration::from_secs(30), "/readyz to answer 200", || async {
        http_get(port, "/readyz").await.filter(|(status, _)| *status == 200)
    })
    .await
    .1
}

/// `--help` describes the service and its configuration; `--version` names
/// it with its version; both exit 0 without touching any dependency.
pub fn answers_help_and_version(binary: &Binary<'_>) {
    let help = std::process::Command::new(binary.path).arg("--help").output().expect("run --help");
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success(), "--help failed: {}", String::from_utf8_lossy(&help.stderr));
    assert!(text.contains("Usage:") && text.contains(binary.name), "{text}");
    assert!(
        text.contains("FA_SF_AMQP_URL") && text.contains("FA_SF_HTTP_ADDR"),
        "--help names the configuration: {text}"
    );
    let version = std::process::Command::new(binary.path).arg("--version").output().expect("run --version");
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("{} {}", binary.name, env!("CARGO_PKG_VERSION"))
    );
}

/// With its database and broker up, the service is healthy and ready, serves
/// metrics, and exits 0 within 30 s of SIGTERM without logging anything at
/// WARN or ERROR on the way out.
///
/// It gets the variables of the ConfigMap every service shares
/// (`k8s/base/connector-config.env`) as Kubernetes gives them, most of them read
/// by other services: none of them is an unknown variable that stops it.
pub async fn serves_health_readiness_metrics_and_stops_on_sigterm(binary: &Binary<'_>) {
    let db = TestDatabase::create().await.expect("database");
    let vhost = TestVhost::create().expect("vhost");
    let port = crate::process::free_port().expect("port");
    let mut env = binary.env(&vhost.url, &db.url, port);
    for (name, value) in shared_config_map() {
        // Its OTLP collector does not exist here (exports_traces_... checks export).
        if !name.starts_with("OTEL_") {
            env.entry(name).or_insert(value);
        }
    }
    assert!(env.contains_key("FA_SF_TIMEZONE") && env.contains_key("FA_SF_IMPORT_INTERVAL"), "{env:?}");
    let mut service = binary.start(&env);

    let ready = wait_ready(port).await;
    assert!(ready.contains("\"ready\":true"), "{ready}");
    assert_eq!(http_get(port, "/healthz").await, Some((200, "ok\n".to_owned())));
    let (status, metrics) = http_get(port, "/metrics").await.expect("/metrics answers");
    assert_eq!(status, 200);
    assert!(metrics.contains(&format!("fa_build_info{{service=\"{}\"", binary.name)), "{metrics}");
    assert!(metrics.contains("fa_amqp_connection_up"), "{metrics}");

    service.signal("TERM").expect("SIGTERM");
    let (exit, took) = service.wait(Duration::from_secs(30)).expect("exits within 30 s of SIGTERM");
    assert!(exit.success(), "exit status {exit:?}; stderr:\n{}", service.stderr());
    assert!(took < Duration::from_secs(30));
    // Logs are JSON lines by default.
    let stdout = service.stdout();
    let first = stdout.lines().next().unwrap_or_default();
    assert!(serde_json::from_str::<serde_json::Value>(first).is_ok(), "not a JSON log line: {first}");
    // A stop we asked for reads as one: nothing at WARN or ERROR. (Alone,
    // without the token-broker, a service may warn before: nobody declared
    // the exchange its token client listens to.)
    let bad = crate::process::warnings_and_errors_while_stopping(&stdout, &service.stderr());
    assert!(bad.is_empty(), "a clean stop logged at WARN or ERROR:\n{}\n\nwhole log:\n{stdout}", bad.join("\n"));
}

/// While RabbitMQ cannot be reached the service stays up, `/readyz` answers
/// 503 naming the broker, and it becomes ready by itself once the broker is
/// there, without a restart.
pub async fn is_not_ready_while_rabbitmq_is_unreachable(binary: &Binary<'_>) {
    let db = TestDatabase::create().await.expect("database");
    let vhost = TestVhost::planned();
    let port = crate::process::free_port().expect("port");
    let mut service = binary.start(&binary.env(&vhost.url, &db.url, port));

    let (_, body) = eventually(Duration::from_secs(30), "/readyz to answer 503", || async {
        http_get(port, "/readyz").await.filter(|(status, _)| *status == 503)
    })
    .await;
    let report: serde_json::Value = serde_json::from_str(&body).expect("a JSON reason");
    assert_eq!(report["ready"], false);
    // Names only: /readyz takes no credentials, the reason is in the log.
    let failing: Vec<&str> =
        report["failing"].as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect()).unwrap_or_default();
    assert!(failing.contains(&"amqp") && !failing.contains(&"database"), "{report}");
    eventually(Duration::from_secs(5), "the reason in the log", || async {
        let out = service.stdout();
        out.lines().any(|l| l.contains("readiness check failing") && l.contains("amqp")).then_some(())
    })
    .await;
    // Not ready, but alive: its consumers wait for the broker, and a
    // restart would not bring it sooner.
    assert_eq!(http_get(port, "/healthz").await, Some((200, "ok\n".to_owned())));

    vhost.add().expect("the broker becomes reachable");
    eventually(Duration::from_secs(30), "/readyz to answer 200 once RabbitMQ is back", || async {
        http_get(port, "/readyz").await.filter(|(status, _)| *status == 200)
    })
    .await;
    service.signal("TERM").expect("SIGTERM");
    let (exit, _) = service.wait(Duration::from_secs(30)).expect("exits within 30 s");
    assert!(exit.success(), "stderr:\n{}", service.stderr());
}

/// Without its database the service does not start: it exits non-zero with
/// one line naming `FA_SF_DATABASE_URL`.
pub async fn stops_with_one_line_when_the_database_is_unreachable(binary: &Binary<'_>) {
    let port = crate::process::free_port().expect("port");
    let env = binary.env("amqp://guest:guest@127.0.0.1:5672/%2f", "postgres://postgres:s3cret@127.0.0.1:1/fa", port);
    let mut service = binary.start(&env);
    let (exit, _) = service.wait(Duration::from_secs(30)).expect("exits");
    assert!(!exit.success());
    let stderr = service.stderr();
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got:\n{stderr}");
    assert!(lines[0].contains("FA_SF_DATABASE_URL"), "{stderr}");
    assert!(!stderr.contains("s3cret") && !service.stdout().contains("s3cret"), "the password leaked");
}

/// A required variable left unset stops the service before it does
/// anything, with one line naming the variable.
pub fn names_a_missing_variable(binary: &Binary<'_>, variable: &str) {
    expect_config_error(binary, variable, None);
}

/// A malformed value stops the service before it does anything, with one
/// line naming the variable.
pub fn names_a_malformed_variable(binary: &Binary<'_>, variable: &str, value: &str) {
    expect_config_error(binary, variable, Some(value));
}

fn expect_config_error(binary: &Binary<'_>, variable: &str, value: Option<&str>) {
    let mut env = binary.env("amqp://guest:guest@127.0.0.1:5672/%2f", "postgres://postgres@127.0.0.1:5432/fa", 0);
    match value {
        None => env.remove(variable),
        Some(v) => env.insert(variable.to_owned(), v.to_owned()),
    };
    let stderr = stops_with_exit_2(binary, &env, &format!("{variable}={value:?}"));
    assert!(stderr.contains(variable), "{variable}={value:?}: {stderr}");
}

/// Starts the binary with `env` and expects it to stop at once with exit
/// code 2 and one line on stderr, which it returns.
fn stops_with_exit_2(binary: &Binary<'_>, env: &HashMap<String, String>, case: &str) -> String {
    let mut service = binary.start(env);
    let (exit, _) = service.wait(Duration::from_secs(10)).expect("exits");
    let stderr = service.stderr();
    assert_eq!(exit.code(), Some(2), "{case}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{case}: {stderr}");
    stderr
}

/// An `FA_SF_*` variable no binary reads, here a typo of `FA_SF_AMQP_URL`,
/// stops the service before it does anything: exit code 2 and one line
/// naming the variable and the known one it is closest to.
pub fn names_an_unknown_variable_and_the_closest_known_one(binary: &Binary<'_>) {
    let mut env = binary.env("amqp://guest:guest@127.0.0.1:5672/%2f", "postgres://postgres@127.0.0.1:5432/fa", 0);
    env.insert("FA_SF_AMQP_ULR".to_owned(), "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let stderr = stops_with_exit_2(binary, &env, "FA_SF_AMQP_ULR");
    assert_eq!(stderr.trim_end(), "error: unknown variable FA_SF_AMQP_ULR; did you mean FA_SF_AMQP_URL?");
}

/// A key of the `FA_SF_CONFIG` file no binary reads, here `amqp_ulr`,
/// stops the service the same way, naming the file.
pub fn names_an_unknown_file_key_and_the_closest_known_one(binary: &Binary<'_>) {
    let dir = std::env::temp_dir().join(format!("fa-test-config-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("config.toml");
    std::fs::write(&path, "log_format = \"json\"\namqp_ulr = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\n")
        .expect("write the file");
    let path = path.to_str().expect("a UTF-8 path").to_owned();
    let mut env = binary.env("amqp://guest:guest@127.0.0.1:5672/%2f", "postgres://postgres@127.0.0.1:5432/fa", 0);
    env.insert("FA_SF_CONFIG".to_owned(), path.clone());
    let stderr = stops_with_exit_2(binary, &env, "amqp_ulr in the file");
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(
        stderr.trim_end(),
        format!("error: unknown configuration key \"amqp_ulr\" in {path}; did you mean \"amqp_url\"?")
    );
}

/// The entries of the ConfigMap every service's Deployment takes its
/// environment from, as its generator reads them
/// (`k8s/base/connector-config.env`): `NAME=value` lines and comments.
pub fn shared_config_map() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../k8s/base/connector-config.env");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let entries: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    assert!(!entries.is_empty(), "no entries in {}", path.display());
    entries
}

/// With `OTEL_EXPORTER_OTLP_ENDPOINT` set, the service exports its spans
/// over OTLP/HTTP, at the latest when it shuts down.
pub async fn exports_traces_when_an_otlp_endpoint_is_set(binary: &Binary<'_>) {
    let db = TestDatabase::create().await.expect("database");
    let vhost = TestVhost::create().expect("vhost");
    let collector = FakeCollector::start();
    let port = crate::process::free_port().expect("port");
    let mut env = binary.env(&vhost.url, &db.url, port);
    env.insert("OTEL_EXPORTER_OTLP_ENDPOINT".into(), format!("http://127.0.0.1:{}", collector.port));
    let mut service = binary.start(&env);
    wait_ready(port).await;
    service.signal("TERM").expect("SIGTERM");
    let (exit, _) = service.wait(Duration::from_secs(30)).expect("exits within 30 s");
    assert!(exit.success(), "stderr:\n{}", service.stderr());
    let requests = collector.requests();
    assert!(
        requests.iter().any(|r| r.starts_with("POST /v1/traces")),
        "no spans reached the collector; requests: {requests:?}; stderr:\n{}",
        service.stderr()
    );
}

/// An OTLP/HTTP endpoint that answers 200 to everything and remembers each
/// request line.
struct FakeCollector {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeCollector {
    fn start() -> Self {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut length = 0usize;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                    if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                if let Ok(mut seen) = sink.lock() {
                    seen.push(line.trim().to_owned());
                }
                let _ =
                    reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });
        Self { port, seen }
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}
