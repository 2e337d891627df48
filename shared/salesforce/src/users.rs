//! The org's users, as the token-broker lists them for an admin to map
//! Front Agent agents to Salesforce users (docs/salesforce-facts.md §6).

use serde::Deserialize;

use crate::{client::Client, error::Error, soql};

/// The users people work as: active and `Standard` (no portal, community,
/// guest or automated users), by name.
pub const ACTIVE_USERS_SOQL: &str = "SELECT Id, Name, Username, Email, IsActive FROM User WHERE IsActive = true AND UserType = 'Standard' ORDER BY Name";

/// A Salesforce user.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    /// `005…`, 18 characters.
    #[serde(rename = "Id")]
    pub id: String,
    /// Composed in the integration user's locale (ja: `姓 名`).
    #[serde(rename = "Name")]
    pub name: String,
    /// Email-shaped and globally unique, not necessarily a mailbox.
    #[serde(rename = "Username")]
    pub username: String,
    /// Where mail reaches the person.
    #[serde(rename = "Email", default)]
    pub email: Option<String>,
    /// Can log in and own records.
    #[serde(rename = "IsActive")]
    pub active: bool,
}

/// Every active standard user, by name, following `nextRecordsUrl` until
/// done (one API call per 2,000 users).
///
/// # Errors
/// The first failed page's [`Error`].
pub async fn active_users(client: &Client) -> Result<Vec<User>, Error> {
    let mut page = client.query::<User>(ACTIVE_USERS_SOQL).await?;
    let mut users = std::mem::take(&mut page.records);
    while let Some(next) = page.next_records_url.take() {
        page = client.query_more::<User>(&next).await?;
        users.append(&mut page.records);
    }
    Ok(users)
}

/// One user by id (15 or 18 characters), active or not; `None` when the org
/// has no such user.
///
/// # Errors
/// [`Error::InvalidInput`] without calling Salesforce when `id` is not 15
/// or 18 ASCII letters and digits; else the call's [`Error`].
pub async fn user(client: &Client, id: &str) -> Result<Option<User>, Error> {
    let soql = user_soql(id)?;
    let page = client.query::<User>(&soql).await?;
    Ok(page.records.into_iter().next())
}

/// The query for one user, refusing anything that is not shaped like an id.
fn user_soql(id: &str) -> Result<String, Error> {
    if !matches!(id.len(), 15 | 18) || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        let shown: String = id.chars().take(40).collect();
        return Err(Error::InvalidInput(format!(
            "{shown:?} is not a Salesforce user id (15 or 18 letters and digits)"
        )));
    }
    Ok(format!("SELECT Id, Name, Username, Email, IsActive FROM User WHERE Id = {} LIMIT 1", soql::quote(id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_id_shaped_text_reaches_the_query() {
        fn check(id: &str, expected: Option<&str>) {
            assert_eq!(user_soql(id).ok().as_deref(), expected, "{id:?}");
        }
        check(
            "005xx000001SwiUAAS",
            Some("SELECT Id, Name, Username, Email, IsActive FROM User WHERE Id = '005xx000001SwiUAAS' LIMIT 1"),
        );
        check(
            "005xx000001SwiU",
            Some("SELECT Id, Name, Username, Email, IsActive FROM User WHERE Id = '005xx000001SwiU' LIMIT 1"),
        );
        check("005xx000001Swi", None);
        check("005xx000001SwiUA", None);
        check("005xx000001SwiUAASX", None);
        check("005xx000001Sw'UAAS", None);
        check("' OR Name != '", None);
        check("005xx000001SwiU\u{0}AS", None);
        check("005xx000001SwiUあ", None);
        check("", None);
    }

    #[test]
    fn a_users_row_is_read_with_or_without_email() {
        fn check(json: &str, expected: Option<User>) {
            assert_eq!(serde_json::from_str::<User>(json).ok(), expected, "{json}");
        }
        let user = |email: Option<&str>| User {
            id: "005xx000001SwiUAAS".into(),
            name: "山田 花子".into(),
            username: "hanako@acme.example.com".into(),
            email: email.map(str::to_owned),
            active: true,
        };
        check(
            r#"{"attributes":{"type":"User","url":"/services/data/v61.0/sobjects/User/005xx000001SwiUAAS"},"Id":"005xx000001SwiUAAS","Name":"山田 花子","Username":"hanako@acme.example.com","Email":"hanako@acme.example.com","IsActive":true}"#,
            Some(user(Some("hanako@acme.example.com"))),
        );
        check(
            r#"{"Id":"005xx000001SwiUAAS","Name":"山田 花子","Username":"hanako@acme.example.com","Email":null,"IsActive":true}"#,
            Some(user(None)),
        );
        check(r#"{"Id":"005xx000001SwiUAAS"}"#, None);
    }
}
