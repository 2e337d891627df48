//! `TokenClient` against a token server that is not the token-broker, over
//! the real RabbitMQ in a vhost of its own: a token reply naming an
//! `http://` or foreign `instance_url` is refused and never cached; a
//! Salesforce (or loopback) one is used.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use fa_amqp::{Broker, BrokerOptions, RpcHandler, RpcRequest, RpcServerOptions, Topology};
use fa_testkit::{TestVhost, eventually};
use fa_tokens::{QUEUE, TokenClient, TokenReply};
use secrecy::{ExposeSecret as _, SecretString};

const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "00Dxx0000001gPL!forged-token-text";

/// Answers every request with a token for whatever `instance_url` holds.
struct Server {
    instance_url: Mutex<String>,
    asked: Mutex<usize>,
}

impl RpcHandler for Server {
    async fn handle(&self, _request: &RpcRequest) -> Vec<u8> {
        *self.asked.lock().expect("lock") += 1;
        let reply = TokenReply::Token {
            access_token: SECRET.to_owned(),
            instance_url: self.instance_url.lock().expect("lock").clone(),
            token_id: "0123456789abcdef".to_owned(),
            organization_id: None,
            user_id: None,
            generation: 1,
        };
        serde_json::to_vec(&reply).expect("a reply encodes")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_reply_naming_an_http_or_foreign_instance_url_is_refused() {
    let vhost = TestVhost::create().expect("vhost");
    let url = SecretString::from(vhost.url.clone());
    let server_side =
        Broker::start(url.clone(), "test-server", Topology::new().rpc_queue(QUEUE), BrokerOptions::default());
    let server = Arc::new(Server { instance_url: Mutex::new(String::new()), asked: Mutex::new(0) });
    let serving = server_side.serve_rpc(RpcServerOptions::new(QUEUE), server.clone());
    eventually(WAIT, "the server to consume", || async { serving.readiness().ok() }).await;
    let caller_side = Broker::start(url, "test-caller", Topology::new(), BrokerOptions::default());
    let tokens = TokenClient::new(caller_side.clone(), Duration::from_secs(10));

    for refused in [
        "http://evil.example.com",
        "https://evil.example.com",
        "http://acme.my.salesforce.com",
        "https://acme.my.salesforce.com.evil.example",
        "https://acme.my.salesforce.com@evil.example",
    ] {
        *server.instance_url.lock().expect("lock") = refused.to_owned();
        let asked = *server.asked.lock().expect("lock");
        let err = tokens.token("acme").await.expect_err(refused);
        assert_eq!(err.code(), "instance_url_not_allowed", "{refused}: {err}");
        let message = err.to_string();
        assert!(!message.contains(SECRET), "{message}");
        assert!(message.contains("not used"), "{message}");
        // Nothing was cached: the next call asks again.
        tokens.token("acme").await.expect_err(refused);
        assert_eq!(*server.asked.lock().expect("lock"), asked + 2, "{refused}: a refused token is not cached");
    }

    for accepted in ["https://acme.my.salesforce.com", "http://127.0.0.1:8090"] {
        *server.instance_url.lock().expect("lock") = accepted.to_owned();
        tokens.forget("acme");
        let token = tokens.token("acme").await.expect(accepted);
        assert_eq!(token.instance_url, accepted);
        assert_eq!(token.token.expose_secret(), SECRET);
    }

    serving.stop().await;
    server_side.close().await;
    caller_side.close().await;
}
