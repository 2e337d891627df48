//! A connection request as the admin sends it (admin-api.yaml, the admin API contract
//! outside this repository,
//! `PUT /v1/tenants/{tenant_id}/salesforce/connection`), checked field by
//! field before anything is sent to Salesforce. [`Refusal`] says what is
//! wrong; its words for the admin are [`crate::hints::registration_hint`].

use fa_messages::SObject;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use crate::{
    login_url::{self, Allowlist, DEFAULT_LOGIN_URL},
    private_key::{KeyRefusal, RsaPrivateKey},
};

/// The body as sent.
#[derive(Deserialize)]
struct ConnectionRequest {
    consumer_key: String,
    username: String,
    private_key: SecretString,
    #[serde(default)]
    login_url: Option<String>,
    objects: Vec<String>,
}

impl std::fmt::Debug for ConnectionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionRequest").field("username", &self.username).finish_non_exhaustive()
    }
}

/// Why a connection request was refused before anything was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not JSON of the request's shape (serde's words).
    Body(String),
    /// `consumer_key` empty or over 512 characters.
    ConsumerKey,
    /// `username` not 3 to 255 characters without spaces.
    Username,
    /// `private_key` empty or over 20,000 characters.
    PrivateKeyLength,
    /// `objects` names something other than Lead, Contact and Account.
    UnknownObject(String),
    /// `objects` names an object twice.
    DuplicateObject(String),
    /// `objects` is empty.
    NoObjects,
    /// The login URL is not on the allowlist.
    LoginUrl {
        /// The URL as sent (or the default).
        url: String,
        /// Why.
        refusal: login_url::Refusal,
    },
    /// The pasted key is no usable key.
    Key(KeyRefusal),
}

/// A request whose fields passed every check but the key's, which costs a
/// signature ([`Fields::with_key`]).
pub struct Fields {
    consumer_key: String,
    username: String,
    /// The key as pasted.
    pub private_key: SecretString,
    login_url: String,
    objects: Vec<SObject>,
}

/// A registration that passed every local check.
pub struct Registration {
    /// The connected app's Consumer Key.
    pub consumer_key: String,
    /// The Salesforce username the tokens are for.
    pub username: String,
    /// The parsed key.
    pub key: RsaPrivateKey,
    /// The login URL, as the allowlist accepted it.
    pub login_url: String,
    /// The objects to import.
    pub objects: Vec<SObject>,
}

impl Fields {
    /// Reads `body` and checks its fields in the form's order: consumer key,
    /// username, the key's length, objects, login URL (absent or empty:
    /// [`DEFAULT_LOGIN_URL`]).
    pub fn read(body: &[u8], allowlist: &Allowlist) -> Result<Self, Refusal> {
        let request: ConnectionRequest = serde_json::from_slice(body).map_err(|e| Refusal::Body(e.to_string()))?;
        let consumer_key = request.consumer_key.trim().to_owned();
        if consumer_key.is_empty() || consumer_key.chars().count() > 512 {
            return Err(Refusal::ConsumerKey);
        }
        let username = request.username.trim().to_owned();
        if !(3..=255).contains(&username.chars().count()) || username.contains(char::is_whitespace) {
            return Err(Refusal::Username);
        }
        let key_length = request.private_key.expose_secret().chars().count();
        if key_length == 0 || key_length > 20_000 {
            return Err(Refusal::PrivateKeyLength);
        }
        let objects = objects(&request.objects)?;
        let url = request.login_url.as_deref().map(str::trim).filter(|u| !u.is_empty()).unwrap_or(DEFAULT_LOGIN_URL);
        let login_url = allowlist.check(url).map_err(|refusal| Refusal::LoginUrl { url: url.to_owned(), refusal })?;
        Ok(Self {
            consumer_key,
            username,
            private_key: request.private_key,
            login_url: login_url.as_str().to_owned(),
            objects,
        })
    }

    /// The registration, with the key parsed from [`Self::private_key`].
    pub fn with_key(self, key: RsaPrivateKey) -> Registration {
        let Self { consumer_key, username, private_key: _, login_url, objects } = self;
        Registration { consumer_key, username, key, login_url, objects }
    }
}

/// Each named object once, at least one.
fn objects(names: &[String]) -> Result<Vec<SObject>, Refusal> {
    let mut objects = Vec::new();
    for name in names {
        let object: SObject = name.parse().map_err(|_| Refusal::UnknownObject(name.clone()))?;
        if objects.contains(&object) {
            return Err(Refusal::DuplicateObject(name.clone()));
        }
        objects.push(object);
    }
    if objects.is_empty() {
        return Err(Refusal::NoObjects);
    }
    Ok(objects)
}
