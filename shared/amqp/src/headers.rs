//! Header names and access, and W3C trace context in AMQP headers.

use std::collections::BTreeMap;

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use opentelemetry::propagation::{Extractor, Injector};

/// The tenant a message belongs to (amqp.md, the AMQP contract outside this repository).
pub const TENANT_HEADER: &str = fa_messages::topology::TENANT_ID_HEADER;
/// Why a message was dead-lettered: `{"code": "...", "message": "..."}`.
pub const ERROR_HEADER: &str = fa_messages::topology::ERROR_HEADER;
/// Which attempt a redelivered copy is (1 for the original).
pub const ATTEMPT_HEADER: &str = "x-fa-attempt";
/// When the first attempt was made, milliseconds since the epoch.
pub const FIRST_ATTEMPT_HEADER: &str = "x-fa-first-attempt-at";
/// The passing failure that caused the last retry.
pub const LAST_ERROR_HEADER: &str = "x-fa-last-error";

/// A header's value as text, whatever string type the sender used.
pub fn text(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    match headers?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        AMQPValue::ByteArray(b) => Some(String::from_utf8_lossy(b.as_slice()).into_owned()),
        _ => None,
    }
}

/// A header's value as an integer, whatever integer type the sender used.
pub fn integer(headers: Option<&FieldTable>, name: &str) -> Option<i64> {
    match headers?.inner().get(name)? {
        AMQPValue::ShortShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::LongUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongLongInt(v) => Some(*v),
        AMQPValue::Timestamp(v) => i64::try_from(*v).ok(),
        AMQPValue::LongString(s) => s.to_string().parse().ok(),
        _ => None,
    }
}

/// Sets a text header.
pub fn set_text(headers: &mut BTreeMap<ShortString, AMQPValue>, name: &str, value: &str) {
    headers.insert(ShortString::from(name), AMQPValue::LongString(LongString::from(value.as_bytes().to_vec())));
}

/// Writes the current span's trace context (`traceparent`, `tracestate`).
pub fn inject_trace_context(headers: &mut BTreeMap<ShortString, AMQPValue>) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut HeaderInjector(headers)));
}

/// Makes `span` a child of the trace context carried by `headers`, if any.
pub fn adopt_trace_context(span: &tracing::Span, headers: Option<&FieldTable>) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let Some(headers) = headers else { return };
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    // Fails only when no OpenTelemetry layer is installed: nothing to link.
    let _ = span.set_parent(parent);
}

struct HeaderInjector<'a>(&'a mut BTreeMap<ShortString, AMQPValue>);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        set_text(self.0, key, &value);
    }
}

struct HeaderExtractor<'a>(&'a FieldTable);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match self.0.inner().get(key)? {
            AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
            AMQPValue::ShortString(s) => Some(s.as_str()),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.0.inner().keys().map(ShortString::as_str).collect()
    }
}
