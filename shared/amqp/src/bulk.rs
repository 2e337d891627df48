//! The connection [`Broker::publish_all`](crate::Broker::publish_all)
//! publishes on: one channel in confirm mode, its frames written and its
//! confirms read by the task that publishes.
//!
//! Why not lapin's channel, as everything else: per message, lapin builds
//! a frames vector and four promises, arms an event listener, wakes its
//! I/O thread, and settles each `multiple` confirm by scanning every
//! pending one. For the importer's batches that was 45 % of its CPU
//! (`perf`, `import_bench`). Here a window of messages is encoded into one
//! buffer and sent with one write; a confirm is a delivery tag counted.
//!
//! Only publishing: the topology is declared, and everything else is done,
//! on the broker's lapin connection. The connection is opened with lapin's
//! own TCP and TLS code (the same URL, the same trust roots), without
//! heartbeats: a connection idle for [`IDLE_LIMIT`] is closed by us, and
//! a publishing call that hears nothing fails at its publish timeout.

use std::time::{Duration, Instant};

use amq_protocol::{
    frame::{AMQPContentHeader, AMQPFrame, ProtocolVersion, WriteContext, gen_frame, parse_frame},
    protocol::{AMQPClass, BasicProperties, basic, channel, confirm, connection},
};
use futures_util::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use lapin::{
    tcp::{AMQPUriTcpExt as _, OwnedTLSConfig},
    types::{AMQPValue, FieldTable, LongString, ShortString},
    uri::AMQPUri,
};

/// The channel the messages go out on.
pub(crate) const CHANNEL: u16 = 1;

/// A connection unused for this long is closed (before RabbitMQ or a
/// proxy would take it for dead, since it sends no heartbeats).
pub(crate) const IDLE_LIMIT: Duration = Duration::from_secs(10);

/// The largest frame asked for; RabbitMQ's default.
const FRAME_MAX: u32 = 131_072;

/// How long connecting (TCP, TLS and the AMQP handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an orderly close waits for RabbitMQ's close-ok.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Frame type, channel and size: the 7 bytes before a frame's payload.
const FRAME_HEAD: usize = 7;

/// The octet that ends every frame.
const FRAME_END: u8 = 0xCE;

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Why the connection is no longer usable; what was not confirmed on it
/// goes again on another.
#[derive(Debug)]
pub(crate) struct Lost(pub(crate) String);

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<std::io::Error> for Lost {
    fn from(e: std::io::Error) -> Self {
        Self(format!("RabbitMQ connection: {e}"))
    }
}

/// One publishing connection and its confirm-mode channel.
pub(crate) struct Bulk {
    io: Box<dyn Io>,
    /// Bytes read and not yet parsed, from `start`.
    input: Vec<u8>,
    start: usize,
    frame_max: u32,
    /// The delivery tag of the last message published (the channel counts
    /// from 1).
    pub(crate) last_tag: u64,
    /// When it was last given back unused.
    pub(crate) idle_since: Instant,
}

impl Bulk {
    /// Connects to `url` as lapin would (`tls_roots`: extra trust roots,
    /// PEM), logs in, opens the channel and turns confirms on.
    pub(crate) async fn connect(url: &str, tls_roots: Option<&str>, name: &str) -> Result<Self, Lost> {
        tokio::time::timeout(CONNECT_TIMEOUT, Self::connect_now(url, tls_roots, name))
            .await
            .map_err(|_| Lost(format!("no answer from RabbitMQ within {CONNECT_TIMEOUT:?} (FA_SF_AMQP_URL)")))?
    }

    async fn connect_now(url: &str, tls_roots: Option<&str>, name: &str) -> Result<Self, Lost> {
        let uri: AMQPUri = url.parse().map_err(|e| Lost(format!("FA_SF_AMQP_URL is not an AMQP URL: {e}")))?;
        if uri.query.auth_mechanism.is_some_and(|m| m != amq_protocol::auth::SASLMechanism::Plain) {
            return Err(Lost("FA_SF_AMQP_URL asks for an auth_mechanism other than PLAIN".to_owned()));
        }
        let runtime = lapin::runtime::default_runtime().map_err(|e| Lost(e.to_string()))?;
        let tls = OwnedTLSConfig { identity: None, cert_chain: tls_roots.map(str::to_owned) };
        let io = uri.connect_with_config_async(tls.as_ref(), &runtime).await?;
        let mut bulk = Self {
            io: Box::new(io),
            input: Vec::new(),
            start: 0,
            frame_max: 4096,
            last_tag: 0,
            idle_since: Instant::now(),
        };
        bulk.write(&Self::frame(&AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1()))?).await?;
        let AMQPClass::Connection(connection::AMQPMethod::Start(start)) = bulk.method().await? else {
            return Err(Lost("RabbitMQ did not start the connection".to_owned()));
        };
        if !start.mechanisms.to_string().split(' ').any(|m| m == "PLAIN") {
            return Err(Lost(format!("RabbitMQ offers no PLAIN login (offers {})", start.mechanisms)));
        }
        let user = &uri.authority.userinfo;
        let response = format!("\0{}\0{}", user.username, user.password);
        bulk.send(
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: client_properties(name),
                mechanism: ShortString::from("PLAIN"),
                response: LongString::from(response.as_str()),
                locale: ShortString::from("en_US"),
            })),
            0,
        )
        .await?;
        let AMQPClass::Connection(connection::AMQPMethod::Tune(tune)) = bulk.method().await? else {
            return Err(Lost("RabbitMQ did not tune the connection".to_owned()));
        };
        let wanted = uri.query.frame_max.unwrap_or(FRAME_MAX);
        bulk.frame_max = if tune.frame_max == 0 { wanted } else { wanted.min(tune.frame_max) }.max(4096);
        bulk.send(
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: 1,
                frame_max: bulk.frame_max,
                // No heartbeats: see the module's documentation.
                heartbeat: 0,
            })),
            0,
        )
        .await?;
        bulk.send(
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                virtual_host: ShortString::from(uri.vhost.as_str()),
            })),
            0,
        )
        .await?;
        let AMQPClass::Connection(connection::AMQPMethod::OpenOk(_)) = bulk.method().await? else {
            return Err(Lost("RabbitMQ did not open the connection".to_owned()));
        };
        bulk.send(AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})), CHANNEL).await?;
        let AMQPClass::Channel(channel::AMQPMethod::OpenOk(_)) = bulk.method().await? else {
            return Err(Lost("RabbitMQ did not open the channel".to_owned()));
        };
        bulk.send(AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select { nowait: false })), CHANNEL).await?;
        let AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(_)) = bulk.method().await? else {
            return Err(Lost("RabbitMQ did not turn confirms on".to_owned()));
        };
        Ok(bulk)
    }

    /// Closes the connection in order (RabbitMQ then logs no warning).
    pub(crate) async fn close(mut self) {
        let close = AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
            reply_code: 200,
            reply_text: ShortString::from("bye"),
            class_id: 0,
            method_id: 0,
        }));
        let orderly = async {
            self.send(close, 0).await?;
            loop {
                match self.next_frame().await? {
                    AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))) => break,
                    _ => continue,
                }
            }
            Ok::<_, Lost>(())
        };
        if let Ok(Err(e)) = tokio::time::timeout(CLOSE_TIMEOUT, orderly).await {
            tracing::debug!(error = %e, "publishing connection closed uncleanly");
        }
    }

    /// The largest body one frame carries.
    pub(crate) fn body_chunk(&self) -> usize {
        (self.frame_max as usize).saturating_sub(FRAME_HEAD + 1).max(1)
    }

    /// Writes `bytes` (whole frames) and flushes them.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<(), Lost> {
        self.io.write_all(bytes).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Sends one method frame on `channel`.
    async fn send(&mut self, method: AMQPClass, channel: u16) -> Result<(), Lost> {
        self.write(&Self::frame(&AMQPFrame::Method(channel, method))?).await
    }

    /// `frame`, encoded.
    pub(crate) fn frame(frame: &AMQPFrame) -> Result<Vec<u8>, Lost> {
        let mut out = Vec::new();
        encode(frame, &mut out)?;
        Ok(out)
    }

    /// The next method of the handshake; a close from RabbitMQ says why.
    async fn method(&mut self) -> Result<AMQPClass, Lost> {
        loop {
            match self.next_frame().await? {
                AMQPFrame::Method(_, AMQPClass::Connection(connection::AMQPMethod::Close(close))) => {
                    return Err(Lost(format!(
                        "RabbitMQ refused the connection: {} {}",
                        close.reply_code, close.reply_text
                    )));
                }
                AMQPFrame::Method(_, method) => return Ok(method),
                _ => continue,
            }
        }
    }

    /// The next frame, reading as needed.
    pub(crate) async fn next_frame(&mut self) -> Result<AMQPFrame, Lost> {
        loop {
            if let Some(frame) = self.buffered_frame()? {
                return Ok(frame);
            }
            self.fill().await?;
        }
    }

    /// The next frame if it has arrived whole.
    pub(crate) fn buffered_frame(&mut self) -> Result<Option<AMQPFrame>, Lost> {
        let available = &self.input[self.start..];
        if available.len() < FRAME_HEAD {
            return Ok(None);
        }
        let size = u32::from_be_bytes([available[3], available[4], available[5], available[6]]) as usize;
        let whole = FRAME_HEAD + size + 1;
        if available.len() < whole {
            return Ok(None);
        }
        let frame = match parse_frame(&available[..whole]) {
            Ok((_, frame)) => frame,
            Err(e) => return Err(Lost(format!("RabbitMQ sent a frame that does not parse: {e}"))),
        };
        self.start += whole;
        Ok(Some(frame))
    }

    /// Reads what has arrived (at least one byte) after what is buffered.
    async fn fill(&mut self) -> Result<(), Lost> {
        if self.start > 0 {
            self.input.drain(..self.start);
            self.start = 0;
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = self.io.read(&mut chunk).await?;
        if n == 0 {
            return Err(Lost("RabbitMQ closed the connection".to_owned()));
        }
        self.input.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Answers RabbitMQ's close of the channel or the connection, so it
    /// closes in order, and says why it closed.
    pub(crate) async fn closed_by_server(&mut self, method: &AMQPClass) -> Lost {
        let (answer, channel, what, code, text) = match method {
            AMQPClass::Channel(channel::AMQPMethod::Close(c)) => (
                AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
                CHANNEL,
                "channel",
                c.reply_code,
                c.reply_text.to_string(),
            ),
            AMQPClass::Connection(connection::AMQPMethod::Close(c)) => (
                AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})),
                0,
                "connection",
                c.reply_code,
                c.reply_text.to_string(),
            ),
            other => return Lost(format!("RabbitMQ sent {other:?} to the publishing channel")),
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.send(answer, channel)).await;
        Lost(format!("RabbitMQ closed the publishing {what}: {code} {text}"))
    }
}

/// Appends `frame`, encoded, to `out`.
pub(crate) fn encode(frame: &AMQPFrame, out: &mut Vec<u8>) -> Result<(), Lost> {
    let context = gen_frame(frame)(WriteContext::from(std::mem::take(out)))
        .map_err(|e| Lost(format!("a frame could not be encoded: {e:?}")))?;
    *out = context.write;
    Ok(())
}

/// Appends the content header of a message of `body_size` bytes with
/// `properties` to `out`, and gives the properties back.
pub(crate) fn encode_header(
    properties: BasicProperties,
    body_size: usize,
    out: &mut Vec<u8>,
) -> Result<BasicProperties, Lost> {
    let header = AMQPContentHeader { class_id: 60, body_size: body_size as u64, properties };
    let frame = AMQPFrame::Header(CHANNEL, header);
    encode(&frame, out)?;
    match frame {
        AMQPFrame::Header(_, header) => Ok(header.properties),
        _ => Ok(BasicProperties::default()),
    }
}

/// Appends `body` as body frames of at most `chunk` bytes to `out`.
pub(crate) fn encode_body(body: &[u8], chunk: usize, out: &mut Vec<u8>) {
    for part in body.chunks(chunk) {
        out.push(3);
        out.extend_from_slice(&CHANNEL.to_be_bytes());
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part);
        out.push(FRAME_END);
    }
}

/// What RabbitMQ shows of the connection (`rabbitmqctl list_connections`).
fn client_properties(name: &str) -> FieldTable {
    let mut capabilities = FieldTable::default();
    for capability in ["publisher_confirms", "basic.nack", "connection.blocked", "authentication_failure_close"] {
        capabilities.insert(ShortString::from(capability), AMQPValue::Boolean(true));
    }
    let mut properties = FieldTable::default();
    properties.insert(ShortString::from("product"), AMQPValue::LongString(LongString::from("fa-amqp")));
    properties.insert(ShortString::from("connection_name"), AMQPValue::LongString(LongString::from(name)));
    properties.insert(ShortString::from("capabilities"), AMQPValue::FieldTable(capabilities));
    properties
}

/// The publish method's frame, the same for every message of a call.
pub(crate) fn publish_method(exchange: &str, routing_key: &str) -> Result<Vec<u8>, Lost> {
    Bulk::frame(&AMQPFrame::Method(
        CHANNEL,
        AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: ShortString::from(exchange),
            routing_key: ShortString::from(routing_key),
            mandatory: true,
            immediate: false,
        })),
    ))
}
