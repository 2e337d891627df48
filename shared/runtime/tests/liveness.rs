//! `/healthz` fails once the process can no longer make progress (a
//! background task or a consumer ended before shutdown) and only then: a
//! passing RabbitMQ outage fails `/readyz`, never `/healthz`. Against the
//! real PostgreSQL and RabbitMQ.

use std::{net::SocketAddr, process::Command, time::Duration};

use fa_amqp::{ConsumerOptions, Handler, Incoming, Outcome, Topology};
use fa_runtime::{host::Host, launch::Context};
use fa_testkit::{TestDatabase, TestVhost, eventually};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tokio_util::sync::CancellationToken;

mod support;

const WORK: &str = "test-liveness.work";
const WAIT: Duration = Duration::from_secs(30);

struct Ack;

impl Handler for Ack {
    async fn handle(&self, _: &Incoming) -> Outcome {
        Outcome::Done
    }
}

/// Serves `host` on a port of its own; the address and the serving task.
async fn serve(
    host: Host,
    consumers: Vec<fa_amqp::ConsumerHandle>,
    shutdown: &CancellationToken,
) -> (SocketAddr, JoinHandle<anyhow::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let serving =
        tokio::spawn(host.serve(axum::Router::new(), Context { listener, shutdown: shutdown.clone() }, consumers));
    (addr, serving)
}

/// The status and body of `GET path`.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{addr}{path}")).await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

/// A task of the service's that runs until shutdown, as the importer's
/// scheduler does.
fn until_shutdown(shutdown: &CancellationToken) -> JoinHandle<()> {
    let stop = shutdown.clone();
    tokio::spawn(async move { stop.cancelled().await })
}

fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl").args(args).output().expect("rabbitmqctl on PATH");
    assert!(out.status.success(), "rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_names_the_task_or_consumer_that_ended_before_shutdown() {
    let db = TestDatabase::create().await.expect("database");
    let vhost = TestVhost::create().expect("vhost");
    let mut host = Host::start(&support::config("test-liveness", &db, &vhost), Topology::new().queue(WORK, &[]))
        .await
        .expect("the host starts");
    let shutdown = CancellationToken::new();

    host.own("steady", until_shutdown(&shutdown));
    let (panic_now, panic_when) = oneshot::channel::<()>();
    host.own(
        "doomed",
        tokio::spawn(async move {
            let _ = panic_when.await;
            panic!("test: the doomed task panics");
        }),
    );
    let (return_now, return_when) = oneshot::channel::<()>();
    host.own(
        "quitter",
        tokio::spawn(async move {
            let _ = return_when.await;
        }),
    );
    let consumer = host.broker.consume(ConsumerOptions::new(WORK), Ack);
    let broker = host.broker.clone();
    let (addr, serving) = serve(host, vec![consumer], &shutdown).await;

    eventually(WAIT, "/readyz to answer 200", || async { (get(addr, "/readyz").await.0 == 200).then_some(()) }).await;
    assert_eq!(get(addr, "/healthz").await, (200, "ok\n".to_owned()));

    panic_now.send(()).expect("the doomed task waits");
    let (_, body) = eventually(WAIT, "/healthz to answer 503", || async {
        Some(get(addr, "/healthz").await).filter(|(status, _)| *status == 503)
    })
    .await;
    assert_eq!(body, "task doomed stopped: it panicked\n");

    return_now.send(()).expect("the quitter waits");
    let (_, body) = eventually(WAIT, "/healthz to name the quitter too", || async {
        Some(get(addr, "/healthz").await).filter(|(_, body)| body.contains("quitter"))
    })
    .await;
    assert_eq!(body, "task doomed stopped: it panicked\ntask quitter stopped: it returned\n");

    // Its broker closed under it while the process runs: nothing
    // subscribes the consumer again.
    broker.close().await;
    let (status, body) = eventually(WAIT, "/healthz to name the consumer", || async {
        Some(get(addr, "/healthz").await).filter(|(_, body)| body.contains("consumer"))
    })
    .await;
    assert_eq!(status, 503);
    assert!(body.lines().any(|l| l == format!("consumer {WORK} stopped: the broker connection was closed")), "{body}");
    assert!(!body.contains("steady"), "{body}");

    shutdown.cancel();
    tokio::time::timeout(WAIT, serving)
        .await
        .expect("serve returns after shutdown")
        .expect("serve did not panic")
        .expect("serve succeeds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rabbitmq_outage_fails_readyz_not_healthz() {
    let db = TestDatabase::create().await.expect("database");
    let vhost = TestVhost::create().expect("vhost");
    let mut host = Host::start(&support::config("test-liveness", &db, &vhost), Topology::new().queue(WORK, &[]))
        .await
        .expect("the host starts");
    let shutdown = CancellationToken::new();

    // A task that keeps using the broker and the pool through the outage.
    let (broker, pool, stop) = (host.broker.clone(), host.pool.clone(), shutdown.clone());
    host.own(
        "busy",
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let _ = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&pool).await;
                let _ = broker.readiness();
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = stop.cancelled() => {}
                }
            }
        }),
    );
    let consumer = host.broker.consume(ConsumerOptions::new(WORK), Ack);
    let (addr, serving) = serve(host, vec![consumer], &shutdown).await;
    eventually(WAIT, "/readyz to answer 200", || async { (get(addr, "/readyz").await.0 == 200).then_some(()) }).await;
    assert_eq!(get(addr, "/healthz").await, (200, "ok\n".to_owned()));

    // The outage: every connection dropped, and none let in again until
    // the permission is back.
    let name = vhost.name.clone();
    tokio::task::spawn_blocking(move || {
        rabbitmqctl(&["clear_permissions", "-p", &name, "guest"]);
    })
    .await
    .expect("join");
    tokio::task::block_in_place(|| vhost.close_all_connections()).expect("rabbitmqctl close_all_connections");
    let (_, report) = eventually(WAIT, "/readyz to answer 503", || async {
        Some(get(addr, "/readyz").await).filter(|(status, _)| *status == 503)
    })
    .await;
    assert!(report.contains("amqp") && report.contains("consumers"), "{report}");
    // Several liveness periods' worth of probes: alive throughout.
    for _ in 0..20 {
        assert_eq!(get(addr, "/healthz").await, (200, "ok\n".to_owned()), "during the outage");
        assert_eq!(get(addr, "/readyz").await.0, 503, "still unreachable");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    let name = vhost.name.clone();
    tokio::task::spawn_blocking(move || {
        rabbitmqctl(&["set_permissions", "-p", &name, "guest", ".*", ".*", ".*"]);
    })
    .await
    .expect("join");
    eventually(WAIT, "/readyz to answer 200 once RabbitMQ is back", || async {
        (get(addr, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    assert_eq!(get(addr, "/healthz").await, (200, "ok\n".to_owned()));

    shutdown.cancel();
    tokio::time::timeout(WAIT, serving)
        .await
        .expect("serve returns after shutdown")
        .expect("serve did not panic")
        .expect("serve succeeds");
}
