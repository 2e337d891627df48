//! The JWT bearer flow and sessions over HTTP, with Salesforce's bodies.

mod common;

use common::{LOGIN_AUD, assertion, env};
use serde_json::json;

#[tokio::test]
async fn a_valid_assertion_gets_salesforces_exact_success_body() {
    let env = env().await;
    let a = assertion(&env.org.consumer_key, &env.org.username, LOGIN_AUD, &env.org.keys.private_key_pem, 180);
    let answer = env.token_request(&a).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.body.as_object().expect("object");
    let mut keys: Vec<_> = body.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["access_token", "id", "instance_url", "scope", "token_type"]);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["instance_url"], env.server.url.as_str());
    let id = body["id"].as_str().expect("id");
    assert!(id.ends_with(&format!("/id/{}/{}", env.org.org.id, env.org.user_id)), "{id}");
    assert!(body["access_token"].as_str().expect("token").starts_with(&env.org.org.id[..15]));
    // The PKCS#1 form of the same key signs just as well.
    let a = assertion(&env.org.consumer_key, &env.org.username, LOGIN_AUD, &env.org.keys.private_key_pkcs1_pem, 180);
    assert_eq!(env.token_request(&a).await.status, 200);
}

#[tokio::test]
async fn each_login_mistake_gets_salesforces_error() {
    let env = env().await;
    let other = sfsim::keygen::generate("other").expect("key");
    let org = &env.org;
    let not_approved = env.server.sim.create_user(
        &org.org,
        &sfsim::store::NewUser {
            username: "sales@acme.example.com".into(),
            first_name: None,
            last_name: "営業".into(),
            email: None,
            active: true,
            user_type: "Standard".into(),
        },
    );
    let not_approved = not_approved.expect("user");
    let _ = not_approved;
    let cases = [
        (
            assertion("3MVG9unknown", &org.username, LOGIN_AUD, &org.keys.private_key_pem, 180),
            "invalid_client_id",
            "client identifier invalid",
        ),
        (
            assertion(&org.consumer_key, &org.username, LOGIN_AUD, &other.private_key_pem, 180),
            "invalid_grant",
            "invalid assertion",
        ),
        (
            assertion(&org.consumer_key, &org.username, "https://test.salesforce.com", &org.keys.private_key_pem, 180),
            "invalid_grant",
            "audience is invalid",
        ),
        (
            assertion(&org.consumer_key, "sales@acme.example.com", LOGIN_AUD, &org.keys.private_key_pem, 180),
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
        (
            assertion(&org.consumer_key, "nobody@acme.example.com", LOGIN_AUD, &org.keys.private_key_pem, 180),
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
        ("not-a-jwt".to_owned(), "invalid_grant", "invalid assertion"),
    ];
    for (a, error, description) in cases {
        let answer = env.token_request(&a).await;
        assert_eq!(answer.status, 400, "{error}: {}", answer.body);
        assert_eq!(answer.body, json!({ "error": error, "error_description": description }));
    }
    let expired = assertion(&org.consumer_key, &org.username, LOGIN_AUD, &org.keys.private_key_pem, -600);
    let answer = env.token_request(&expired).await;
    assert_eq!((answer.status, answer.body["error"].as_str()), (400, Some("invalid_grant")), "{}", answer.body);
}

#[tokio::test]
async fn an_expired_or_revoked_session_answers_401_invalid_session_id() {
    let env = env().await;
    let token = env.login().await;
    assert_eq!(env.query(&token, "SELECT Id FROM Lead").await.status, 200);
    // Two hours and a minute without a call.
    env.server.sim.age_sessions(&env.org.org.id, std::time::Duration::from_secs(2 * 3600 + 60));
    let answer = env.query(&token, "SELECT Id FROM Lead").await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body, json!([{ "message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID" }]));
    assert_eq!(answer.headers.get("www-authenticate").and_then(|v| v.to_str().ok()), Some("Token"));

    let token = env.login().await;
    assert_eq!(env.query(&token, "SELECT Id FROM Lead").await.status, 200);
    let revoked = env.control(reqwest::Method::POST, "/sessions/revoke", &json!({})).await;
    assert_eq!(revoked.body["revoked"], 2);
    assert_eq!(env.query(&token, "SELECT Id FROM Lead").await.status, 401);
    assert_eq!(env.query("garbage", "SELECT Id FROM Lead").await.status, 401);
}

#[tokio::test]
async fn a_revoked_access_token_opens_nothing_and_a_second_revocation_says_invalid_token() {
    let env = env().await;
    let token = env.login().await;
    let other = env.login().await;
    let url = format!("{}/services/oauth2/revoke", env.server.url);
    let revoke = |token: String| {
        let url = url.clone();
        async move {
            let response =
                reqwest::Client::new().post(url).form(&[("token", token)]).send().await.expect("sfsim answers");
            let status = response.status().as_u16();
            (status, response.text().await.expect("body"))
        }
    };
    assert_eq!(revoke(token.clone()).await, (200, String::new()));
    assert_eq!(env.query(&token, "SELECT Id FROM Lead").await.status, 401);
    assert_eq!(env.query(&other, "SELECT Id FROM Lead").await.status, 200, "only that session ends");
    let (status, body) = revoke(token).await;
    assert_eq!(status, 400);
    let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body["error"], "invalid_token");
}

#[tokio::test]
async fn a_session_of_one_org_never_sees_another_orgs_data() {
    let env = env().await;
    let other = sfsim::fixture::connected_org(&env.server.sim, "Other").expect("org");
    env.seed("Lead", json!([{ "LastName": "鈴木", "Company": "Acme" }])).await;
    let theirs = env.login_as(&other).await;
    let answer = env.query(&theirs, "SELECT Id, LastName FROM Lead").await;
    assert_eq!(answer.body["totalSize"], 0, "{}", answer.body);
    let mine = env.login().await;
    assert_eq!(env.query(&mine, "SELECT Id FROM Lead").await.body["totalSize"], 1);
    let id = env.query(&mine, "SELECT Id FROM Lead").await.body["records"][0]["Id"].as_str().expect("id").to_owned();
    assert_eq!(env.get(&theirs, &format!("/sobjects/Lead/{id}")).await.status, 404);
}
