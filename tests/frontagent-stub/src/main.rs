//! `frontagent-stub`: stands in for Front Agent on a developer's machine.
//!
//! The connector publishes `customer.upsert`, `import.completed` and the
//! writer's results to `salesforce.sync` with `mandatory` set, so with no
//! queue bound a publish fails (as it should: nothing may be lost). Front
//! Agent binds queues of its own there; this binds one, `frontagent.demo`
//! by default, and prints a line for each message, so `make run` shows the
//! customers arriving and the activity-writer's results.
//!
//! `frontagent-stub assist` plays Front Agent's other half: it publishes three
//! `assist.completed` events and waits for their Tasks in sfsim (see
//! [`assist`]).

mod assist;
mod calls;
mod describe;
mod sfsim;

use std::{process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use futures_util::StreamExt as _;
use lapin::{
    Connection, ConnectionProperties, ExchangeKind,
    options::{BasicAckOptions, BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};
use serde_json::Value;

use crate::describe::describe;

/// Binds a queue to salesforce.sync, as Front Agent does, and prints what
/// the connector publishes there, one line a message; or, with `assist`,
/// publishes three assist.completed events and shows their Tasks.
#[derive(Parser)]
#[command(name = "frontagent-stub", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// RabbitMQ, as the services reach it.
    #[arg(
        long,
        global = true,
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

#[derive(Subcommand)]
enum Command {
    /// Publish three assist.completed events (a Lead's call, a call from a
    /// known number, a call from a new number) to frontagent.assist as Front
    /// Agent does, then wait until the activity-writer has written their
    /// Tasks into sfsim and print them.
    Assist(assist::AssistArgs),
}

const EXCHANGE: &str = "salesforce.sync";
const KEPT: i64 = 10_000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let work = async {
        match &cli.command {
            Some(Command::Assist(args)) => assist::run(&cli.amqp_url, args).await,
            None => run(&cli).await,
        }
    };
    tokio::select! {
        result = work => match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("frontagent-stub: {e:#}");
                ExitCode::FAILURE
            }
        },
        // Stopping is how the printing ends; it only cuts `assist` short.
        _ = shutdown() => match cli.command {
            Some(Command::Assist(_)) => ExitCode::from(130),
            None => ExitCode::SUCCESS,
        },
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
pub(crate) async fn connect(url: &str) -> anyhow::Result<Connection> {
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
