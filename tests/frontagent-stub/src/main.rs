//! `frontagent-stub`: stands in for Front Agent on a developer's machine.
//!
//! The connector publishes `customer.upsert`, `import.completed` and the
//! writer's results to `salesforce.sync` with `mandatory` set, so with no
//! queue bound a publish fails (as it should: nothing may be lost). Front
//! Agent binds queues of its own there; this binds one, `frontagent.demo`
//! by default, and prints a line for each message, so `make run` shows the
//! customers arriving.

use std::{process::ExitCode, time::Duration};

use clap::Parser;
use futures_util::StreamExt as _;
use lapin::{
    Connection, ConnectionProperties, ExchangeKind,
    options::{BasicAckOptions, BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};
use serde_json::Value;

/// Binds a queue to salesforce.sync, as Front Agent does, and prints what
/// the connector publishes there, one line a message.
#[derive(Parser)]
#[command(name = "frontagent-stub", version, about)]
struct Cli {
    /// RabbitMQ, as the services reach it.
    #[arg(
        long,
        env = "FA_SF_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    amqp_url: String,
    /// The queue to bind (it keeps the newest 10,000 messages while nothing reads it).
    #[arg(long, default_value = "frontagent.demo")]
    queue: String,
    /// How many customer.upsert lines to print before each import.completed;
    /// the run's line gives the counts of the rest.
    #[arg(long, default_value_t = 20)]
    show_customers: usize,
}

const EXCHANGE: &str = "salesforce.sync";
const KEPT: i64 = 10_000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tokio::select! {
        result = run(&cli) => match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("frontagent-stub: {e:#}");
                ExitCode::FAILURE
            }
        },
        _ = shutdown() => ExitCode::SUCCESS,
    }
}

async fn shutdown() {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn run(cli: &Cli) -> anyhow::Result<()> {
    let connection = connect(&cli.amqp_url).await?;
    let channel = connection.create_channel().await?;
    channel
        .exchange_declare(
            EXCHANGE.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions { durable: true, ..Default::default() },
            FieldTable::default(),
        )
        .await?;
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(KEPT));
    channel
        .queue_declare(
            cli.queue.as_str().into(),
            QueueDeclareOptions { durable: true, ..Default::default() },
            arguments,
        )
        .await?;
    channel
        .queue_bind(
            cli.queue.as_str().into(),
            EXCHANGE.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut deliveries = channel
        .basic_consume(
            cli.queue.as_str().into(),
            "frontagent-stub".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    println!("bound {} to {EXCHANGE} (#); printing what arrives", cli.queue);
    let mut customers = 0usize;
    while let Some(delivery) = deliveries.next().await {
        let delivery = delivery?;
        let key = delivery.routing_key.as_str();
        let line = match serde_json::from_slice::<Value>(&delivery.data) {
            Ok(body) => describe(key, &body),
            Err(e) => format!("{key} (not JSON: {e})"),
        };
        match key {
            "customer.upsert" => {
                customers += 1;
                if customers <= cli.show_customers {
                    println!("{line}");
                } else if customers == cli.show_customers + 1 {
                    println!(
                        "customer.upsert ... (more until the run's import.completed; --show-customers to see more)"
                    );
                }
            }
            "import.completed" => {
                customers = 0;
                println!("{line}");
            }
            _ => println!("{line}"),
        }
        delivery.ack(BasicAckOptions::default()).await?;
    }
    anyhow::bail!("the subscription ended (RabbitMQ closed the connection)")
}

/// RabbitMQ may still be starting: a few tries before giving up.
async fn connect(url: &str) -> anyhow::Result<Connection> {
    let mut last = None;
    for _ in 0..20 {
        match Connection::connect(url, ConnectionProperties::default()).await {
            Ok(connection) => return Ok(connection),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(anyhow::anyhow!(
        "cannot reach RabbitMQ (FA_SF_AMQP_URL or --amqp-url): {}",
        last.map(|e| e.to_string()).unwrap_or_default()
    ))
}

/// One line for a message: what it is and the fields a person looks at.
fn describe(routing_key: &str, body: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    match routing_key {
        "customer.upsert" => {
            let phones: Vec<String> = body["customer"]["phones"]
                .as_array()
                .map(|p| p.iter().map(|p| p["e164"].as_str().map_or_else(|| text(&p["raw"]), str::to_owned)).collect())
                .unwrap_or_default();
            format!(
                "customer.upsert {} {} {} ({}) {}",
                text(&body["source"]["object"]),
                text(&body["source"]["id"]),
                text(&body["customer"]["name"]),
                text(&body["customer"]["company"]),
                phones.join(" "),
            )
        }
        "import.completed" => {
            let counts: Vec<String> = body["objects"]
                .as_array()
                .map(|o| {
                    o.iter()
                        .map(|c| {
                            format!("{} {} published, {} skipped", text(&c["object"]), c["published"], c["skipped"])
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut line = format!(
                "import.completed {} {} {}: {}{}",
                text(&body["tenant_id"]),
                text(&body["run_id"]),
                text(&body["status"]),
                if counts.is_empty() { "nothing read".to_owned() } else { counts.join(", ") },
                if body["more_pending"] == true { "; more pending" } else { "" },
            );
            if let Some(error) = body["error"].as_object() {
                line.push_str(&format!(
                    "; error {}: {}",
                    error.get("code").and_then(Value::as_str).unwrap_or("-"),
                    error.get("message").and_then(Value::as_str).unwrap_or("-")
                ));
            }
            line
        }
        other => format!("{other} {body}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::describe;

    #[test]
    fn a_customer_reads_as_object_id_name_company_and_phones() {
        let body = json!({
            "source": {"object": "Lead", "id": "00Q5j00000AbCdEAAV"},
            "customer": {"name": "佐藤 太郎", "company": "株式会社テスト",
                "phones": [{"raw": "03-1234-5678", "e164": "+81312345678"}, {"raw": "不明", "e164": null}]},
        });
        assert_eq!(
            describe("customer.upsert", &body),
            "customer.upsert Lead 00Q5j00000AbCdEAAV 佐藤 太郎 (株式会社テスト) +81312345678 不明"
        );
    }

    #[test]
    fn a_run_reads_as_its_counts_and_error() {
        let body = json!({
            "tenant_id": "demo", "run_id": "run_1", "status": "failed", "more_pending": true,
            "objects": [{"object": "Lead", "published": 2000, "skipped": 3}],
            "error": {"code": "salesforce_rejected", "message": "INVALID_TYPE"},
        });
        assert_eq!(
            describe("import.completed", &body),
            "import.completed demo run_1 failed: Lead 2000 published, 3 skipped; more pending; error salesforce_rejected: INVALID_TYPE"
        );
    }
}
