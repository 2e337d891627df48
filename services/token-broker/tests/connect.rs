//! Connecting an org through the admin API (docs/behaviour.md §1): one step when
//! everything is right, the exact setting to fix when something is not.

mod common;

use common::{ADMIN_TOKEN, Stack, TENANT, key_lines};
use lapin::{Connection, ConnectionProperties, options::BasicGetOptions};
use serde_json::{Value, json};

#[tokio::test]
async fn registering_stores_the_connection_and_requests_the_first_import() {
    let stack = Stack::start().await;
    let body = stack.connect().await;
    assert_eq!(body["tenant_id"], TENANT);
    assert_eq!(body["status"], "connected");
    assert_eq!(body["username"], stack.org.username.as_str());
    assert_eq!(body["login_url"], stack.sfsim.url.as_str());
    assert_eq!(body["instance_url"], stack.sfsim.url.as_str());
    assert_eq!(body["organization_id"], stack.org.org.id.as_str());
    assert_eq!(body["salesforce_user_id"], stack.org.user_id.as_str());
    assert_eq!(body["objects"], json!(["Lead", "Contact"]));
    assert_eq!(body["last_error"], Value::Null);
    let hint = body["consumer_key_hint"].as_str().expect("hint");
    let key = &stack.org.consumer_key;
    assert_eq!(hint, format!("{}…{}", &key[..6], &key[key.len() - 4..]));
    assert!(body.get("private_key").is_none() && body.get("consumer_key").is_none(), "{body}");
    assert_eq!(stack.logins(), 1, "registration is one live exchange");

    let shown =
        stack.call(reqwest::Method::GET, &format!("/v1/tenants/{TENANT}/salesforce/connection"), None, None).await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body, body);

    // import.requested.v1 with reason `connected`, valid against the schema.
    let conn = Connection::connect(&stack.vhost.url, ConnectionProperties::default()).await.expect("amqp");
    let channel = conn.create_channel().await.expect("channel");
    let message =
        fa_testkit::eventually(std::time::Duration::from_secs(10), "import.requested", || {
            let channel = channel.clone();
            async move {
                channel.basic_get("importer.commands".into(), BasicGetOptions { no_ack: true }).await.expect("get")
            }
        })
        .await;
    let request: Value = serde_json::from_slice(&message.delivery.data).expect("JSON");
    assert_eq!(request["tenant_id"], TENANT);
    assert_eq!(request["reason"], "connected");
    fa_messages::validation::validate("import.requested.v1", &request).expect("valid against the schema");
    assert_eq!(message.delivery.properties.kind().as_ref().map(|s| s.as_str()), Some("import.requested.v1"));

    // In the database the key is ciphertext under a key id, nothing readable.
    let pool = stack.db.pool().await.expect("pool");
    let (key_id, blob): (String, Vec<u8>) =
        sqlx::query_as("SELECT key_id, private_key_ciphertext FROM connections WHERE tenant_id = $1")
            .bind(TENANT)
            .fetch_one(&pool)
            .await
            .expect("row");
    assert_eq!(key_id.len(), 16, "{key_id}");
    let blob_text = String::from_utf8_lossy(&blob);
    for line in key_lines(&stack.org.keys.private_key_pem) {
        assert!(!blob_text.contains(&line[..32]), "the stored key contains the PEM in clear");
    }
    assert!(!blob.windows(32).any(|w| stack.org.keys.private_key_pem.as_bytes().windows(32).any(|p| p == w)));
}

/// Every way the guide's readers paste `server.key`.
#[tokio::test]
async fn every_paste_form_is_accepted() {
    let stack = Stack::start().await;
    let pkcs1 = stack.org.keys.private_key_pkcs1_pem.clone();
    let pkcs8 = stack.org.keys.private_key_pem.clone();
    let one_line = |pem: &str| {
        let lines: Vec<&str> = pem.lines().collect();
        format!("{}{}{}", lines[0], lines[1..lines.len() - 1].join(""), lines[lines.len() - 1])
    };
    let forms: Vec<(&str, String)> = vec![
        ("PKCS#1", pkcs1.clone()),
        ("PKCS#8", pkcs8.clone()),
        ("CRLF line ends", pkcs1.replace('\n', "\r\n")),
        ("surrounding blanks", format!("\n\n   {pkcs8}  \n\t")),
        ("no final newline", pkcs1.trim_end().to_owned()),
        ("body on one line", one_line(&pkcs1)),
        ("spaces for newlines", pkcs8.trim_end().replace('\n', " ")),
        ("typographic dashes", pkcs1.replace("-----", "—–")),
        ("typographic dashes, PKCS#8", pkcs8.replace("-----", "–—")),
    ];
    for (form, pasted) in forms {
        let answer = stack.register(stack.registration(&pasted), None).await;
        assert_eq!(answer.status, 200, "{form}: {}", answer.body);
        assert_eq!(answer.body["status"], "connected", "{form}");
    }
}

/// Each wrong paste gets its own reason and says what to do, in Japanese
/// when asked; none of them reaches Salesforce.
#[tokio::test]
async fn each_wrong_paste_is_refused_with_its_reason_and_what_to_do() {
    let stack = Stack::start().await;
    let encrypted = sfsim::keygen::encrypt_pkcs8_pem(&stack.org.keys.private_key_pem, "password").expect("encrypt");
    let short = sfsim::keygen::generate_with_bits("short", 1024).expect("1024-bit key");
    let public = {
        use rsa::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _, LineEnding};
        let key = rsa::PrivateKey::from_pkcs8_pem(&stack.org.keys.private_key_pem).expect("key");
        key.to_public_key().to_public_key_pem(LineEnding::LF).expect("public pem")
    };
    let cases: Vec<(&str, String, &str, &str, &str)> = vec![
        ("encrypted", encrypted, "encrypted_key", "openssl", "暗号化"),
        ("certificate", stack.org.keys.certificate_pem.clone(), "certificate", "server.key", "証明書"),
        ("public key", public, "public_key", "private", "公開鍵"),
        ("EC key", sfsim::keygen::generate_ec_p256_pem().expect("ec"), "not_rsa", "RSA", "RSA"),
        ("1024-bit key", short.private_key_pem, "key_too_short", "2048", "2048"),
        ("garbage", "これは鍵ではありません".to_owned(), "not_a_key", "BEGIN", "BEGIN"),
    ];
    for (what, pasted, reason, english, japanese) in cases {
        let answer = stack.register(stack.registration(&pasted), None).await;
        assert_eq!(answer.status, 422, "{what}: {}", answer.body);
        assert_eq!(answer.content_type, "application/problem+json", "{what}");
        assert_eq!(answer.body["code"], "invalid_private_key", "{what}");
        assert_eq!(answer.body["reason"], reason, "{what}");
        let detail = answer.body["detail"].as_str().expect("detail");
        assert!(detail.contains(english), "{what}: {detail}");

        let answer = stack.register(stack.registration(&pasted), Some("ja-JP,ja;q=0.9,en;q=0.8")).await;
        let detail = answer.body["detail"].as_str().expect("detail");
        assert!(detail.contains(japanese), "{what}: {detail}");
        assert!(detail.chars().any(|c| ('\u{3040}'..='\u{30ff}').contains(&c)), "{what} in Japanese: {detail}");
    }
    assert_eq!(stack.logins(), 0, "no refused key reached Salesforce");
    let shown =
        stack.call(reqwest::Method::GET, &format!("/v1/tenants/{TENANT}/salesforce/connection"), None, None).await;
    assert_eq!(shown.status, 404, "nothing was stored");
    assert_eq!(shown.body["code"], "not_connected");
}

/// Salesforce's refusals name the setting to fix, in the words of its
/// Japanese setup screens, with Salesforce's own error passed through.
#[tokio::test]
async fn each_salesforce_refusal_names_the_setting_to_fix() {
    let stack = Stack::start().await;
    let sim = &stack.sfsim.sim;
    let other_key = sfsim::keygen::generate("other").expect("key");
    let not_approved = sim
        .create_user(
            &stack.org.org,
            &sfsim::store::NewUser {
                username: "sales@acme.example.com".into(),
                first_name: None,
                last_name: "営業".into(),
                email: None,
                active: true,
                user_type: "Standard".into(),
            },
        )
        .expect("user");
    let _ = not_approved;
    let base = stack.registration(&stack.org.keys.private_key_pem);
    let with = |key: &str, value: &str| {
        let mut body = base.clone();
        body[key] = json!(value);
        body
    };
    let cases: Vec<(&str, Value, &str, &str, &str, &str)> = vec![
        (
            "unknown consumer key",
            with("consumer_key", "3MVG9notARealConsumerKey0000000000000000000"),
            "invalid_client_id",
            "consumer_key",
            "Consumer Key",
            "コンシューマー鍵",
        ),
        (
            "unknown user",
            with("username", "nobody@nowhere.example.com"),
            "invalid_grant",
            "user_not_pre_approved",
            "username",
            "ユーザーID(username)",
        ),
        (
            "user not pre-approved",
            with("username", "sales@acme.example.com"),
            "invalid_grant",
            "user_not_pre_approved",
            "Admin approved users are pre-authorized",
            "管理者が承認したユーザは事前承認済み",
        ),
        (
            "certificate not matching the key",
            with("private_key", &other_key.private_key_pem),
            "invalid_grant",
            "certificate_mismatch",
            "Use digital signatures",
            "デジタル署名を使用",
        ),
    ];
    for (what, body, error, cause, english, japanese) in cases {
        let answer = stack.register(body.clone(), None).await;
        assert_eq!(answer.status, 422, "{what}: {}", answer.body);
        assert_eq!(answer.body["code"], "salesforce_rejected", "{what}");
        assert_eq!(answer.body["salesforce_error"], error, "{what}: {}", answer.body);
        assert!(answer.body["salesforce_error_description"].as_str().is_some_and(|d| !d.is_empty()), "{what}");
        assert_eq!(answer.body["cause"], cause, "{what}");
        let detail = answer.body["detail"].as_str().expect("detail");
        assert!(detail.contains(english), "{what}: {detail}");

        let answer = stack.register(body, Some("ja")).await;
        let detail = answer.body["detail"].as_str().expect("detail");
        assert!(detail.contains(japanese), "{what}: {detail}");
        assert!(detail.contains("プロファイル") || cause != "user_not_pre_approved", "{what}: {detail}");
    }
    let shown =
        stack.call(reqwest::Method::GET, &format!("/v1/tenants/{TENANT}/salesforce/connection"), None, None).await;
    assert_eq!(shown.status, 404, "a refused registration stores nothing");
}

#[tokio::test]
async fn a_sandbox_org_registered_with_the_production_login_url_is_told_to_use_test() {
    // sfsim serves both hosts on one address, so the audience decides: a
    // sandbox accepts only https://test.salesforce.com. The broker derives
    // the audience from the login URL, so registering a sandbox under
    // 127.0.0.1 (production audience) is refused as Salesforce would.
    let stack = Stack::start().await;
    let keys = sfsim::keygen::generate("sandbox").expect("key");
    let sim = &stack.sfsim.sim;
    let org = sim.create_org("Sandbox", sfsim::store::Locale::JaJp, true, None);
    let consumer_key = sim.create_app(&org, None, keys.certificate_pem.clone());
    let user = sim
        .create_user(
            &org,
            &sfsim::store::NewUser {
                username: "integration@sandbox.example.com".into(),
                first_name: None,
                last_name: "連携".into(),
                email: None,
                active: true,
                user_type: "Standard".into(),
            },
        )
        .expect("user");
    sim.approve(&consumer_key, &user, true);
    let body = json!({
        "consumer_key": consumer_key, "username": "integration@sandbox.example.com",
        "private_key": keys.private_key_pem, "login_url": stack.sfsim.url, "objects": ["Account"],
    });
    let answer = stack.register(body, Some("ja")).await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert_eq!(answer.body["cause"], "login_url_audience");
    assert!(answer.body["detail"].as_str().is_some_and(|d| d.contains("https://test.salesforce.com")));
}

#[tokio::test]
async fn a_login_url_outside_the_allowlist_is_refused_before_any_request() {
    let stack = Stack::start().await;
    // Something listening where the admin points: it must never be called.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listener");
    let port = listener.local_addr().expect("addr").port();
    let refused = [
        format!("http://localhost:{port}"),
        "https://evil.example.com".to_owned(),
        "http://login.salesforce.com".to_owned(),
        "https://login.salesforce.com.evil.example.com".to_owned(),
        "https://login.salesforce.com/services/oauth2/token".to_owned(),
        "http://169.254.169.254".to_owned(),
    ];
    for url in refused {
        let mut body = stack.registration(&stack.org.keys.private_key_pem);
        body["login_url"] = json!(url);
        let answer = stack.register(body.clone(), None).await;
        assert_eq!(answer.status, 400, "{url}: {}", answer.body);
        assert_eq!(answer.body["code"], "login_url_not_allowed", "{url}");
        let answer = stack.register(body, Some("ja")).await;
        assert!(answer.body["detail"].as_str().is_some_and(|d| d.contains("login_url")), "{url}");
    }
    let accepted = tokio::time::timeout(std::time::Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "the broker connected to an address the allowlist refuses");
    assert_eq!(stack.logins(), 0);
}

#[tokio::test]
async fn malformed_requests_say_what_to_send() {
    let stack = Stack::start().await;
    let base = stack.registration(&stack.org.keys.private_key_pem);
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut without = base.clone();
    without.as_object_mut().expect("object").remove("username");
    cases.push(("no username", without));
    let mut objects = base.clone();
    objects["objects"] = json!([]);
    cases.push(("no objects", objects));
    let mut objects = base.clone();
    objects["objects"] = json!(["Lead", "Opportunity"]);
    cases.push(("unknown object", objects));
    let mut objects = base.clone();
    objects["objects"] = json!(["Lead", "Lead"]);
    cases.push(("object twice", objects));
    let mut key = base.clone();
    key["private_key"] = json!("x".repeat(20_001));
    cases.push(("key too long", key));
    for (what, body) in cases {
        let answer = stack.register(body, None).await;
        assert_eq!(answer.status, 400, "{what}: {}", answer.body);
        assert_eq!(answer.body["code"], "invalid_request", "{what}");
    }
    let answer =
        stack.call(reqwest::Method::PUT, "/v1/tenants/bad%20tenant/salesforce/connection", Some(base), None).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
}

#[tokio::test]
async fn the_admin_api_answers_401_without_the_right_token() {
    let stack = Stack::start().await;
    let path = format!("/v1/tenants/{TENANT}/salesforce/connection");
    let wrong = format!("{ADMIN_TOKEN}x");
    let short = &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1];
    for auth in [
        None,
        Some("Bearer ".to_owned()),
        Some(format!("Bearer {wrong}")),
        Some(format!("Bearer {short}")),
        Some(format!("Basic {ADMIN_TOKEN}")),
    ] {
        for method in [reqwest::Method::GET, reqwest::Method::PUT, reqwest::Method::DELETE] {
            let mut request = stack.http.request(method.clone(), stack.url(&path));
            if let Some(auth) = &auth {
                request = request.header("Authorization", auth);
            }
            let response =
                request.json(&stack.registration(&stack.org.keys.private_key_pem)).send().await.expect("answer");
            assert_eq!(response.status().as_u16(), 401, "{method} with {auth:?}");
            let body: Value = response.json().await.expect("problem");
            assert_eq!(body["code"], "unauthorized");
        }
    }
    for path in [format!("/v1/tenants/{TENANT}/salesforce/users"), format!("/v1/tenants/{TENANT}/user-links")] {
        let response = stack.http.get(stack.url(&path)).send().await.expect("answer");
        assert_eq!(response.status().as_u16(), 401, "{path}");
    }
    assert_eq!(stack.logins(), 0, "an unauthorised registration did nothing");
}

/// The private key is never in a response, the database in clear, or any
/// log line at any level; nor is an access token.
#[tokio::test]
async fn no_secret_reaches_a_response_or_a_log_line() {
    let stack = Stack::start().await;
    let registered = stack.connect().await;
    // A failed registration, a refused paste and a token request all log.
    let other = sfsim::keygen::generate("other").expect("key");
    let _ = stack.register(stack.registration(&other.private_key_pkcs1_pem), None).await;
    let encrypted = sfsim::keygen::encrypt_pkcs8_pem(&stack.org.keys.private_key_pem, "pw").expect("encrypt");
    let _ = stack.register(stack.registration(&encrypted), None).await;
    let (_broker, client) = common::amqp_client(&stack);
    let reply = stack.token_request(&client, TENANT, None).await;
    let token = reply["access_token"].as_str().expect("token").to_owned();
    let users = stack.call(reqwest::Method::GET, &format!("/v1/tenants/{TENANT}/salesforce/users"), None, None).await;
    assert_eq!(users.status, 200, "{}", users.body);

    let logs = stack.logs();
    assert!(logs.contains("TRACE") || logs.contains("\"level\":\"TRACE\""), "logging at trace level");
    assert!(logs.contains("registering a Salesforce connection"), "the registration is logged");
    for pem in [
        &stack.org.keys.private_key_pem,
        &stack.org.keys.private_key_pkcs1_pem,
        &other.private_key_pem,
        &other.private_key_pkcs1_pem,
    ] {
        for line in key_lines(pem) {
            assert!(!logs.contains(&line), "a line of a private key is in the logs");
            assert!(!registered.to_string().contains(&line));
        }
    }
    assert!(!logs.contains(&token), "the access token is in the logs");
    assert!(!logs.contains(ADMIN_TOKEN), "the admin token is in the logs");
    let sealed =
        stack.call(reqwest::Method::GET, &format!("/v1/tenants/{TENANT}/salesforce/connection"), None, None).await;
    assert!(!sealed.body.to_string().contains(&token));
}
