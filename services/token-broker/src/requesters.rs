//! Who may ask for a token: the RabbitMQ users of the services that call
//! Salesforce.
//!
//! Why: whoever can publish to `token-broker.tokens` could otherwise have
//! any tenant's access token. Queue permissions cannot say who publishes
//! there: requests travel through the default exchange, which every service
//! needs for its own dead-letter copies and retries, and it reaches any
//! queue by name. So each request's `user_id` is checked instead. RabbitMQ
//! refuses a publish whose `user_id` is not the login of the connection
//! that sent it, so a request that carries one says truthfully who sent it
//! (`fa_amqp::RpcClient` always sets it); a request without one is refused.
//!
//! The allowed users are `FA_SF_TOKEN_REQUESTERS` (default
//! `importer,activity-writer`, the users `make deps` and the manifests give
//! those services) and the broker's own user: where all services share one
//! user, as with the default `FA_SF_AMQP_URL`, they keep working, and the
//! broker, which holds the keys, gains nothing by asking itself.

use std::{collections::BTreeSet, fmt, str::FromStr};

/// runtime's default `FA_SF_TOKEN_REQUESTERS`.
pub const DEFAULT_REQUESTERS: &str = "importer,activity-writer";

/// The RabbitMQ users allowed to ask for tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requesters {
    users: BTreeSet<String>,
}

/// Why a request was refused: the reply's `requester_not_allowed` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The request names no user.
    #[error("the token request names no RabbitMQ user (user_id): ask through fa_tokens::TokenClient, which sends it")]
    Anonymous,
    /// The user is not one of the allowed.
    #[error(
        "RabbitMQ user {0:?} may not ask for tokens: if it is one of the connector's services, add it to the \
         token-broker's FA_SF_TOKEN_REQUESTERS"
    )]
    NotAllowed(String),
}

impl Refusal {
    /// The reply's error code.
    pub const CODE: fa_tokens::ErrorCode = fa_tokens::ErrorCode::RequesterNotAllowed;
}

impl Requesters {
    /// These users, and `own` (the broker's own user) when known.
    pub fn with_own(mut self, own: Option<&str>) -> Self {
        if let Some(own) = own {
            self.users.insert(own.to_owned());
        }
        self
    }

    /// Whether the request's `user_id` may have a token.
    pub fn check(&self, user_id: Option<&str>) -> Result<(), Refusal> {
        match user_id {
            None | Some("") => Err(Refusal::Anonymous),
            Some(user) if self.users.contains(user) => Ok(()),
            Some(user) => Err(Refusal::NotAllowed(user.to_owned())),
        }
    }
}

impl FromStr for Requesters {
    type Err = String;

    /// A comma-separated list of RabbitMQ user names.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let users: BTreeSet<String> =
            text.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect();
        if let Some(bad) = users.iter().find(|u| u.chars().any(char::is_whitespace)) {
            return Err(format!("{bad:?} is not a RabbitMQ user name (names are separated by commas)"));
        }
        Ok(Self { users })
    }
}

impl fmt::Display for Requesters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.users.iter().map(String::as_str).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listed_users_and_the_brokers_own_may_ask() {
        let requesters: Requesters = DEFAULT_REQUESTERS.parse().expect("the default parses");
        let requesters = requesters.with_own(Some("token-broker"));
        let cases: [(Option<&str>, Result<(), Refusal>); 7] = [
            (Some("importer"), Ok(())),
            (Some("activity-writer"), Ok(())),
            (Some("token-broker"), Ok(())),
            (Some("guest"), Err(Refusal::NotAllowed("guest".to_owned()))),
            (Some("Importer"), Err(Refusal::NotAllowed("Importer".to_owned()))),
            (Some(""), Err(Refusal::Anonymous)),
            (None, Err(Refusal::Anonymous)),
        ];
        for (user, expected) in cases {
            assert_eq!(requesters.check(user), expected, "{user:?}");
        }
    }

    #[test]
    fn one_shared_user_keeps_working() {
        // Every service on the default URL logs in as guest.
        let requesters: Requesters = DEFAULT_REQUESTERS.parse().expect("parses");
        assert_eq!(requesters.clone().with_own(Some("guest")).check(Some("guest")), Ok(()));
        assert!(requesters.check(Some("guest")).is_err(), "not without being the broker's own");
    }

    #[test]
    fn the_list_is_read_forgivingly_but_not_blindly() {
        let requesters: Requesters = " importer , ,activity-writer,".parse().expect("parses");
        assert_eq!(requesters.to_string(), "activity-writer,importer");
        let empty: Requesters = "".parse().expect("nobody but the broker");
        assert!(empty.check(Some("importer")).is_err());
        let err = "importer activity-writer".parse::<Requesters>().expect_err("a space is no separator");
        assert!(err.contains("separated by commas"), "{err}");
    }

    #[test]
    fn a_refusal_says_what_to_fix() {
        assert!(Refusal::NotAllowed("guest".to_owned()).to_string().contains("FA_SF_TOKEN_REQUESTERS"));
        assert!(Refusal::Anonymous.to_string().contains("TokenClient"));
    }
}
