//! A ready-made connected org, as an admin leaves it after following the
//! setup guide: a connected app with the uploaded certificate, an
//! integration user pre-authorised for it, and the key pair.

use std::sync::Arc;

use crate::{
    keygen::{self, KeyPair},
    store::{Locale, NewUser, Org, Sim},
};

/// What the admin would paste into Front Agent, and the org behind it.
pub struct ConnectedOrg {
    /// The org.
    pub org: Arc<Org>,
    /// コンシューマー鍵.
    pub consumer_key: String,
    /// The integration user's username.
    pub username: String,
    /// The integration user's id.
    pub user_id: String,
    /// server.key and server.crt.
    pub keys: KeyPair,
}

/// Creates an org named `name` with its app and integration user.
pub fn connected_org(sim: &Sim, name: &str) -> anyhow::Result<ConnectedOrg> {
    connected_org_with(sim, name, Locale::JaJp, None)
}

/// Like [`connected_org`] with the locale and the daily API allowance.
pub fn connected_org_with(
    sim: &Sim,
    name: &str,
    locale: Locale,
    daily_limit: Option<u64>,
) -> anyhow::Result<ConnectedOrg> {
    let keys = keygen::generate(name)?;
    let org = sim.create_org(name, locale, false, daily_limit);
    let consumer_key = sim.create_app(&org, None, keys.certificate_pem.clone());
    let slug: String = name.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_lowercase();
    let username = format!("integration@{slug}-{}.example.com", &org.id[10..15].to_lowercase());
    let user = NewUser {
        username: username.clone(),
        first_name: Some("連携".to_owned()),
        last_name: "ユーザー".to_owned(),
        email: Some(format!("admin@{slug}.example.com")),
        active: true,
        user_type: "Standard".to_owned(),
    };
    let user_id = sim.create_user(&org, &user).map_err(anyhow::Error::msg)?;
    sim.approve(&consumer_key, &user_id, true);
    Ok(ConnectedOrg { org, consumer_key, username, user_id, keys })
}
