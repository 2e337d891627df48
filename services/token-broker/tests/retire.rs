//! A disconnected org stays disconnected: after DELETE or a re-connect
//! returns, no replica of the broker and no service's `TokenClient` hands
//! out a token of the old connection, and its Salesforce sessions end. A
//! stored row is not trusted: a login URL edited outside the allowlist is
//! refused before any request leaves, and a key whose row was edited does
//! not open.

mod common;

use std::{collections::BTreeSet, time::Duration};

use common::{Stack, TENANT};
use fa_testkit::eventually;
use serde_json::{Value, json};

const NEWS: Duration = Duration::from_secs(10);

/// Asks the token queue `n` times (the two replicas take turns) and returns
/// the replies.
async fn ask(stack: &Stack, client: &fa_amqp::RpcClient, n: usize) -> Vec<Value> {
    let mut replies = Vec::new();
    for _ in 0..n {
        replies.push(stack.token_request(client, TENANT, None).await);
    }
    replies
}

fn tokens_of(replies: &[Value]) -> BTreeSet<String> {
    replies.iter().filter_map(|r| r["access_token"].as_str().map(str::to_owned)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_disconnect_on_one_replica_no_replica_or_client_hands_out_a_token_and_its_sessions_are_revoked() {
    let stack = Stack::start().await;
    stack.connect().await;
    let (_replica, replica_port) = stack.another_replica().await;
    let (broker, rpc) = common::amqp_client(&stack);
    let client = fa_tokens::TokenClient::new(broker, Duration::from_secs(20));
    let cached = client.token(TENANT).await.expect("a token before the disconnect");
    // Both replicas serve the queue; between them they hold every token
    // handed out.
    let mut seen = tokens_of(&ask(&stack, &rpc, 8).await);
    seen.insert(secrecy::ExposeSecret::expose_secret(&cached.token).to_owned());
    for token in &seen {
        assert!(stack.session_live(token).await, "each token works before the disconnect");
    }

    let http = reqwest::Client::new();
    let deleted = http
        .delete(format!("http://127.0.0.1:{}/v1/tenants/{TENANT}/salesforce/connection", stack.port))
        .bearer_auth(common::ADMIN_TOKEN)
        .send()
        .await
        .expect("DELETE answers");
    assert_eq!(deleted.status().as_u16(), 204);

    // At once: neither replica hands out a token any more.
    for reply in ask(&stack, &rpc, 8).await {
        assert_eq!(reply["result"], "error", "{reply}");
        assert_eq!(reply["code"], "not_connected", "{reply}");
    }
    // The client hears the news and drops its cached token.
    eventually(NEWS, "the client to drop its token", || async {
        match client.token(TENANT).await {
            Err(e) if e.code() == "not_connected" => Some(()),
            _ => None,
        }
    })
    .await;
    // Every session the connection had at Salesforce is over.
    for token in &seen {
        eventually(NEWS, "the session to be revoked", || async { (!stack.session_live(token).await).then_some(()) })
            .await;
    }
    let revoked = || async {
        let mut total = 0;
        for port in [stack.port, replica_port] {
            let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.ok()?.text().await.ok()?;
            let line = text.lines().find_map(|l| l.strip_prefix("fa_token_revocations_total{outcome=\"revoked\"} "))?;
            total += line.trim().parse::<usize>().ok()?;
        }
        Some(total)
    };
    eventually(NEWS, "each replica to count the token it revoked", || async {
        (revoked().await? == seen.len()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_reconnect_to_a_second_org_every_replica_and_client_hands_out_the_second_orgs_token() {
    let stack = Stack::start().await;
    stack.connect().await;
    let (_replica, _) = stack.another_replica().await;
    let (broker, rpc) = common::amqp_client(&stack);
    let client = fa_tokens::TokenClient::new(broker, Duration::from_secs(20));
    let first = client.token(TENANT).await.expect("a token of the first org");
    assert_eq!(first.organization_id.as_deref(), Some(stack.org.org.id.as_str()));
    let old = tokens_of(&ask(&stack, &rpc, 8).await);

    let second = sfsim::fixture::connected_org(&stack.sfsim.sim, "Second").expect("a second org");
    let body = json!({
        "consumer_key": second.consumer_key,
        "username": second.username,
        "private_key": second.keys.private_key_pem,
        "login_url": stack.sfsim.url,
        "objects": ["Lead"],
    });
    let answer = stack.register(body, None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["organization_id"], second.org.id.as_str());

    for reply in ask(&stack, &rpc, 8).await {
        assert_eq!(reply["organization_id"], second.org.id.as_str(), "{reply}");
        assert!(!old.contains(reply["access_token"].as_str().unwrap_or_default()), "{reply:?}");
    }
    eventually(NEWS, "the client to take the second org's token", || async {
        let token = client.token(TENANT).await.ok()?;
        (token.organization_id.as_deref() == Some(second.org.id.as_str())).then_some(())
    })
    .await;
    for token in &old {
        eventually(NEWS, "the first org's session to be revoked", || async {
            (!stack.session_live(token).await).then_some(())
        })
        .await;
    }
}

/// Forces a token exchange: reports the current token dead.
async fn exchange(stack: &Stack, rpc: &fa_amqp::RpcClient) -> Value {
    let current = stack.token_request(rpc, TENANT, None).await;
    let id = current["token_id"].as_str().expect("a token first").to_owned();
    stack.token_request(rpc, TENANT, Some(&id)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_login_url_edited_outside_the_allowlist_is_refused_before_any_request_leaves() {
    let stack = Stack::start().await;
    stack.connect().await;
    let (_broker, rpc) = common::amqp_client(&stack);
    // A host of the attacker's: loopback, but not listed (only 127.0.0.1 is).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listener");
    let port = listener.local_addr().expect("address").port();
    let accepted = tokio::spawn(async move { listener.accept().await.is_ok() });
    let pool = sqlx::PgPool::connect(&stack.db.url).await.expect("database");
    sqlx::query("UPDATE connections SET login_url = $1 WHERE tenant_id = $2")
        .bind(format!("http://localhost:{port}"))
        .bind(TENANT)
        .execute(&pool)
        .await
        .expect("the row is edited");

    let reply = exchange(&stack, &rpc).await;
    assert_eq!(reply["result"], "error", "{reply}");
    assert_eq!(reply["code"], "login_url_not_allowed", "{reply}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!accepted.is_finished(), "nothing connected to the edited login URL");
    accepted.abort();

    let shown =
        stack.call(reqwest::Method::GET, &format!("/v1/tenants/{TENANT}/salesforce/connection"), None, None).await;
    assert_eq!(shown.body["status"], "failing", "{}", shown.body);
    assert_eq!(shown.body["last_error"]["code"], "login_url_not_allowed", "{}", shown.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_whose_username_was_edited_does_not_open_and_nothing_is_sent() {
    let stack = Stack::start().await;
    stack.connect().await;
    let (_broker, rpc) = common::amqp_client(&stack);
    let pool = sqlx::PgPool::connect(&stack.db.url).await.expect("database");
    sqlx::query("UPDATE connections SET username = $1 WHERE tenant_id = $2")
        .bind("ceo@acme.example.com")
        .bind(TENANT)
        .execute(&pool)
        .await
        .expect("the row is edited");
    let logins = stack.logins();
    let reply = exchange(&stack, &rpc).await;
    assert_eq!(reply["result"], "error", "{reply}");
    assert_eq!(reply["code"], "internal_error", "{reply}");
    assert_eq!(stack.logins(), logins, "no assertion was signed or sent");
    let shown =
        stack.call(reqwest::Method::GET, &format!("/v1/tenants/{TENANT}/salesforce/connection"), None, None).await;
    assert_eq!(shown.body["status"], "failing", "{}", shown.body);
    let detail = shown.body["last_error"]["detail"].as_str().unwrap_or_default().to_owned();
    assert!(detail.contains("register the connection again"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_deleted_behind_the_brokers_back_is_not_served_from_its_cache() {
    let stack = Stack::start().await;
    stack.connect().await;
    let (_broker, rpc) = common::amqp_client(&stack);
    let cached = stack.token_request(&rpc, TENANT, None).await;
    let token = cached["access_token"].as_str().expect("a token").to_owned();
    // No news goes out for this: only the row is gone.
    let pool = sqlx::PgPool::connect(&stack.db.url).await.expect("database");
    sqlx::query("DELETE FROM connections WHERE tenant_id = $1").bind(TENANT).execute(&pool).await.expect("deleted");

    let reply = stack.token_request(&rpc, TENANT, None).await;
    assert_eq!(reply["code"], "not_connected", "{reply}");
    assert!(!stack.session_live(&token).await, "the cached token's session was revoked on the way out");
}
