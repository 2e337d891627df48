//! `frontagent-stub assist`: Front Agent's side of three assisted calls.
//!
//! Picks the calls from the org's records in sfsim ([`crate::calls`]),
//! publishes their `assist.completed.v1` events to `frontagent.assist` as
//! Front Agent does when a call ends, then watches sfsim until the
//! activity-writer has written a Task for each (`CallObject` = the event's
//! id) and prints them.

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use fa_messages::{AssistCompletedV1, AssistUser, Message as _, TenantId, topology};
use lapin::{
    BasicProperties, Channel, Confirmation, ExchangeKind,
    options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions},
    types::{AMQPValue, FieldTable, LongString, ShortString},
};
use time::OffsetDateTime;

use crate::{
    calls::{self, Planned},
    sfsim::{self, Sfsim},
};

/// Publishes three assist.completed events as Front Agent would and waits
/// until the activity-writer has written a Task for each into sfsim.
#[derive(clap::Args, Debug, Clone)]
pub struct AssistArgs {
    /// sfsim's address; its control API names the records to call about and shows the Tasks.
    #[arg(long, default_value = "http://127.0.0.1:8090")]
    pub sfsim_url: String,
    /// The sfsim org the tenant is connected to (`org_id` in .local/sfsim-demo/credentials.json).
    #[arg(long)]
    pub org: String,
    /// The Front Agent tenant the events belong to.
    #[arg(long, default_value = "demo")]
    pub tenant: String,
    /// The Front Agent user who takes the first two calls; link it to a Salesforce user to have it own their Tasks.
    #[arg(long, default_value = "u-demo")]
    pub user: String,
    /// That user's display name.
    #[arg(long, default_value = "山田 太郎")]
    pub user_name: String,
    /// The Front Agent user who takes the third call; left unlinked, its Task falls back to the connection's user.
    #[arg(long, default_value = "u-demo-2")]
    pub other_user: String,
    /// How long to wait for the Tasks, in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout_seconds: u64,
}

/// Runs the subcommand: pick, publish, wait, print. Fails when a Task does
/// not appear in time.
pub async fn run(amqp_url: &str, args: &AssistArgs) -> anyhow::Result<()> {
    let sfsim = Sfsim::new(&args.sfsim_url, &args.org)?;
    let tenant = TenantId::new(args.tenant.as_str()).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    let leads = sfsim.records("Lead").await?;
    let contacts = sfsim.records("Contact").await?;
    let accounts = sfsim.records("Account").await?;
    let picks = calls::pick(&leads, &contacts, &accounts, random_u64)?;
    let agent = AssistUser { id: args.user.clone(), name: Some(args.user_name.clone()) };
    let other = AssistUser { id: args.other_user.clone(), name: Some("佐々木 美咲".to_owned()) };
    // Fresh per run: the writer's ledger and links outlive sfsim's demo org.
    let run_id = format!("{:012x}", random_u64() & 0xffff_ffff_ffff);
    let planned = calls::plan(&tenant, &agent, &other, &picks, &run_id, OffsetDateTime::now_utc())?;

    let connection = crate::connect(amqp_url).await?;
    let channel = connection.create_channel().await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    channel
        .exchange_declare(
            topology::ASSIST_EXCHANGE.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions { durable: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("cannot declare the exchange {}", topology::ASSIST_EXCHANGE))?;
    for p in &planned {
        publish(&channel, &p.event).await?;
        println!("published assist.completed {} {} (agent {})", p.event.event_id, p.about, p.event.user.id);
    }
    let _ = connection.close(200, "done".into()).await;

    let timeout = Duration::from_secs(args.timeout_seconds);
    println!("waiting up to {} s for the activity-writer's Tasks (CallObject = event_id)", timeout.as_secs());
    let missing = wait_for_tasks(&sfsim, &planned, timeout).await;
    if missing.is_empty() {
        println!("all {} Tasks are in sfsim: {}", planned.len(), sfsim.records_url("Task"));
        return Ok(());
    }
    for p in &missing {
        println!(
            "NO Task for {} ({}) after {} s: look at the [activity-writer] lines (and any [frontagent] activity.failed line)",
            p.event.event_id,
            p.about,
            timeout.as_secs()
        );
    }
    anyhow::bail!(
        "{} of {} Tasks did not appear in sfsim within {} s; the [activity-writer] lines say why \
         (still retrying, or dead-lettered to {})",
        missing.len(),
        planned.len(),
        timeout.as_secs(),
        topology::ACTIVITY_WRITER_ASSIST_DLQ
    )
}

/// The AMQP properties Front Agent's messages carry (amqp.md, the AMQP contract outside this repository).
pub fn properties(event: &AssistCompletedV1, sent_at: u64) -> BasicProperties {
    let mut headers = BTreeMap::new();
    headers.insert(
        ShortString::from(topology::TENANT_ID_HEADER),
        AMQPValue::LongString(LongString::from(event.tenant_id.as_str().as_bytes().to_vec())),
    );
    BasicProperties::default()
        .with_content_type(ShortString::from("application/json"))
        .with_delivery_mode(2)
        .with_message_id(ShortString::from(event.message_id()))
        .with_type(ShortString::from(AssistCompletedV1::TYPE))
        .with_timestamp(sent_at)
        .with_app_id(ShortString::from("frontagent-stub"))
        .with_headers(FieldTable::from(headers))
}

/// Publishes one event and waits for the broker's confirm.
async fn publish(channel: &Channel, event: &AssistCompletedV1) -> anyhow::Result<()> {
    let body = serde_json::to_vec(event)?;
    let sent_at = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let confirmation = channel
        .basic_publish(
            AssistCompletedV1::EXCHANGE.into(),
            AssistCompletedV1::ROUTING_KEY.into(),
            // With no activity-writer queue bound, the event comes back rather than vanishing.
            BasicPublishOptions { mandatory: true, ..Default::default() },
            &body,
            properties(event, sent_at),
        )
        .await?
        .await
        .with_context(|| format!("publishing {} was not confirmed", event.event_id))?;
    match confirmation {
        Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
        Confirmation::Ack(Some(_)) => anyhow::bail!(
            "{} was unroutable: no queue is bound to {} with {}; is the activity-writer running? \
             Look at the [activity-writer] lines",
            event.event_id,
            AssistCompletedV1::EXCHANGE,
            AssistCompletedV1::ROUTING_KEY
        ),
        Confirmation::Nack(_) => anyhow::bail!("RabbitMQ refused {} (nack)", event.event_id),
    }
}

/// Polls sfsim's Tasks until each event has one or `timeout` passes,
/// printing each as it appears; returns the events still without one.
async fn wait_for_tasks<'a>(sfsim: &Sfsim, planned: &'a [Planned], timeout: Duration) -> Vec<&'a Planned> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pending: Vec<&Planned> = planned.iter().collect();
    let last_error = loop {
        let error = match sfsim.records("Task").await {
            Ok(tasks) => {
                let found: Vec<_> = pending
                    .iter()
                    .filter_map(|p| {
                        sfsim::task_for(&tasks, p.event.event_id.as_str()).map(|task| (p.event.event_id.as_str(), task))
                    })
                    .collect();
                if !found.is_empty() {
                    let names = sfsim.names().await;
                    for (event_id, task) in &found {
                        println!("{}", sfsim::task_line(event_id, task, &names));
                    }
                    pending.retain(|p| !found.iter().any(|(id, _)| *id == p.event.event_id.as_str()));
                }
                None
            }
            Err(e) => Some(e),
        };
        if pending.is_empty() || tokio::time::Instant::now() >= deadline {
            break error;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    if let Some(e) = last_error {
        println!("the last look at sfsim's Tasks failed: {e:#}");
    }
    pending
}

fn random_u64() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

#[cfg(test)]
mod tests {
    use fa_messages::{
        Assist, AssistCompletedV1, AssistCustomer, AssistUser, Call, CallDirection, EventId, Message as _, TenantId,
    };
    use lapin::types::AMQPValue;
    use time::macros::datetime;

    use super::properties;

    #[test]
    fn properties_are_those_amqp_md_asks_for() {
        let event = AssistCompletedV1 {
            event_id: EventId::new("as_0193abcdef01_lead").expect("event id"),
            tenant_id: TenantId::new("demo").expect("tenant"),
            occurred_at: datetime!(2026-12-03 01:00 UTC),
            user: AssistUser { id: "u-demo".into(), name: None },
            customer: AssistCustomer {
                id: "c-1".into(),
                name: None,
                company: None,
                email: None,
                phones: None,
                salesforce: None,
            },
            call: Call {
                direction: CallDirection::Inbound,
                started_at: datetime!(2026-12-03 00:55 UTC),
                ended_at: None,
                duration_seconds: 60,
                customer_number: None,
            },
            assist: Assist { summary: "要約".into(), transcript: None },
        };
        let props = properties(&event, 1_764_723_600);
        let text = |s: &Option<lapin::types::ShortString>| s.as_ref().map(|s| s.as_str().to_owned());
        assert_eq!(text(props.message_id()).as_deref(), Some("as_0193abcdef01_lead"));
        assert_eq!(event.message_id(), event.event_id.as_str());
        assert_eq!(text(props.kind()).as_deref(), Some("assist.completed.v1"));
        assert_eq!(text(props.content_type()).as_deref(), Some("application/json"));
        assert_eq!(*props.delivery_mode(), Some(2));
        assert_eq!(*props.timestamp(), Some(1_764_723_600));
        let headers = props.headers().as_ref().expect("headers");
        assert_eq!(headers.inner().get("tenant_id"), Some(&AMQPValue::LongString(b"demo".to_vec().into())));
    }
}
