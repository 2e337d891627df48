//! One trace per assist event: Front Agent publishes `assist.completed`
//! inside a trace of its own (W3C `traceparent`), and the writer's spans for
//! that event (its delivery, every Salesforce call it cost) join that trace,
//! so whoever follows a call from Front Agent's side sees where the time and
//! the org's API calls went. Checked at an OTLP/HTTP receiver in this test.

use std::{
    collections::HashMap,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::common::{Stack, event, id_of};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest, common::v1::any_value::Value as AnyValue, trace::v1::Span,
};
use prost::Message as _;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// The trace Front Agent's publish belongs to.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn one_assist_event_is_one_trace_joined_to_front_agents_with_a_span_per_salesforce_call() {
    let collector = Collector::start();
    let mut stack = Stack::start(&["Lead"]).await;
    stack.set_writer_env("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://127.0.0.1:{}", collector.port));
    stack.set_writer_env("OTEL_BSP_SCHEDULE_DELAY", "100");
    let writer = stack.start_writer().await;

    // A caller the org does not know: a lookup, a new Lead and its Task.
    let e = event(
        json!({ "id": "c-trace", "name": "新規 顧客", "company": "株式会社トレース", "phones": ["06-7777-0001"] }),
    );
    stack.publish_traced(&e, &format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01")).await;
    stack.wait_settled(WAIT, &[id_of(&e)]).await;
    assert!(stack.written(id_of(&e)).is_some(), "the event was written");
    let calls = salesforce_calls(&stack.metrics(writer).await);
    assert!(calls >= 2, "a new caller costs a lookup and a write at least; the writer counted {calls}");
    stack.stop_writer(writer);

    let spans = collector.spans();
    let ours: Vec<&Span> = spans.iter().filter(|s| hex(&s.trace_id) == TRACE_ID).collect();
    let names: Vec<&str> = ours.iter().map(|s| s.name.as_str()).collect();
    let delivery: Vec<&&Span> = ours.iter().filter(|s| s.name == "amqp.deliver").collect();
    assert_eq!(delivery.len(), 1, "one delivery span in Front Agent's trace; the trace holds {names:?}");
    assert_eq!(hex(&delivery[0].parent_span_id), PARENT_SPAN_ID, "the delivery is a child of Front Agent's publish");
    assert_eq!(text_attribute(delivery[0], "message_id").as_deref(), Some(id_of(&e)));

    let requests: Vec<&&Span> = ours.iter().filter(|s| s.name == "salesforce.request").collect();
    eprintln!("the event's trace: {} spans, {} Salesforce calls: {names:?}", ours.len(), requests.len());
    assert_eq!(
        requests.len() as u64,
        calls,
        "one span per Salesforce call the writer counted, all in the event's trace; the trace holds {names:?}"
    );
    for request in &requests {
        assert!(text_attribute(request, "url.path").is_some_and(|p| p.starts_with("/services/data/")), "{request:?}");
        assert!(!text_attribute(request, "url.path").unwrap_or_default().contains('?'), "no query text: {request:?}");
    }
    // What the event caused Front Agent to hear is published in its trace.
    let published: Vec<&&Span> = ours.iter().filter(|s| s.name == "amqp.publish").collect();
    assert!(
        published.iter().any(|s| text_attribute(s, "type").as_deref() == Some("activity.written.v1")),
        "activity.written is published in the event's trace; the trace holds {names:?}"
    );
    // Nothing of the event's work started a trace of its own.
    let others: Vec<&str> = spans
        .iter()
        .filter(|s| s.name == "salesforce.request" && hex(&s.trace_id) != TRACE_ID)
        .map(|s| s.name.as_str())
        .collect();
    assert!(others.is_empty(), "Salesforce calls outside the event's trace: {others:?}");
}

/// The writer's count of its Salesforce calls, from its `/metrics`.
fn salesforce_calls(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("fa_salesforce_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text_attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
        AnyValue::StringValue(s) => Some(s.clone()),
        other => Some(format!("{other:?}")),
    })
}

/// An OTLP/HTTP receiver (protobuf bodies on `POST /v1/traces`) that keeps
/// every span it is sent.
struct Collector {
    port: u16,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Collector {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let sink = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut headers: HashMap<String, String> = HashMap::new();
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    continue;
                }
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':') {
                        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
                    }
                }
                let length = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0usize);
                let mut body = vec![0u8; length];
                if reader.read_exact(&mut body).is_ok() && line.starts_with("POST /v1/traces") {
                    sink.lock().expect("lock").push(body);
                }
                let _ = reader.get_mut().write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Self { port, bodies }
    }

    /// Every span received so far.
    fn spans(&self) -> Vec<Span> {
        let bodies = self.bodies.lock().expect("lock").clone();
        assert!(!bodies.is_empty(), "no spans reached the receiver");
        bodies
            .iter()
            .map(|body| ExportTraceServiceRequest::decode(body.as_slice()).expect("an OTLP trace export"))
            .flat_map(|request| request.resource_spans)
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans)
            .collect()
    }
}
