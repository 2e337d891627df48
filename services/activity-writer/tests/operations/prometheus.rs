//! What the SRE looks at, checked against a real Prometheus (Debian's
//! `prometheus` package): it scrapes the running token-broker, an
//! activity-writer process and RabbitMQ's own metrics (the
//! `rabbitmq_prometheus` plugin, which `make deps` enables) under the job
//! names of deploy/prometheus/prometheus.yml, and loads
//! deploy/prometheus/alerts.yaml. After some traffic (Tasks written, one
//! event dead-lettered), every query of deploy/grafana/connector-dashboard.json
//! evaluates without error, the core panels have data, and Prometheus
//! evaluates every alerting rule without error.

use std::{
    collections::HashMap,
    net::TcpStream,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::common::{Stack, event, id_of};
use fa_testkit::process::Service;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const PROMETHEUS: &str = "/usr/bin/prometheus";
/// RabbitMQ's Prometheus plugin.
const RABBITMQ_METRICS: &str = "127.0.0.1:15692";

/// What Grafana would put for its built-in variables. `$__rate_interval`
/// is at least four scrape intervals in Grafana; a minute is plenty here
/// (1 s scrapes) and what a dashboard opened on "last hour" would use.
/// Longer names first, so that `$__interval` does not eat `$__interval_ms`.
const GRAFANA_BUILTINS: &[(&str, &str)] = &[
    ("__rate_interval", "1m"),
    ("__interval_ms", "15000"),
    ("__interval", "15s"),
    ("__range_ms", "3600000"),
    ("__range_s", "3600"),
    ("__range", "1h"),
];

/// Panels an SRE needs during an incident: each of their queries must
/// return series after the traffic this test drives, not just parse.
const CORE_PANELS: &[&str] = &[
    "Running instances / version",
    "AMQP connection",
    "Scrape targets up",
    "Publishes by outcome",
    "Deliveries by outcome per queue",
    "Dead-letter and input queue depth (RabbitMQ)",
    "Requests by outcome",
    "Token requests by outcome",
    "Token exchanges with Salesforce by outcome",
    "Token exchange duration p50 / p99",
    "Events in",
    "Tasks written / failed",
    "Events by outcome",
    "Publish to Task p50 / p99",
    "activity-writer.assist backlog and DLQ",
];

#[tokio::test]
async fn prometheus_evaluates_every_dashboard_query_and_alert_rule_against_the_running_services() {
    let started = Instant::now();
    assert!(
        Path::new(PROMETHEUS).exists(),
        "{PROMETHEUS} is missing: install Debian's `prometheus` package (make deps installs it for promtool)"
    );
    assert!(
        TcpStream::connect_timeout(&RABBITMQ_METRICS.parse().expect("address"), Duration::from_secs(2)).is_ok(),
        "RabbitMQ's Prometheus plugin does not answer on {RABBITMQ_METRICS}: run `make deps` \
         (deploy/local/deps.sh enables it) or `rabbitmq-plugins enable rabbitmq_prometheus`"
    );
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let alerts = deploy.join("prometheus/alerts.yaml").canonicalize().expect("deploy/prometheus/alerts.yaml");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy.join("grafana/connector-dashboard.json")).expect("the dashboard"),
    )
    .expect("the dashboard is JSON");

    let mut stack = Stack::start(&["Lead"]).await;
    let lead = stack.seed("Lead", json!({ "LastName": "監視", "Company": "株式会社メトリクス" })).await;
    let owner = stack.create_user("山田");
    stack.link_user("u-1001", &owner).await;
    let writer = stack.start_writer().await;
    let writer_port = stack.writers[writer].1;

    // The job names of deploy/prometheus/prometheus.yml: the `up{job=...}`
    // panels and rules rely on them.
    let local_config = std::fs::read_to_string(deploy.join("prometheus/prometheus.yml")).expect("prometheus.yml");
    let jobs = [
        ("token-broker", "/metrics", format!("127.0.0.1:{}", stack.broker_port)),
        ("activity-writer", "/metrics", format!("127.0.0.1:{writer_port}")),
        ("rabbitmq", "/metrics/per-object", RABBITMQ_METRICS.to_owned()),
    ];
    for (job, path, _) in &jobs {
        assert!(
            local_config.contains(&format!("- job_name: {job}")),
            "deploy/prometheus/prometheus.yml has no job {job}: keep this test's jobs in step with it"
        );
        assert!(*path == "/metrics" || local_config.contains(&format!("metrics_path: {path}")), "{path}");
    }
    let prometheus = Prometheus::start(&alerts, &jobs).await;
    prometheus.wait_targets_up(jobs.len()).await;

    // Traffic: calls written as Tasks, one malformed message dead-lettered.
    let events: Vec<Value> = (0..4)
        .map(|i| {
            event(json!({
                "id": format!("c-prom-{i}"), "name": "監視 太郎",
                "salesforce": { "object": "Lead", "id": lead[0] },
            }))
        })
        .collect();
    for e in &events {
        stack.publish(e).await;
    }
    stack.publish_raw(b"{ not json", "as_prom_broken", crate::common::TENANT).await;
    let mut ids: Vec<&str> = events.iter().map(id_of).collect();
    ids.push("as_prom_broken");
    stack.wait_settled(WAIT, &ids).await;
    for e in &events {
        assert!(stack.written(id_of(e)).is_some(), "{} not written:\n{}", id_of(e), stack.writer_logs());
    }
    assert!(stack.failed("as_prom_broken").is_some());

    // Prometheus has scraped the counts, then has a few seconds more.
    prometheus
        .wait_value(r#"sum(fa_activity_tasks_total{service="activity-writer",outcome="written"})"#, events.len() as f64)
        .await;
    prometheus
        .wait_value(r#"sum(fa_amqp_deliveries_total{service="activity-writer",outcome="dead_lettered"})"#, 1.0)
        .await;
    // RabbitMQ's own count of this stack's dead-letter queue, per object.
    prometheus
        .wait_value(
            &format!(
                r#"sum(rabbitmq_queue_messages_ready{{vhost="{}",queue="activity-writer.assist.dlq"}})"#,
                stack.vhost.name
            ),
            1.0,
        )
        .await;
    // Both services are there, each with its `service` label.
    prometheus.wait_value(r#"count(fa_build_info{service=~"token-broker|activity-writer"})"#, 2.0).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Every query of every panel.
    let variables = variables(&dashboard);
    let mut targets = Vec::new();
    panel_targets(&dashboard["panels"], &mut targets);
    for core in CORE_PANELS {
        assert!(targets.iter().any(|t| t.title == *core), "core panel {core:?} is not in the dashboard");
    }
    let mut broken = Vec::new();
    let mut empty_core = Vec::new();
    let mut with_data = 0;
    for target in &targets {
        let query = substitute(&target.expr, &variables);
        match prometheus.query(&query).await {
            Err(error) => broken.push(format!(
                "panel {} {:?} target {}: {error}\n    expr: {}",
                target.panel_id, target.title, target.ref_id, target.expr
            )),
            Ok(data) => {
                if has_data(&data) {
                    with_data += 1;
                } else if CORE_PANELS.contains(&target.title.as_str()) {
                    empty_core.push(format!(
                        "panel {} {:?} target {}: {query}",
                        target.panel_id, target.title, target.ref_id
                    ));
                } else {
                    println!(
                        "no data (not a core panel): panel {} {:?} target {}",
                        target.panel_id, target.title, target.ref_id
                    );
                }
            }
        }
    }
    assert!(broken.is_empty(), "dashboard queries Prometheus rejects:\n{}", broken.join("\n"));
    assert!(
        empty_core.is_empty(),
        "core panels without data after the traffic:\n{}\nwriter /metrics:\n{}",
        empty_core.join("\n"),
        stack.metrics(writer).await
    );

    // Every alerting rule, as Prometheus itself evaluates it.
    let healthy = prometheus.check_rules(&alerts).await;

    println!(
        "{} dashboard queries evaluated, {with_data} with data; {healthy} alert rules healthy ({:.1} s)",
        targets.len(),
        started.elapsed().as_secs_f64()
    );
}

/// One query of one panel.
struct Target {
    panel_id: i64,
    title: String,
    ref_id: String,
    expr: String,
}

/// The queries of `panels`, rows' nested panels included.
fn panel_targets(panels: &Value, out: &mut Vec<Target>) {
    for panel in panels.as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_else(|| {
                panic!("panel {} {} has a target without a PromQL expr: {target}", panel["id"], panel["title"])
            });
            out.push(Target {
                panel_id: panel["id"].as_i64().unwrap_or_default(),
                title: panel["title"].as_str().unwrap_or_default().to_owned(),
                ref_id: target["refId"].as_str().unwrap_or_default().to_owned(),
                expr: expr.to_owned(),
            });
        }
        panel_targets(&panel["panels"], out);
    }
}

/// The dashboard's variables with the values this test gives them: Grafana's
/// built-ins, then each templating variable (`.*` for one that may stand for
/// several values, since such a variable goes into a `=~` matcher).
fn variables(dashboard: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        GRAFANA_BUILTINS.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let mut templated = Vec::new();
    for variable in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        let name = variable["name"].as_str().expect("a variable has a name").to_owned();
        let current = variable["current"]["value"].as_str().filter(|v| !v.is_empty() && *v != "$__all");
        let value = match variable["type"].as_str() {
            Some("datasource") => "prometheus".to_owned(),
            _ if variable["includeAll"] == json!(true) || variable["multi"] == json!(true) => ".*".to_owned(),
            _ => current.unwrap_or(".*").to_owned(),
        };
        templated.push((name, value));
    }
    // Longer names first, so that `$tenant` does not eat `$tenants`.
    templated.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    out.extend(templated);
    out
}

/// `expr` with every `$name`, `${name}`, `${name:format}` and `[[name]]`
/// replaced; panics if a variable is left that the dashboard does not define.
fn substitute(expr: &str, variables: &[(String, String)]) -> String {
    let mut out = expr.to_owned();
    for (name, value) in variables {
        out = out.replace(&format!("${{{name}}}"), value).replace(&format!("[[{name}]]"), value);
        while let Some(start) = out.find(&format!("${{{name}:")) {
            let end = out[start..].find('}').map(|e| start + e + 1).expect("a closing brace");
            out.replace_range(start..end, value);
        }
        out = out.replace(&format!("${name}"), value);
    }
    let left = out.char_indices().find(|(i, c)| {
        *c == '$' && out[i + 1..].starts_with(|n: char| n == '{' || n == '_' || n.is_ascii_alphabetic())
    });
    assert!(left.is_none(), "a variable the dashboard does not define is left in {expr:?}: {out:?}");
    out
}

/// Whether a query's `data` holds at least one series or a scalar.
fn has_data(data: &Value) -> bool {
    match data["resultType"].as_str() {
        Some("vector" | "matrix") => data["result"].as_array().is_some_and(|r| !r.is_empty()),
        Some("scalar" | "string") => true,
        _ => false,
    }
}

/// A Prometheus server of the test's own, in a temporary directory; killed
/// and its directory removed on drop.
struct Prometheus {
    service: Service,
    dir: PathBuf,
    url: String,
    http: reqwest::Client,
}

impl Prometheus {
    /// Starts Prometheus scraping `jobs` (name, metrics path, target) every
    /// second and evaluating `rules` every second; returns once it is ready.
    async fn start(rules: &Path, jobs: &[(&str, &str, String)]) -> Self {
        let dir = std::env::temp_dir().join(format!("fa-prometheus-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("data")).expect("the temporary directory");
        let mut config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules:?}\nscrape_configs:\n"
        );
        for (job, path, target) in jobs {
            config.push_str(&format!(
                "  - job_name: {job}\n    metrics_path: {path}\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ));
        }
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, &config).expect("the configuration");
        let port = fa_testkit::process::free_port().expect("a port");
        let args = [
            format!("--config.file={}", config_file.display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--storage.tsdb.retention.time=1h".to_owned(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let service = Service::start(Path::new(PROMETHEUS), &args, &HashMap::new()).expect("prometheus starts");
        let prometheus = Self { service, dir, url: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new() };
        prometheus
            .wait("Prometheus ready", Duration::from_secs(60), || async {
                match prometheus.http.get(format!("{}/-/ready", prometheus.url)).send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(format!("/-/ready: {}", r.status())),
                    Err(e) => Err(e.to_string()),
                }
            })
            .await;
        prometheus
    }

    /// Polls `check` every 250 ms until it is `Ok`; panics with its last
    /// error and Prometheus's log after `deadline`.
    async fn wait<T, F, Fut>(&self, what: &str, deadline: Duration, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        let until = Instant::now() + deadline;
        loop {
            match check().await {
                Ok(value) => return value,
                Err(last) if Instant::now() >= until => {
                    panic!("timed out after {deadline:?} waiting for {what}: {last}\nprometheus log:\n{}", self.log())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    fn log(&self) -> String {
        format!("{}{}", self.service.stdout(), self.service.stderr())
    }

    /// GET `path` of the HTTP API; its `data`, or its error.
    async fn api(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .query(query)
            .send()
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        let body: Value = response.json().await.map_err(|e| format!("{path}: {e}"))?;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"].as_str().unwrap_or("?"), body["error"]));
        }
        if let Some(warnings) = body["warnings"].as_array().filter(|w| !w.is_empty()) {
            return Err(format!("warnings: {warnings:?}"));
        }
        Ok(body["data"].clone())
    }

    /// An instant query now; its `data`.
    async fn query(&self, query: &str) -> Result<Value, String> {
        self.api("/api/v1/query", &[("query", query)]).await
    }

    /// Waits until every one of `count` targets has been scraped and is up.
    async fn wait_targets_up(&self, count: usize) {
        self.wait("every scrape target up", Duration::from_secs(60), || async {
            let data = self.api("/api/v1/targets", &[("state", "active")]).await?;
            let targets = data["activeTargets"].as_array().cloned().unwrap_or_default();
            let down: Vec<String> = targets
                .iter()
                .filter(|t| t["health"] != "up")
                .map(|t| format!("{} {} {} {}", t["labels"]["job"], t["scrapeUrl"], t["health"], t["lastError"]))
                .collect();
            if targets.len() == count && down.is_empty() {
                Ok(())
            } else {
                Err(format!("{} of {count} targets, not up: {down:?}", targets.len()))
            }
        })
        .await;
    }

    /// Waits until `query` returns one sample of at least `at_least`.
    async fn wait_value(&self, query: &str, at_least: f64) {
        self.wait(query, Duration::from_secs(30), || async {
            let data = self.query(query).await?;
            let value = data["result"][0]["value"][1].as_str().and_then(|v| v.parse::<f64>().ok());
            match value {
                Some(v) if v >= at_least => Ok(()),
                other => Err(format!("{other:?}, want >= {at_least}")),
            }
        })
        .await;
    }

    /// Waits until Prometheus has evaluated every rule of `file` and checks
    /// that each one evaluated without error; how many there are.
    async fn check_rules(&self, file: &Path) -> usize {
        let text = std::fs::read_to_string(file).expect("the rules");
        let expected: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- alert:").or_else(|| l.trim().strip_prefix("- record:")))
            .map(str::trim)
            .collect();
        let rules = self
            .wait("every rule evaluated", Duration::from_secs(30), || async {
                let data = self.api("/api/v1/rules", &[]).await?;
                let rules: Vec<Value> = data["groups"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                    .collect();
                let unevaluated: Vec<&str> =
                    rules.iter().filter(|r| r["health"] == "unknown").filter_map(|r| r["name"].as_str()).collect();
                if rules.len() == expected.len() && unevaluated.is_empty() {
                    Ok(rules)
                } else {
                    Err(format!(
                        "{} of {} rules loaded, not evaluated yet: {unevaluated:?}",
                        rules.len(),
                        expected.len()
                    ))
                }
            })
            .await;
        for name in &expected {
            assert!(rules.iter().any(|r| r["name"] == *name), "rule {name} of {} not loaded", file.display());
        }
        let unhealthy: Vec<String> = rules
            .iter()
            .filter(|r| r["health"] != "ok" || r["lastError"].as_str().is_some_and(|e| !e.is_empty()))
            .map(|r| {
                format!("{} health {} lastError {}\n    expr: {}", r["name"], r["health"], r["lastError"], r["query"])
            })
            .collect();
        assert!(unhealthy.is_empty(), "alert rules Prometheus cannot evaluate:\n{}", unhealthy.join("\n"));
        rules.len()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.service.signal("KILL");
        let _ = self.service.wait(Duration::from_secs(10));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
