//! The CRM user list and user links (docs/behaviour.md §2), and what
//! disconnecting takes away.

mod common;

use common::{Stack, TENANT};
use reqwest::Method;
use serde_json::json;
use sfsim::store::NewUser;

fn user(username: &str, last: &str, first: &str, active: bool, user_type: &str) -> NewUser {
    NewUser {
        username: username.into(),
        first_name: Some(first.into()),
        last_name: last.into(),
        email: Some(format!("mail-{username}")),
        active,
        user_type: user_type.into(),
    }
}

#[tokio::test]
async fn the_user_list_shows_the_orgs_active_people_and_links_only_to_them() {
    let stack = Stack::start().await;
    stack.connect().await;
    let sim = &stack.sfsim.sim;
    let org = &stack.org.org;
    let sato = sim.create_user(org, &user("sato@acme.example.com", "佐藤", "花子", true, "Standard")).expect("user");
    let gone = sim.create_user(org, &user("gone@acme.example.com", "退職", "済", false, "Standard")).expect("user");
    let _portal = sim.create_user(org, &user("portal@acme.example.com", "ポータル", "顧客", true, "PowerPartner"));

    let users = stack.call(Method::GET, &format!("/v1/tenants/{TENANT}/salesforce/users"), None, None).await;
    assert_eq!(users.status, 200, "{}", users.body);
    let list = users.body["users"].as_array().expect("users");
    let ids: Vec<&str> = list.iter().filter_map(|u| u["id"].as_str()).collect();
    assert!(ids.contains(&sato.as_str()) && ids.contains(&stack.org.user_id.as_str()), "{ids:?}");
    assert!(!ids.contains(&gone.as_str()), "inactive users are not offered");
    assert_eq!(list.len(), 2, "portal users are not offered: {list:?}");
    let sato_row = list.iter().find(|u| u["id"] == sato.as_str()).expect("sato");
    assert_eq!(sato_row["username"], "sato@acme.example.com");
    assert_eq!(sato_row["email"], "mail-sato@acme.example.com");
    assert_eq!(sato_row["active"], true);
    let names: Vec<&str> = list.iter().filter_map(|u| u["name"].as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "ordered by name");

    let link = |user: &'static str, salesforce: String| {
        let stack = &stack;
        async move {
            stack
                .call(
                    Method::PUT,
                    &format!("/v1/tenants/{TENANT}/user-links/{user}"),
                    Some(json!({ "salesforce_user_id": salesforce })),
                    Some("ja"),
                )
                .await
        }
    };
    let linked = link("fa-user-1", sato.clone()).await;
    assert_eq!(linked.status, 200, "{}", linked.body);
    assert_eq!(linked.body["user_id"], "fa-user-1");
    assert_eq!(linked.body["salesforce_user_id"], sato.as_str());
    assert!(linked.body["salesforce_user_name"].as_str().is_some_and(|n| n.contains("佐藤")));

    let inactive = link("fa-user-2", gone.clone()).await;
    assert_eq!(inactive.status, 422, "{}", inactive.body);
    assert_eq!(inactive.body["code"], "inactive_salesforce_user");
    let unknown = link("fa-user-2", "005000000000000AAA".to_owned()).await;
    assert_eq!(unknown.status, 422, "{}", unknown.body);
    assert_eq!(unknown.body["code"], "unknown_salesforce_user");
    let malformed = link("fa-user-2", "001000000000000".to_owned()).await;
    assert_eq!(malformed.status, 400, "{}", malformed.body);
    assert_eq!(malformed.body["code"], "invalid_request");

    let links = stack.call(Method::GET, &format!("/v1/tenants/{TENANT}/user-links"), None, None).await;
    assert_eq!(links.status, 200);
    assert_eq!(links.body["links"].as_array().map(Vec::len), Some(1), "{}", links.body);

    let removed = stack.call(Method::DELETE, &format!("/v1/tenants/{TENANT}/user-links/fa-user-1"), None, None).await;
    assert_eq!(removed.status, 204);
    let again = stack.call(Method::DELETE, &format!("/v1/tenants/{TENANT}/user-links/fa-user-1"), None, None).await;
    assert_eq!(again.status, 404);
    assert_eq!(again.body["code"], "not_linked");
}

async fn link_count(stack: &Stack) -> Option<usize> {
    let path = format!("/v1/tenants/{TENANT}/user-links");
    stack.call(Method::GET, &path, None, None).await.body["links"].as_array().map(Vec::len)
}

#[tokio::test]
async fn re_registering_keeps_links_for_the_same_org_and_drops_them_for_another() {
    let stack = Stack::start().await;
    stack.connect().await;
    let linked = stack
        .call(
            Method::PUT,
            &format!("/v1/tenants/{TENANT}/user-links/fa-user-1"),
            Some(json!({ "salesforce_user_id": stack.org.user_id })),
            None,
        )
        .await;
    assert_eq!(linked.status, 200, "{}", linked.body);

    stack.connect().await;
    assert_eq!(link_count(&stack).await, Some(1), "same org: the link stays");

    let other = sfsim::fixture::connected_org(&stack.sfsim.sim, "Other").expect("org");
    let body = json!({
        "consumer_key": other.consumer_key, "username": other.username, "private_key": other.keys.private_key_pem,
        "login_url": stack.sfsim.url, "objects": ["Account"],
    });
    let answer = stack.register(body, None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["organization_id"], other.org.id.as_str());
    assert_eq!(link_count(&stack).await, Some(0), "another org: links are dropped");
}

#[tokio::test]
async fn disconnecting_removes_the_key_the_links_and_the_cached_token() {
    let stack = Stack::start().await;
    stack.connect().await;
    let linked = stack
        .call(
            Method::PUT,
            &format!("/v1/tenants/{TENANT}/user-links/fa-user-1"),
            Some(json!({ "salesforce_user_id": stack.org.user_id })),
            None,
        )
        .await;
    assert_eq!(linked.status, 200);
    let (_broker, client) = common::amqp_client(&stack);
    assert_eq!(stack.token_request(&client, TENANT, None).await["result"], "token");

    let path = format!("/v1/tenants/{TENANT}/salesforce/connection");
    assert_eq!(stack.call(Method::DELETE, &path, None, None).await.status, 204);
    let gone = stack.call(Method::GET, &path, None, Some("ja")).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.body["code"], "not_connected");
    assert!(gone.body["detail"].as_str().is_some_and(|d| d.contains("接続されていません")), "{}", gone.body);
    assert_eq!(stack.call(Method::DELETE, &path, None, None).await.status, 404);
    let token = stack.token_request(&client, TENANT, None).await;
    assert_eq!(token["code"], "not_connected", "no cached token survives: {token}");
    for path in [format!("/v1/tenants/{TENANT}/user-links"), format!("/v1/tenants/{TENANT}/salesforce/users")] {
        let answer = stack.call(Method::GET, &path, None, None).await;
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(answer.body["code"], "not_connected");
    }
    let pool = stack.db.pool().await.expect("pool");
    let rows: (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM connections), (SELECT count(*) FROM user_links)")
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!(rows, (0, 0), "no key and no link left");
}
