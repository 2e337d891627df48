//! `amqps://`: the broker connection over TLS, verified against a private
//! CA given as `BrokerOptions::tls_roots` (`FA_SF_AMQP_CA_FILE`).
//!
//! The local RabbitMQ listens in plain AMQP only, so the test puts a TLS
//! front before it: a loopback port that presents a certificate for
//! `localhost`, signed by a CA made for the test, and passes the bytes on
//! to 127.0.0.1:5672. What crosses the front is what a TLS listener of
//! RabbitMQ would see.

use std::{sync::Arc, time::Duration};

use base64::Engine as _;
use fa_amqp::{Broker, BrokerOptions, ExchangeKind, Topology};
use fa_messages::{ImportCompletedV1, topology::SYNC_EXCHANGE};
use fa_testkit::{TestVhost, eventually};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use secrecy::SecretString;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    },
};

const WAIT: Duration = Duration::from_secs(30);

/// A TLS front for the local RabbitMQ and the CA that signed its
/// certificate, in PEM.
struct TlsFront {
    port: u16,
    ca_pem: String,
    handshakes_failed: Arc<std::sync::atomic::AtomicUsize>,
}

async fn tls_front() -> TlsFront {
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "fa-amqp test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key")).expect("CA certificate");
    let server_key = KeyPair::generate().expect("server key");
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("server params")
        .signed_by(&server_key, &ca)
        .expect("server certificate");

    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![server.der().clone(), ca.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .expect("server TLS config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handshakes_failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let failed = handshakes_failed.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let failed = failed.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return;
                };
                let Ok(mut rabbit) = TcpStream::connect("127.0.0.1:5672").await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut rabbit).await;
            });
        }
    });
    TlsFront { port, ca_pem: pem(ca.der()), handshakes_failed }
}

fn pem(der: &CertificateDer<'_>) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let lines: Vec<&str> =
        text.as_bytes().chunks(64).map(|chunk| std::str::from_utf8(chunk).unwrap_or_default()).collect();
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
}

/// The vhost's URL through the front, as `amqps://` to `localhost`.
fn amqps_url(vhost: &TestVhost, front: &TlsFront) -> String {
    let (credentials, rest) = vhost.url.trim_start_matches("amqp://").split_once('@').expect("user@host");
    let (_, vhost_path) = rest.split_once('/').expect("host/vhost");
    format!("amqps://{credentials}@localhost:{}/{vhost_path}", front.port)
}

fn options(tls_roots: Option<String>) -> BrokerOptions {
    BrokerOptions {
        min_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        tls_roots,
        ..Default::default()
    }
}

/// A broker connected through `front`, trusting the CA that signed it.
async fn started_over_tls(vhost: &TestVhost, front: &TlsFront, topology: Topology) -> Broker {
    let url = SecretString::from(amqps_url(vhost, front));
    let broker = Broker::start(url, "test-tls", topology, options(Some(front.ca_pem.clone())));
    eventually(WAIT, "a connection over TLS", || async { broker.readiness().ok() }).await;
    broker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_with_the_ca_of_rabbitmqs_certificate_connects_and_publishes() {
    let vhost = TestVhost::create().expect("vhost");
    let front = tls_front().await;
    let topology = Topology::new().exchange("test.tls", ExchangeKind::Topic);
    let broker = started_over_tls(&vhost, &front, topology).await;
    // The exchange the broker declared over TLS is there.
    let exchanges = std::process::Command::new("rabbitmqctl")
        .args(["list_exchanges", "-q", "-p", &vhost.name, "name"])
        .output()
        .expect("rabbitmqctl");
    assert!(String::from_utf8_lossy(&exchanges.stdout).lines().any(|l| l.trim() == "test.tls"));
    broker.broadcast("test.tls", b"{}").await.expect("a confirmed publish over TLS");
    assert_eq!(front.handshakes_failed.load(std::sync::atomic::Ordering::Relaxed), 0);
    broker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_all_connects_over_tls_with_the_same_ca() {
    let vhost = TestVhost::create().expect("vhost");
    let front = tls_front().await;
    let topology = Topology::new().exchange(SYNC_EXCHANGE, ExchangeKind::Topic);
    let broker = started_over_tls(&vhost, &front, topology).await;
    // Front Agent's queue, straight on RabbitMQ.
    let connection =
        lapin::Connection::connect(&vhost.url, lapin::ConnectionProperties::default()).await.expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    let (queue, no_options) = ("tls.sync", lapin::types::FieldTable::default());
    channel.queue_declare(queue.into(), Default::default(), no_options.clone()).await.expect("declare");
    channel
        .queue_bind(queue.into(), SYNC_EXCHANGE.into(), "#".into(), Default::default(), no_options)
        .await
        .expect("bind");

    let text = include_str!("../../messages/examples/import.completed.v1.json");
    let message: ImportCompletedV1 = serde_json::from_str(text).expect("example parses");
    broker.publish_all(&vec![message; 1_000]).await.expect("confirmed over TLS");
    let passive = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
    let declared = channel.queue_declare(queue.into(), passive, Default::default()).await.expect("queue");
    assert_eq!(declared.message_count(), 1_000);
    assert_eq!(front.handshakes_failed.load(std::sync::atomic::Ordering::Relaxed), 0);
    broker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_without_that_ca_refuses_the_certificate_and_says_so() {
    let vhost = TestVhost::create().expect("vhost");
    let front = tls_front().await;
    let broker =
        Broker::start(SecretString::from(amqps_url(&vhost, &front)), "test-tls", Topology::new(), options(None));
    let why = eventually(WAIT, "a refused connection", || async { broker.readiness().err() }).await;
    let why = eventually(WAIT, "the reason", || {
        let broker = broker.clone();
        let first = why.clone();
        async move {
            let now = broker.readiness().err().unwrap_or(first);
            (now != "not connected to RabbitMQ yet").then_some(now)
        }
    })
    .await;
    assert!(why.to_lowercase().contains("certificate"), "the reason names the certificate: {why}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(broker.readiness().is_err(), "never connected without trusting the CA");
    broker.close().await;
}
