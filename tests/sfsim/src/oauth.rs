//! OAuth 2.0 JWT bearer flow: `POST /services/oauth2/token` with
//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`.
//!
//! [`exchange`] checks a token request's form fields as Salesforce does and answers with the
//! `error` / `error_description` pairs Salesforce sends (docs/salesforce-facts.md §1). The
//! HTTP route turns an [`OAuthError`] into a 400 with [`OAuthError::body`], and a [`Grant`] into a
//! 200 with [`success_body`].
//!
//! Order of checks (the first failure wins):
//! 1. `grant_type` is the JWT bearer URN, else `unsupported_grant_type`.
//! 2. `assertion` is present and is a JWT (three base64url parts, a JSON header with
//!    `alg` = `RS256`, a JSON object of claims), else `invalid_grant` / `invalid assertion`.
//! 3. `iss` names a connected app, else `invalid_client_id`. This comes before the signature
//!    check because the app holds the certificate to check it with.
//! 4. The signature verifies with the public key of the app's uploaded certificate, else
//!    `invalid assertion` (the pasted key is not the one whose `server.crt` was uploaded).
//! 5. `aud` is one of the audiences this login host accepts, else `audience is invalid`.
//! 6. `exp` is present, not past, and at most [`MAX_EXP_AHEAD_SECS`] ahead, else
//!    `expired authorization code` (see [`OAuthError::EXPIRED`] for how sure that is).
//! 7. `prn` (or `sub` when there is no `prn`) names a user of the app's org, else
//!    `user hasn't approved this consumer`; the user is active, else `inactive_user`; the user is
//!    pre-authorised for the app, else `user hasn't approved this consumer` again. Activity comes
//!    before pre-authorisation because Salesforce authenticates the user before it looks at the
//!    connected app's policy **(inferred)**.

use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value, json};

/// The `grant_type` of the JWT bearer flow.
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How far in the future `exp` may be. The docs ask for an assertion valid "within 3 minutes";
/// two more minutes allow for clock skew between the client and us.
pub const MAX_EXP_AHEAD_SECS: i64 = 5 * 60;

/// What sfsim knows about connected apps and users, per org (implemented by the server's store).
pub trait Directory {
    /// The app whose consumer key is `consumer_key`, with its org and certificate.
    fn app(&self, consumer_key: &str) -> Option<AppInfo>;
    /// The user with this username (usernames are global across orgs, like Salesforce).
    fn user(&self, username: &str) -> Option<UserInfo>;
}

/// A connected app with "Use digital signatures" set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInfo {
    /// The org the app belongs to (`00D…`).
    pub org_id: String,
    /// The uploaded `server.crt` (`-----BEGIN CERTIFICATE-----`).
    pub certificate_pem: String,
    /// Users pre-authorised for the app (profile or permission set assigned, policy "Admin
    /// approved users are pre-authorized").
    pub approved_user_ids: Vec<String>,
}

/// A user, as the login looks it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// `005…`
    pub id: String,
    /// `00D…`
    pub org_id: String,
    pub active: bool,
}

/// Who the token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub org_id: String,
    pub user_id: String,
}

/// A token endpoint error, as Salesforce words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {error_description}")]
pub struct OAuthError {
    /// HTTP status; 400 for every error here.
    pub status: u16,
    pub error: &'static str,
    pub error_description: &'static str,
}

impl OAuthError {
    /// `grant_type` missing or not the JWT bearer URN. Not in docs/salesforce-facts.md §1's table:
    /// OAuth 2.0's standard error for it, as Salesforce answers it.
    pub const UNSUPPORTED_GRANT_TYPE: Self = Self::bad_request("unsupported_grant_type", "grant type not supported");
    /// Missing or malformed assertion, an algorithm other than RS256, or a signature the app's
    /// certificate does not verify.
    pub const INVALID_ASSERTION: Self = Self::bad_request("invalid_grant", "invalid assertion");
    /// `iss` is not the consumer key of a connected app.
    pub const INVALID_CLIENT_ID: Self = Self::bad_request("invalid_client_id", "client identifier invalid");
    /// `aud` is not an audience this login host accepts. (The help page's own example words it
    /// `Audience validation failed`; the observed wording is this one.)
    pub const AUDIENCE_INVALID: Self = Self::bad_request("invalid_grant", "audience is invalid");
    /// `exp` missing, past, or too far ahead. docs/salesforce-facts.md marks this wording **(unverified)**: a
    /// single report of it with JWT when `exp` is past or the clock skewed. It is the only wording
    /// the facts give for an `exp` problem, so sfsim uses it for all of them.
    pub const EXPIRED: Self = Self::bad_request("invalid_grant", "expired authorization code");
    /// The user is unknown, in another org than the app, or not pre-authorised for the app.
    pub const NOT_APPROVED: Self = Self::bad_request("invalid_grant", "user hasn't approved this consumer");
    /// The user is deactivated.
    pub const INACTIVE_USER: Self = Self::bad_request("inactive_user", "User is inactive");

    const fn bad_request(error: &'static str, error_description: &'static str) -> Self {
        Self { status: 400, error, error_description }
    }

    /// The response body: `{"error": …, "error_description": …}`.
    pub fn body(&self) -> Value {
        json!({"error": self.error, "error_description": self.error_description})
    }
}

/// Checks a token request's form fields as Salesforce does (see the module docs for the order).
///
/// `accepted_audiences` are the `aud` values this login host accepts, e.g.
/// `["https://login.salesforce.com"]` for a production host or `["https://test.salesforce.com"]`
/// for a sandbox one.
pub fn exchange(
    grant_type: Option<&str>,
    assertion: Option<&str>,
    accepted_audiences: &[&str],
    now: time::OffsetDateTime,
    directory: &dyn Directory,
) -> Result<Grant, OAuthError> {
    if grant_type != Some(JWT_BEARER_GRANT_TYPE) {
        return Err(OAuthError::UNSUPPORTED_GRANT_TYPE);
    }
    let assertion = assertion.filter(|a| !a.is_empty()).ok_or(OAuthError::INVALID_ASSERTION)?;
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| OAuthError::INVALID_ASSERTION)?;
    if header.alg != Algorithm::RS256 {
        return Err(OAuthError::INVALID_ASSERTION);
    }
    // Read before the signature is checked: `iss` says whose certificate checks it.
    let claims: Map<String, Value> =
        jsonwebtoken::dangerous::insecure_decode_claims(assertion).map_err(|_| OAuthError::INVALID_ASSERTION)?;

    let app = claims
        .get("iss")
        .and_then(Value::as_str)
        .and_then(|consumer_key| directory.app(consumer_key))
        .ok_or(OAuthError::INVALID_CLIENT_ID)?;

    if !signature_verifies(assertion, &app.certificate_pem) {
        return Err(OAuthError::INVALID_ASSERTION);
    }

    if !audience_accepted(claims.get("aud"), accepted_audiences) {
        return Err(OAuthError::AUDIENCE_INVALID);
    }

    let exp = claims.get("exp").and_then(numeric_date).ok_or(OAuthError::EXPIRED)?;
    let now = now.unix_timestamp();
    if exp <= now || exp > now.saturating_add(MAX_EXP_AHEAD_SECS) {
        return Err(OAuthError::EXPIRED);
    }

    // The legacy `prn` wins over `sub` when both are present.
    let username = ["prn", "sub"]
        .iter()
        .find_map(|name| claims.get(*name).filter(|v| !v.is_null()))
        .and_then(Value::as_str)
        .ok_or(OAuthError::NOT_APPROVED)?;
    let user = directory.user(username).filter(|user| user.org_id == app.org_id).ok_or(OAuthError::NOT_APPROVED)?;
    if !user.active {
        return Err(OAuthError::INACTIVE_USER);
    }
    if !app.approved_user_ids.contains(&user.id) {
        return Err(OAuthError::NOT_APPROVED);
    }

    Ok(Grant { org_id: app.org_id, user_id: user.id })
}

/// The 200 body: the 5 keys of simple-salesforce's fixture, with `"scope": "web api"`.
/// `instance_url` is used as given (no trailing slash expected).
pub fn success_body(access_token: &str, instance_url: &str, grant: &Grant) -> Value {
    json!({
        "access_token": access_token,
        "scope": "web api",
        "instance_url": instance_url,
        "id": format!("{instance_url}/id/{}/{}", grant.org_id, grant.user_id),
        "token_type": "Bearer",
    })
}

/// Whether the RS256 signature of `assertion` verifies with the RSA key of `certificate_pem`.
/// A certificate that cannot be read, or an RSA key under 2048 bits (aws-lc-rs verifies 2048 to
/// 8192 bits only), verifies nothing.
fn signature_verifies(assertion: &str, certificate_pem: &str) -> bool {
    let Some(key) = certificate_rsa_key(certificate_pem) else {
        return false;
    };
    let Some((message, signature)) = assertion.rsplit_once('.') else {
        return false;
    };
    // Only aws-lc-rs is compiled in; installing it explicitly guards against another backend
    // being switched on by feature unification (jsonwebtoken would then panic instead).
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key, Algorithm::RS256).unwrap_or(false)
}

/// The RSA public key (PKCS#1 `RSAPublicKey`) of an X.509 certificate PEM.
fn certificate_rsa_key(certificate_pem: &str) -> Option<DecodingKey> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(certificate_pem.trim().as_bytes()).ok()?;
    if pem.label != "CERTIFICATE" {
        return None;
    }
    let certificate = pem.parse_x509().ok()?;
    let spki = certificate.public_key();
    // rsaEncryption
    if spki.algorithm.algorithm.to_id_string() != "1.2.840.113549.1.1.1" {
        return None;
    }
    Some(DecodingKey::from_rsa_der(&spki.subject_public_key.data))
}

/// `aud` as a string, or as an array holding at least one accepted audience.
fn audience_accepted(aud: Option<&Value>, accepted: &[&str]) -> bool {
    let accepts = |v: &Value| v.as_str().is_some_and(|aud| accepted.contains(&aud));
    match aud {
        Some(Value::Array(values)) => values.iter().any(accepts),
        Some(value) => accepts(value),
        None => false,
    }
}

/// A NumericDate: a JSON number, or (as in the docs' example) a string of one.
fn numeric_date(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(whole_seconds)),
        Value::String(s) => s.parse::<i64>().ok().or_else(|| s.parse::<f64>().ok().and_then(whole_seconds)),
        _ => None,
    }
}

fn whole_seconds(secs: f64) -> Option<i64> {
    (secs.is_finite() && secs.abs() < 1e15).then(|| secs.floor() as i64)
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, sync::LazyLock};

    use jsonwebtoken::{EncodingKey, Header, encode};
    use time::OffsetDateTime;

    use super::*;
    use crate::keygen::{self, KeyPair};

    const CONSUMER_KEY: &str = "3MVG9consumerkey";
    const ORG: &str = "00D5g000000AbCdEAK";
    const OTHER_ORG: &str = "00D5g000000ZzZzEAK";
    const USER: &str = "0055g000001AbCdAAK";
    const LOGIN: &str = "https://login.salesforce.com";
    const TEST: &str = "https://test.salesforce.com";
    const NOW: i64 = 1_760_000_000;

    static UPLOADED: LazyLock<KeyPair> = LazyLock::new(|| keygen::generate("fa_jwt").expect("uploaded key"));
    static OTHER: LazyLock<KeyPair> = LazyLock::new(|| keygen::generate("other").expect("other key"));

    struct TestDirectory {
        apps: HashMap<String, AppInfo>,
        users: HashMap<String, UserInfo>,
    }

    impl Directory for TestDirectory {
        fn app(&self, consumer_key: &str) -> Option<AppInfo> {
            self.apps.get(consumer_key).cloned()
        }
        fn user(&self, username: &str) -> Option<UserInfo> {
            self.users.get(username).cloned()
        }
    }

    fn user(id: &str, org: &str, active: bool) -> UserInfo {
        UserInfo { id: id.into(), org_id: org.into(), active }
    }

    fn directory_with_cert(certificate_pem: &str) -> TestDirectory {
        TestDirectory {
            apps: HashMap::from([(
                CONSUMER_KEY.to_owned(),
                AppInfo {
                    org_id: ORG.into(),
                    certificate_pem: certificate_pem.into(),
                    approved_user_ids: vec![USER.into(), "005inactive".into(), "005elsewhere".into()],
                },
            )]),
            users: HashMap::from([
                ("integration@example.co.jp".to_owned(), user(USER, ORG, true)),
                ("unapproved@example.co.jp".to_owned(), user("005unapproved", ORG, true)),
                ("inactive@example.co.jp".to_owned(), user("005inactive", ORG, false)),
                ("inactive-unapproved@example.co.jp".to_owned(), user("005inactive2", ORG, false)),
                ("elsewhere@example.co.jp".to_owned(), user("005elsewhere", OTHER_ORG, true)),
            ]),
        }
    }

    fn directory() -> TestDirectory {
        directory_with_cert(&UPLOADED.certificate_pem)
    }

    fn claims() -> Value {
        json!({
            "iss": CONSUMER_KEY,
            "sub": "integration@example.co.jp",
            "aud": LOGIN,
            "exp": NOW + 180,
        })
    }

    fn sign_with(claims: &Value, key_pem: &str) -> String {
        let key = EncodingKey::from_rsa_pem(key_pem.as_bytes()).expect("encoding key");
        encode(&Header::new(Algorithm::RS256), claims, &key).expect("encode")
    }

    fn sign(claims: &Value) -> String {
        sign_with(claims, &UPLOADED.private_key_pem)
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(NOW).expect("timestamp")
    }

    fn run(assertion: &str) -> Result<Grant, OAuthError> {
        exchange(Some(JWT_BEARER_GRANT_TYPE), Some(assertion), &[LOGIN], now(), &directory())
    }

    fn with(mut claims: Value, name: &str, value: Value) -> Value {
        claims[name] = value;
        claims
    }

    fn without(mut claims: Value, name: &str) -> Value {
        claims.as_object_mut().expect("object").remove(name).expect("claim present");
        claims
    }

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn expected_grant() -> Grant {
        Grant { org_id: ORG.into(), user_id: USER.into() }
    }

    #[test]
    fn valid_assertion_is_granted() {
        assert_eq!(run(&sign(&claims())), Ok(expected_grant()));
    }

    #[test]
    fn pkcs1_and_pkcs8_keys_both_sign() {
        for key in [&UPLOADED.private_key_pem, &UPLOADED.private_key_pkcs1_pem] {
            assert_eq!(run(&sign_with(&claims(), key)), Ok(expected_grant()));
        }
    }

    #[test]
    fn accepted_claim_variants() {
        let cases: Vec<(&str, Value)> = vec![
            ("exp as a numeric string", with(claims(), "exp", json!((NOW + 180).to_string()))),
            ("exp as a float", with(claims(), "exp", json!(NOW as f64 + 60.5))),
            ("exp at the far edge", with(claims(), "exp", json!(NOW + 300))),
            ("prn instead of sub", with(without(claims(), "sub"), "prn", json!("integration@example.co.jp"))),
            (
                "prn wins over sub",
                with(with(claims(), "sub", json!("nobody@example.co.jp")), "prn", json!("integration@example.co.jp")),
            ),
            ("aud as an array", with(claims(), "aud", json!(["https://elsewhere", LOGIN]))),
            ("extra claims ignored", with(claims(), "jti", json!("abc"))),
        ];
        for (name, claims) in cases {
            assert_eq!(run(&sign(&claims)), Ok(expected_grant()), "{name}");
        }
    }

    #[test]
    fn sandbox_audience_where_accepted() {
        let claims = with(claims(), "aud", json!(TEST));
        let assertion = sign(&claims);
        assert_eq!(
            exchange(Some(JWT_BEARER_GRANT_TYPE), Some(&assertion), &[LOGIN, TEST], now(), &directory(),),
            Ok(expected_grant())
        );
        assert_eq!(run(&assertion), Err(OAuthError::AUDIENCE_INVALID));
    }

    #[test]
    fn grant_type_errors() {
        let assertion = sign(&claims());
        for grant_type in [
            None,
            Some(""),
            Some("password"),
            Some("authorization_code"),
            Some("urn:ietf:params:oauth:grant-type:jwt-bearer "),
        ] {
            assert_eq!(
                exchange(grant_type, Some(&assertion), &[LOGIN], now(), &directory()),
                Err(OAuthError::UNSUPPORTED_GRANT_TYPE),
                "{grant_type:?}"
            );
        }
        // The grant type is checked before the assertion.
        assert_eq!(
            exchange(Some("password"), None, &[LOGIN], now(), &directory()),
            Err(OAuthError::UNSUPPORTED_GRANT_TYPE)
        );
    }

    #[test]
    fn malformed_assertions_are_invalid() {
        let good = sign(&claims());
        let (header, rest) = good.split_once('.').expect("header");
        let (payload, signature) = rest.split_once('.').expect("payload");
        let hs256_header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
        let rs512_header = b64(br#"{"alg":"RS512"}"#);
        let none_header = b64(br#"{"alg":"none"}"#);
        let cases: Vec<(&str, Option<String>)> = vec![
            ("missing", None),
            ("empty", Some(String::new())),
            ("not a JWT", Some("hello".into())),
            ("two parts", Some(format!("{header}.{payload}"))),
            ("bad base64 header", Some(format!("!!!.{payload}.{signature}"))),
            ("header not JSON", Some(format!("{}.{payload}.{signature}", b64(b"{")))),
            ("HS256", Some(format!("{hs256_header}.{payload}.{signature}"))),
            ("RS512", Some(format!("{rs512_header}.{payload}.{signature}"))),
            ("alg none", Some(format!("{none_header}.{payload}."))),
            ("claims not an object", Some(format!("{header}.{}.{signature}", b64(b"[1,2]")))),
            ("claims not JSON", Some(format!("{header}.{}.{signature}", b64(b"iss=")))),
            ("signature stripped", Some(format!("{header}.{payload}."))),
            ("signature tampered", Some(format!("{header}.{payload}.{}", b64(&[7u8; 256])))),
            (
                "payload tampered",
                Some(format!(
                    "{header}.{}.{signature}",
                    b64(with(claims(), "sub", json!("unapproved@example.co.jp")).to_string().as_bytes())
                )),
            ),
        ];
        for (name, assertion) in cases {
            let result = exchange(Some(JWT_BEARER_GRANT_TYPE), assertion.as_deref(), &[LOGIN], now(), &directory());
            assert_eq!(result, Err(OAuthError::INVALID_ASSERTION), "{name}");
        }
    }

    #[test]
    fn claim_errors() {
        let cases: Vec<(&str, Value, OAuthError)> = vec![
            ("unknown iss", with(claims(), "iss", json!("3MVG9other")), OAuthError::INVALID_CLIENT_ID),
            ("missing iss", without(claims(), "iss"), OAuthError::INVALID_CLIENT_ID),
            ("wrong aud", with(claims(), "aud", json!(TEST)), OAuthError::AUDIENCE_INVALID),
            (
                "My Domain aud",
                with(claims(), "aud", json!("https://acme.my.salesforce.com")),
                OAuthError::AUDIENCE_INVALID,
            ),
            (
                "aud with trailing slash",
                with(claims(), "aud", json!("https://login.salesforce.com/")),
                OAuthError::AUDIENCE_INVALID,
            ),
            ("missing aud", without(claims(), "aud"), OAuthError::AUDIENCE_INVALID),
            ("missing exp", without(claims(), "exp"), OAuthError::EXPIRED),
            ("past exp", with(claims(), "exp", json!(NOW - 60)), OAuthError::EXPIRED),
            ("exp now", with(claims(), "exp", json!(NOW)), OAuthError::EXPIRED),
            ("exp too far ahead", with(claims(), "exp", json!(NOW + 301)), OAuthError::EXPIRED),
            (
                "exp an hour ahead as a string",
                with(claims(), "exp", json!((NOW + 3600).to_string())),
                OAuthError::EXPIRED,
            ),
            ("exp not a number", with(claims(), "exp", json!("soon")), OAuthError::EXPIRED),
            ("unknown sub", with(claims(), "sub", json!("nobody@example.co.jp")), OAuthError::NOT_APPROVED),
            ("missing sub", without(claims(), "sub"), OAuthError::NOT_APPROVED),
            ("sub in another org", with(claims(), "sub", json!("elsewhere@example.co.jp")), OAuthError::NOT_APPROVED),
            (
                "sub not pre-approved",
                with(claims(), "sub", json!("unapproved@example.co.jp")),
                OAuthError::NOT_APPROVED,
            ),
            (
                "prn wins over a good sub",
                with(claims(), "prn", json!("unapproved@example.co.jp")),
                OAuthError::NOT_APPROVED,
            ),
            ("inactive user", with(claims(), "sub", json!("inactive@example.co.jp")), OAuthError::INACTIVE_USER),
            (
                "inactive and not approved",
                with(claims(), "sub", json!("inactive-unapproved@example.co.jp")),
                OAuthError::INACTIVE_USER,
            ),
            // Order: iss, then signature, then aud, exp, sub.
            (
                "unknown iss beats bad aud",
                with(with(claims(), "iss", json!("3MVG9other")), "aud", json!(TEST)),
                OAuthError::INVALID_CLIENT_ID,
            ),
            (
                "bad aud beats past exp",
                with(with(claims(), "aud", json!(TEST)), "exp", json!(NOW - 60)),
                OAuthError::AUDIENCE_INVALID,
            ),
            (
                "past exp beats unknown sub",
                with(with(claims(), "exp", json!(NOW - 60)), "sub", json!("nobody@example.co.jp")),
                OAuthError::EXPIRED,
            ),
        ];
        for (name, claims, expected) in cases {
            assert_eq!(run(&sign(&claims)), Err(expected), "{name}");
        }
    }

    #[test]
    fn key_whose_cert_was_not_uploaded_is_invalid_assertion() {
        for key in [&OTHER.private_key_pem, &OTHER.private_key_pkcs1_pem] {
            assert_eq!(run(&sign_with(&claims(), key)), Err(OAuthError::INVALID_ASSERTION));
        }
        // The signature is checked before aud, exp and sub.
        let bad_everything = with(with(claims(), "aud", json!(TEST)), "sub", json!("nobody@example.co.jp"));
        assert_eq!(run(&sign_with(&bad_everything, &OTHER.private_key_pem)), Err(OAuthError::INVALID_ASSERTION));
        // ...but after iss.
        assert_eq!(
            run(&sign_with(&with(claims(), "iss", json!("3MVG9other")), &OTHER.private_key_pem)),
            Err(OAuthError::INVALID_CLIENT_ID)
        );
    }

    #[test]
    fn unreadable_or_non_rsa_certificate_is_invalid_assertion() {
        for certificate in [String::new(), "not a certificate".to_owned(), UPLOADED.private_key_pem.clone()] {
            let result = exchange(
                Some(JWT_BEARER_GRANT_TYPE),
                Some(&sign(&claims())),
                &[LOGIN],
                now(),
                &directory_with_cert(&certificate),
            );
            assert_eq!(result, Err(OAuthError::INVALID_ASSERTION));
        }
    }

    #[test]
    fn rsa_1024_is_not_verified() {
        // aws-lc-rs neither loads (so jsonwebtoken cannot sign with) nor verifies keys under
        // 2048 bits; sign by hand with the `rsa` crate.
        use rsa::{pkcs8::DecodePrivateKey, sha2::Sha256};
        let small = keygen::generate_with_bits("small", 1024).expect("1024-bit key");
        let message = format!("{}.{}", b64(br#"{"alg":"RS256"}"#), b64(claims().to_string().as_bytes()));
        let key = rsa::PrivateKey::from_pkcs8_pem(&small.private_key_pem).expect("key");
        let signature = key.pkcs1v15_sign::<Sha256>(message.as_bytes()).expect("sign");
        let assertion = format!("{message}.{}", b64(&signature));
        let result = exchange(
            Some(JWT_BEARER_GRANT_TYPE),
            Some(&assertion),
            &[LOGIN],
            now(),
            &directory_with_cert(&small.certificate_pem),
        );
        assert_eq!(result, Err(OAuthError::INVALID_ASSERTION));
    }

    #[test]
    fn error_bodies_are_exact() {
        let cases = [
            (
                OAuthError::UNSUPPORTED_GRANT_TYPE,
                r#"{"error":"unsupported_grant_type","error_description":"grant type not supported"}"#,
            ),
            (OAuthError::INVALID_ASSERTION, r#"{"error":"invalid_grant","error_description":"invalid assertion"}"#),
            (
                OAuthError::INVALID_CLIENT_ID,
                r#"{"error":"invalid_client_id","error_description":"client identifier invalid"}"#,
            ),
            (OAuthError::AUDIENCE_INVALID, r#"{"error":"invalid_grant","error_description":"audience is invalid"}"#),
            (OAuthError::EXPIRED, r#"{"error":"invalid_grant","error_description":"expired authorization code"}"#),
            (
                OAuthError::NOT_APPROVED,
                r#"{"error":"invalid_grant","error_description":"user hasn't approved this consumer"}"#,
            ),
            (OAuthError::INACTIVE_USER, r#"{"error":"inactive_user","error_description":"User is inactive"}"#),
        ];
        for (error, body) in cases {
            assert_eq!(error.status, 400);
            let expected: Value = serde_json::from_str(body).expect("JSON");
            assert_eq!(error.body(), expected);
        }
    }

    #[test]
    fn success_body_is_exact() {
        let body = success_body("00D5g000000AbCd!AQ4AQtoken", "https://acme.my.salesforce.com", &expected_grant());
        assert_eq!(
            body,
            json!({
                "access_token": "00D5g000000AbCd!AQ4AQtoken",
                "scope": "web api",
                "instance_url": "https://acme.my.salesforce.com",
                "id": "https://acme.my.salesforce.com/id/00D5g000000AbCdEAK/0055g000001AbCdAAK",
                "token_type": "Bearer",
            })
        );
    }
}
