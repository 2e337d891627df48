//! Where a bearer token may be sent: the `instance_url` of a token.
//!
//! A token is sent, with every API call, to the `instance_url` that came
//! with it; whoever names that URL receives the token (and the customer data
//! of the calls). Salesforce's own answers name an `https` host under
//! `salesforce.com` (docs/salesforce-facts.md §1: `https://yourInstance.salesforce.com`,
//! `https://<MyDomain>.my.salesforce.com`), so that is what is accepted
//! anywhere. Two checks use this module:
//!
//! - the token-broker, on each grant from Salesforce: a Salesforce host
//!   ([`salesforce`]), or one its `FA_SF_LOGIN_URL_ALLOWLIST` admits;
//! - [`TokenClient`](crate::TokenClient), on each token reply: a Salesforce
//!   host or a loopback one ([`for_client`]). The client does not know the
//!   broker's allowlist; loopback is what development and tests list there
//!   (sfsim), and a token sent to it does not leave the caller's machine.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The domain every Salesforce `instance_url` is under.
pub const SALESFORCE_DOMAIN: &str = "salesforce.com";

/// Why an `instance_url` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not `scheme://host[:port]` with an optional final `/`.
    #[error("instance_url `{url}` is not a plain URL such as https://acme.my.salesforce.com")]
    Malformed {
        /// The URL as given.
        url: String,
    },
    /// Not `https` (plain `http` is for loopback only).
    #[error("instance_url `{url}` does not use https://; a bearer token is only sent over https")]
    NotHttps {
        /// The URL as given.
        url: String,
    },
    /// Not a Salesforce host (nor, where allowed, loopback).
    #[error(
        "instance_url host `{host}` is not a Salesforce host (https://<name>.salesforce.com); a bearer token is only \
         sent to Salesforce"
    )]
    Foreign {
        /// The host named.
        host: String,
    },
}

impl Refusal {
    /// The stable code a refused token is reported with.
    pub const CODE: crate::ErrorCode = crate::ErrorCode::InstanceUrlNotAllowed;
}

/// An `instance_url` taken apart, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    https: bool,
    host: String,
    port: Option<u16>,
}

impl Origin {
    fn parse(url: &str) -> Result<Self, Refusal> {
        let malformed = || Refusal::Malformed { url: url.to_owned() };
        let (scheme, rest) = url.trim().split_once("://").ok_or_else(malformed)?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return Err(Refusal::NotHttps { url: url.to_owned() }),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        // Nothing that could make one parser see another host than ours: no
        // path, query, fragment, user info or escapes.
        if authority.is_empty()
            || authority.contains(['/', '?', '#', '@', '\\', '%'])
            || authority.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(malformed());
        }
        let authority = authority.to_ascii_lowercase();
        let (host, port) = split_host_port(&authority);
        if !valid_host(host) {
            return Err(malformed());
        }
        let port = match port {
            None => None,
            Some(p) => Some(p.parse::<u16>().map_err(|_| malformed())?),
        };
        Ok(Self { https, host: host.to_owned(), port })
    }

    /// `https` on a subdomain of `salesforce.com`, on the default port.
    fn is_salesforce(&self) -> bool {
        self.https
            && matches!(self.port, None | Some(443))
            && self.host.strip_suffix(SALESFORCE_DOMAIN).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
    }

    fn is_loopback(&self) -> bool {
        is_loopback(&self.host)
    }
}

/// Accepts `url` if it is `https` on a Salesforce host (a subdomain of
/// `salesforce.com`, default port); the refusal says why not.
pub fn salesforce(url: &str) -> Result<(), Refusal> {
    let origin = Origin::parse(url)?;
    if origin.is_salesforce() {
        return Ok(());
    }
    if !origin.https {
        return Err(Refusal::NotHttps { url: url.to_owned() });
    }
    Err(Refusal::Foreign { host: origin.host })
}

/// What [`TokenClient`](crate::TokenClient) accepts from the broker: a
/// Salesforce host ([`salesforce`]), or a loopback host over `http` or
/// `https` on any port (sfsim in development and tests).
pub fn for_client(url: &str) -> Result<(), Refusal> {
    let origin = Origin::parse(url)?;
    if origin.is_salesforce() || origin.is_loopback() {
        return Ok(());
    }
    if !origin.https {
        return Err(Refusal::NotHttps { url: url.to_owned() });
    }
    Err(Refusal::Foreign { host: origin.host })
}

/// `host` and the text after its last `:` (IPv6 in brackets kept whole).
/// The token-broker's login URL allowlist reads hosts with the same rules.
pub fn split_host_port(text: &str) -> (&str, Option<&str>) {
    if text.starts_with('[') {
        return match text.find(']') {
            Some(end) => (&text[..=end], text[end + 1..].strip_prefix(':')),
            None => (text, None),
        };
    }
    match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    }
}

/// A DNS name of valid labels, or an IPv6 address in brackets.
pub fn valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[') {
        return inner.strip_suffix(']').is_some_and(|ip| ip.parse::<Ipv6Addr>().is_ok());
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `localhost`, or an IPv4 or (bracketed) IPv6 loopback address.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
        || host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(|ip| ip.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(rule: fn(&str) -> Result<(), Refusal>, url: &str, expected: Result<(), Refusal>) {
        assert_eq!(rule(url), expected, "{url}");
    }

    fn foreign(host: &str) -> Result<(), Refusal> {
        Err(Refusal::Foreign { host: host.to_owned() })
    }

    fn not_https(url: &str) -> Result<(), Refusal> {
        Err(Refusal::NotHttps { url: url.to_owned() })
    }

    fn check_malformed(rule: fn(&str) -> Result<(), Refusal>, url: &str) {
        check(rule, url, Err(Refusal::Malformed { url: url.to_owned() }));
    }

    #[test]
    fn salesforce_hosts_over_https_are_accepted_and_nothing_else() {
        let rule = salesforce;
        check(rule, "https://acme.my.salesforce.com", Ok(()));
        check(rule, "https://acme.my.salesforce.com/", Ok(()));
        check(rule, "HTTPS://Acme.My.Salesforce.com", Ok(()));
        check(rule, "https://acme--uat.sandbox.my.salesforce.com", Ok(()));
        check(rule, "https://yourInstance.salesforce.com", Ok(()));
        check(rule, "https://na1.salesforce.com:443", Ok(()));
        check(rule, "http://acme.my.salesforce.com", not_https("http://acme.my.salesforce.com"));
        check(rule, "https://salesforce.com", foreign("salesforce.com"));
        check(rule, "https://evilsalesforce.com", foreign("evilsalesforce.com"));
        check(rule, "https://acme.my.salesforce.com.evil.example", foreign("acme.my.salesforce.com.evil.example"));
        check(rule, "https://acme.my.salesforce.com:8443", foreign("acme.my.salesforce.com"));
        check(rule, "https://evil.example.com", foreign("evil.example.com"));
        check(rule, "https://127.0.0.1:8090", foreign("127.0.0.1"));
        check(rule, "http://127.0.0.1:8090", not_https("http://127.0.0.1:8090"));
        check_malformed(rule, "https://evil.example.com@acme.my.salesforce.com");
        check_malformed(rule, "https://acme.my.salesforce.com@evil.example.com");
        check_malformed(rule, "https://acme.my.salesforce.com/services");
        check_malformed(rule, "https://acme.my.salesforce.com%2eevil.example");
        check_malformed(rule, "https://acme.my.salesforce.com:x");
        check_malformed(rule, "acme.my.salesforce.com");
        check_malformed(rule, "");
        check(rule, "ftp://acme.my.salesforce.com", not_https("ftp://acme.my.salesforce.com"));
    }

    #[test]
    fn the_client_also_accepts_loopback_and_still_refuses_foreign_hosts() {
        let rule = for_client;
        check(rule, "https://acme.my.salesforce.com", Ok(()));
        check(rule, "http://127.0.0.1:8090", Ok(()));
        check(rule, "http://127.0.0.1:8090/", Ok(()));
        check(rule, "https://127.0.0.1:1234", Ok(()));
        check(rule, "http://localhost:8090", Ok(()));
        check(rule, "http://[::1]:8090", Ok(()));
        check(rule, "http://acme.my.salesforce.com", not_https("http://acme.my.salesforce.com"));
        check(rule, "http://evil.example.com", not_https("http://evil.example.com"));
        check(rule, "http://169.254.169.254", not_https("http://169.254.169.254"));
        check(rule, "https://evil.example.com", foreign("evil.example.com"));
        check(rule, "https://10.0.0.1", foreign("10.0.0.1"));
        check(rule, "https://localhost.evil.example", foreign("localhost.evil.example"));
        check(rule, "http://127.0.0.1.evil.example", not_https("http://127.0.0.1.evil.example"));
        check_malformed(rule, "http://evil.example.com@127.0.0.1");
    }

    #[test]
    fn a_refusal_says_what_to_fix() {
        let message = for_client("http://evil.example.com").expect_err("refused").to_string();
        assert!(message.contains("https://"), "{message}");
        let message = for_client("https://evil.example.com").expect_err("refused").to_string();
        assert!(message.contains("evil.example.com") && message.contains("salesforce.com"), "{message}");
    }
}
