//! k8s/RUNBOOK.md, "Dead letters: read, replay, discard", done as written:
//! the **Replay** commands are read from the runbook when the test runs and
//! run against the real RabbitMQ, in the test's own vhost. A call
//! dead-lettered as `not_connected` goes back to its queue once the tenant
//! has connected and becomes exactly one Task; the one-off shovel deletes
//! itself; replaying again writes nothing twice.

use std::{
    path::Path,
    process::{Command, Output},
    time::Duration,
};

use crate::common::{Stack, event_of, id_of, tasks_for};
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties,
    options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, ShortString},
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const QUEUE: &str = "activity-writer.assist";
const DLQ: &str = "activity-writer.assist.dlq";

#[tokio::test]
async fn the_runbooks_replay_puts_a_dead_lettered_call_back_and_it_is_written_once() {
    let replay = Replay::from_runbook();
    let mut stack = Stack::start(&["Lead"]).await;
    stack.start_writer().await;
    let vhost = stack.vhost.name.clone();
    let queues = Queues::open(&stack.vhost.url).await;

    // A tenant whose org exists but is not connected yet: its call is
    // dead-lettered as `not_connected`, a cause replay can fix.
    let beta = sfsim::fixture::connected_org(&stack.sfsim.sim, "Beta").expect("org");
    let lead = stack.seed_in(&beta.org.id, "Lead", json!({ "LastName": "再送", "Company": "株式会社ベータ" })).await;
    let e = event_of(
        "beta",
        json!({ "id": "c-replay", "name": "再送 花子", "salesforce": { "object": "Lead", "id": lead[0] } }),
    );
    let id = id_of(&e).to_owned();
    stack.publish(&e).await;
    stack.wait_settled(WAIT, &[&id]).await;
    assert_eq!(stack.failed(&id).expect("activity.failed")["error"]["code"], "not_connected");
    assert!(stack.written(&id).is_none());
    wait_until(WAIT, "the call on the dead-letter queue", || async {
        let depth = queues.depth(DLQ).await;
        (depth == 1).then_some(()).ok_or_else(|| format!("{DLQ} holds {depth}"))
    })
    .await;

    // The cause is fixed: the tenant connects, as every tenant does.
    stack.connect_as("beta", &beta, &["Lead"]).await;

    let _shovel = ShovelCleanup { vhost: vhost.clone(), name: replay.shovel.clone() };
    replay.run(&vhost, Plugins::Enable).await;
    replay.wait_done(&vhost, &queues).await;
    stack
        .wait_for(WAIT, "the replayed call's activity.written", |seen| {
            seen.iter().any(|(k, b)| k == "activity.written" && b["event_id"] == id.as_str())
        })
        .await;

    let tasks = stack.tasks_in(&beta.org.id).await;
    let mine = tasks_for(&tasks, &id);
    assert_eq!(mine.len(), 1, "{tasks:?}");
    let task_id = mine[0]["Id"].clone();
    assert_eq!(mine[0]["WhoId"], lead[0].as_str());
    let written = written_of(&stack, &id);
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0]["task_id"], task_id);
    assert_eq!(written[0]["target"], json!({ "object": "Lead", "id": lead[0] }));
    assert_eq!(stack.published("activity.failed").iter().filter(|b| b["event_id"] == id.as_str()).count(), 1);
    assert_eq!(queues.depth(DLQ).await, 0);

    // Replaying again: a copy of the call left on the dead-letter queue (as
    // after a replay interrupted before its acks) goes back too, and finds
    // its Task already written: no second Task, the same one announced.
    publish_to_dlq(&stack.vhost.url, &e).await;
    wait_until(WAIT, "the leftover copy on the dead-letter queue", || async {
        let depth = queues.depth(DLQ).await;
        (depth == 1).then_some(()).ok_or_else(|| format!("{DLQ} holds {depth}"))
    })
    .await;
    replay.run(&vhost, Plugins::Enabled).await;
    replay.wait_done(&vhost, &queues).await;
    stack
        .wait_for(WAIT, "the copy's activity.written", |seen| {
            seen.iter().filter(|(k, b)| k == "activity.written" && b["event_id"] == id.as_str()).count() == 2
        })
        .await;
    let tasks = stack.tasks_in(&beta.org.id).await;
    assert_eq!(tasks_for(&tasks, &id).len(), 1, "replay wrote a second Task: {tasks:?}");
    let written = written_of(&stack, &id);
    assert!(written.iter().all(|w| w["task_id"] == task_id), "{written:?}");
    assert_eq!(queues.depth(DLQ).await, 0);

    // An empty dead-letter queue: the shovel has nothing to move and goes.
    replay.run(&vhost, Plugins::Enabled).await;
    replay.wait_done(&vhost, &queues).await;
    assert_eq!(queues.depth(QUEUE).await, 0, "nothing left waiting on {QUEUE}");
    let tasks = stack.tasks_in(&beta.org.id).await;
    assert_eq!(tasks_for(&tasks, &id).len(), 1, "{tasks:?}");
}

/// The runbook's **Replay** block, as the commands to run here.
struct Replay {
    /// Each command's words, the `rmq` prefix dropped.
    commands: Vec<Vec<String>>,
    /// The shovel's name in `set_parameter`.
    shovel: String,
}

impl Replay {
    fn from_runbook() -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../k8s/RUNBOOK.md");
        let runbook = std::fs::read_to_string(&path).expect("k8s/RUNBOOK.md");

        // `rmq CMD...` runs CMD in the RabbitMQ pod; here the broker is
        // local, so CMD runs as it is.
        let rmq = runbook.lines().find(|l| l.trim_start().starts_with("rmq()")).expect("the runbook defines rmq");
        assert!(
            rmq.contains(" exec ") && rmq.trim_end().ends_with("-- \"$@\"; }"),
            "rmq is no longer `kubectl exec POD -- \"$@\"`: {rmq}"
        );

        let section = runbook.split_once("## Dead letters: read, replay, discard").expect("the section").1;
        let after = section.split_once("**Replay**").expect("the Replay paragraph").1;
        let block = after.split_once("```sh\n").expect("Replay's sh block").1;
        let block = block.split_once("\n```").expect("the block's end").0;

        let commands: Vec<Vec<String>> = shell_commands(block)
            .into_iter()
            .map(|words| {
                assert_eq!(
                    words.first().map(String::as_str),
                    Some("rmq"),
                    "a Replay command not run with rmq: {words:?}"
                );
                words[1..].to_vec()
            })
            .collect();
        let set = commands
            .iter()
            .find(|w| w.len() > 1 && w[0] == "rabbitmqctl" && w[1] == "set_parameter")
            .expect("Replay's set_parameter");
        let at = set.iter().position(|w| w == "shovel").expect("a shovel parameter");
        let shovel = set[at + 1].clone();
        let definition: Value =
            serde_json::from_str(set.last().expect("the definition")).expect("the definition is JSON");
        assert_eq!(definition["src-queue"], DLQ, "{definition}");
        assert_eq!(definition["dest-queue"], QUEUE, "{definition}");
        assert!(
            commands.iter().any(|w| w[0] == "rabbitmq-plugins" && w.iter().any(|p| p == "rabbitmq_shovel")),
            "Replay enables the shovel plugin: {commands:?}"
        );
        Self { commands, shovel }
    }

    /// Runs the block's commands against `vhost`: `-p /` becomes
    /// `-p VHOST`, and `amqp://` (the default vhost) `amqp:///VHOST`.
    /// `rabbitmq-plugins` is run only with [`Plugins::Enable`]: the runbook
    /// enables the plugins once, not at every replay.
    async fn run(&self, vhost: &str, plugins: Plugins) {
        for words in &self.commands {
            if words[0] == "rabbitmq-plugins" && matches!(plugins, Plugins::Enabled) {
                continue;
            }
            let words = in_vhost(words, vhost);
            let output = run(&words).await;
            assert!(
                output.status.success(),
                "{words:?} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    /// Waits until the dead-letter queue is empty and the shovel has
    /// deleted itself (no parameter left, not in `shovel_status`).
    async fn wait_done(&self, vhost: &str, queues: &Queues) {
        wait_until(WAIT, "the shovel to empty the dead-letter queue and delete itself", || async {
            // Cheap first: the shovel is not done while its source has messages.
            let depth = queues.depth(DLQ).await;
            if depth != 0 {
                return Err(format!("{DLQ} holds {depth}"));
            }
            let (list, status) = (["list_parameters", "-q", "-p", vhost], ["shovel_status", "-q"]);
            let (parameters, status) = tokio::join!(ctl(&list), ctl(&status));
            let fields = |line: &str| line.split('\t').map(str::trim).map(str::to_owned).collect::<Vec<_>>();
            let a_parameter = parameters.lines().any(|l| fields(l).contains(&self.shovel));
            let running = status.lines().any(|l| {
                let fields = fields(l);
                fields.contains(&self.shovel) && fields.iter().any(|f| f == vhost)
            });
            if a_parameter || running {
                return Err(format!("the shovel is still there; parameters:\n{parameters}\nshovel_status:\n{status}"));
            }
            // Read again now that nothing consumes the queue: a message the
            // shovel held unacked would be back among the ready ones.
            match queues.depth(DLQ).await {
                0 => Ok(()),
                depth => Err(format!("the shovel is gone but {DLQ} holds {depth}")),
            }
        })
        .await;
    }
}

/// `words` with the runbook's default vhost replaced by `vhost`.
fn in_vhost(words: &[String], vhost: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    for word in words {
        if word == "/" && out.last().is_some_and(|w| w == "-p") {
            out.push(vhost.to_owned());
        } else if let Ok(Value::Object(mut definition)) = serde_json::from_str::<Value>(word) {
            for value in definition.values_mut() {
                if let Value::String(s) = value
                    && s.starts_with("amqp://")
                {
                    assert_eq!(s, "amqp://", "the runbook names a broker or vhost the test cannot map");
                    *s = format!("amqp:///{}", percent_encode(vhost));
                }
            }
            out.push(Value::Object(definition).to_string());
        } else {
            out.push(word.clone());
        }
    }
    if out.get(1).is_some_and(|c| c == "set_parameter") {
        assert!(out.iter().any(|w| w == vhost), "set_parameter names no vhost (`-p /`): {words:?}");
    }
    out
}

/// The commands of a `sh` block, each as its words: quotes removed,
/// comments dropped, split at unquoted newlines (backslash-newline goes on).
/// Pipes, redirections and expansions are refused: the test could not run
/// them as the runbook means.
fn shell_commands(block: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = block.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => panic!("unterminated ' in\n{block}"),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => panic!("unterminated \" in\n{block}"),
                        },
                        Some(c @ ('$' | '`')) => panic!("expansion {c} in \"...\" of\n{block}"),
                        Some(c) => w.push(c),
                        None => panic!("unterminated \" in\n{block}"),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(c) => word.get_or_insert_with(String::new).push(c),
            },
            '#' if word.is_none() => {
                while chars.peek().is_some_and(|c| *c != '\n') {
                    chars.next();
                }
            }
            '\n' | ';' => {
                words.extend(word.take());
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
            }
            '|' | '&' | '<' | '>' | '$' | '`' | '(' | ')' => {
                panic!("shell syntax {c} the test cannot run, in\n{block}")
            }
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word.take());
    if !words.is_empty() {
        commands.push(words);
    }
    commands
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs `words` (a program and its arguments) off the runtime's thread.
async fn run(words: &[String]) -> Output {
    let words = words.to_vec();
    tokio::task::spawn_blocking(move || Command::new(&words[0]).args(&words[1..]).output())
        .await
        .expect("the command's thread")
        .unwrap_or_else(|e| panic!("cannot run the runbook's command: {e}"))
}

/// `rabbitmqctl ARGS`' standard output; panics when it fails.
async fn ctl(args: &[&str]) -> String {
    let words: Vec<String> = std::iter::once("rabbitmqctl").chain(args.iter().copied()).map(str::to_owned).collect();
    let output = run(&words).await;
    assert!(output.status.success(), "{words:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether [`Replay::run`] runs the runbook's `rabbitmq-plugins enable`.
#[derive(Clone, Copy)]
enum Plugins {
    /// The first replay: enable them, as the runbook says.
    Enable,
    /// They are enabled already.
    Enabled,
}

/// Queue depths, read over AMQP (a passive declare): quicker than
/// `rabbitmqctl list_queues`, which starts an Erlang VM each time.
struct Queues {
    channel: Channel,
    _connection: Connection,
}

impl Queues {
    async fn open(url: &str) -> Self {
        let connection = Connection::connect(url, ConnectionProperties::default()).await.expect("amqp");
        let channel = connection.create_channel().await.expect("channel");
        Self { channel, _connection: connection }
    }

    /// The messages ready on `queue` (all of them, on a queue nobody consumes).
    async fn depth(&self, queue: &str) -> u32 {
        let options = QueueDeclareOptions { passive: true, ..Default::default() };
        let declared = self.channel.queue_declare(queue.into(), options, FieldTable::default()).await;
        declared.unwrap_or_else(|e| panic!("{queue}: {e}")).message_count()
    }
}

/// Polls `probe` until it says `Ok`; panics with its last word after `deadline`.
async fn wait_until<F, Fut>(deadline: Duration, what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        match probe().await {
            Ok(()) => return,
            Err(last) if tokio::time::Instant::now() >= until => {
                panic!("timed out after {deadline:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The `activity.written` messages of `event_id`, in order.
fn written_of(stack: &Stack, event_id: &str) -> Vec<Value> {
    stack.published("activity.written").into_iter().filter(|b| b["event_id"] == event_id).cloned().collect()
}

/// Puts a copy of `event` on the dead-letter queue, as Front Agent's
/// message would be there (persistent, `message_id`, `tenant_id`).
async fn publish_to_dlq(url: &str, event: &Value) {
    let connection = Connection::connect(url, ConnectionProperties::default()).await.expect("amqp");
    let channel = connection.create_channel().await.expect("channel");
    channel.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
    let mut headers = FieldTable::default();
    let tenant = event["tenant_id"].as_str().expect("tenant_id");
    headers.insert(ShortString::from("tenant_id"), AMQPValue::LongString(tenant.into()));
    let properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_message_id(id_of(event).into())
        .with_type("assist.completed.v1".into())
        .with_headers(headers);
    let body = serde_json::to_vec(event).expect("JSON");
    channel
        .basic_publish(
            "".into(),
            DLQ.into(),
            BasicPublishOptions { mandatory: true, ..Default::default() },
            &body,
            properties,
        )
        .await
        .expect("publish")
        .await
        .expect("confirmed");
    connection.close(200, "bye".into()).await.ok();
}

/// Clears the shovel's parameter if it is still there when the test ends,
/// passed or not (the vhost goes with the stack, after this).
struct ShovelCleanup {
    vhost: String,
    name: String,
}

impl Drop for ShovelCleanup {
    fn drop(&mut self) {
        let listed = Command::new("rabbitmqctl")
            .args(["list_parameters", "-q", "-p", &self.vhost])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.split('\t').any(|f| f.trim() == self.name)))
            .unwrap_or(false);
        if listed {
            let _ =
                Command::new("rabbitmqctl").args(["clear_parameter", "-p", &self.vhost, "shovel", &self.name]).output();
        }
    }
}
