//! What every sfsim HTTP test needs: a server on port 0, a connected org,
//! a JWT login like a connector's, and a small REST client.

#![allow(dead_code)]

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sfsim::{fixture::ConnectedOrg, server::Server};

pub const V: &str = "v61.0";
pub const LOGIN_AUD: &str = "https://login.salesforce.com";

pub struct Env {
    pub server: Server,
    pub org: ConnectedOrg,
    pub http: reqwest::Client,
}

pub async fn env() -> Env {
    let server = Server::start_local().await.expect("sfsim starts");
    let org = sfsim::fixture::connected_org(&server.sim, "Acme").expect("org");
    Env { server, org, http: reqwest::Client::new() }
}

/// A signed assertion as a connector makes it.
pub fn assertion(iss: &str, sub: &str, aud: &str, key_pem: &str, exp_in_secs: i64) -> String {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + exp_in_secs;
    let claims = json!({ "iss": iss, "sub": sub, "aud": aud, "exp": exp });
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(key_pem.as_bytes()).expect("key"),
    )
    .expect("sign")
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    Answer { status, headers, body }
}

impl Env {
    pub async fn token_request(&self, assertion: &str) -> Answer {
        let form = [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion)];
        answer(
            self.http
                .post(format!("{}/services/oauth2/token", self.server.url))
                .form(&form)
                .send()
                .await
                .expect("send"),
        )
        .await
    }

    /// Logs in as the org's integration user; returns the access token.
    pub async fn login(&self) -> String {
        self.login_as(&self.org).await
    }

    pub async fn login_as(&self, org: &ConnectedOrg) -> String {
        let a = assertion(&org.consumer_key, &org.username, LOGIN_AUD, &org.keys.private_key_pem, 180);
        let answer = self.token_request(&a).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body["access_token"].as_str().expect("token").to_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/services/data/{V}{path}", self.server.url)
    }

    pub async fn get(&self, token: &str, path: &str) -> Answer {
        answer(self.http.get(self.url(path)).bearer_auth(token).send().await.expect("send")).await
    }

    pub async fn get_with(&self, token: &str, path: &str, header: (&str, &str)) -> Answer {
        answer(self.http.get(self.url(path)).bearer_auth(token).header(header.0, header.1).send().await.expect("send"))
            .await
    }

    pub async fn query(&self, token: &str, soql: &str) -> Answer {
        answer(self.http.get(self.url("/query")).query(&[("q", soql)]).bearer_auth(token).send().await.expect("send"))
            .await
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> Answer {
        answer(self.http.post(self.url(path)).bearer_auth(token).json(body).send().await.expect("send")).await
    }

    pub async fn patch(&self, token: &str, path: &str, body: &Value) -> Answer {
        answer(self.http.patch(self.url(path)).bearer_auth(token).json(body).send().await.expect("send")).await
    }

    pub async fn control(&self, method: reqwest::Method, path: &str, body: &Value) -> Answer {
        let url = format!("{}/sfsim/orgs/{}{path}", self.server.url, self.org.org.id);
        answer(self.http.request(method, url).json(body).send().await.expect("send")).await
    }

    pub async fn seed(&self, object: &str, records: Value) -> Vec<String> {
        let a = self.control(reqwest::Method::POST, &format!("/records/{object}"), &records).await;
        assert_eq!(a.status, 201, "{}", a.body);
        a.body["ids"].as_array().expect("ids").iter().map(|v| v.as_str().expect("id").to_owned()).collect()
    }
}
