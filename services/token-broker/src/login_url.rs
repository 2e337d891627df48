//! Which login URLs a connection may name (`FA_SF_LOGIN_URL_ALLOWLIST`,
//! runtime.md, the runtime contract outside this repository; README.md, "Configuration"),
//! checked before any request leaves the broker: an admin must
//! not be able to make the broker call an address of their choosing. The
//! same list decides which `instance_url` of a token grant, besides
//! Salesforce's own `https` hosts, a token may be sent to
//! ([`Allowlist::check_instance_url`]).

use std::fmt;

use fa_runtime::admin::Text;
use fa_tokens::instance_url::{is_loopback, split_host_port, valid_host};

/// The production login URL, used when a registration names none.
pub const DEFAULT_LOGIN_URL: &str = "https://login.salesforce.com";

/// A login URL that passed the allowlist: `scheme://host[:port]`, no path,
/// query or credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginUrl(String);

impl LoginUrl {
    /// `scheme://host[:port]`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An already checked URL read back from the database.
    pub fn from_stored(url: String) -> Self {
        Self(url)
    }
}

impl fmt::Display for LoginUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`: any subdomain, not `example.com` itself.
    Subdomain(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    /// The scheme's default port only.
    Default,
    Exact(u16),
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    host: HostPattern,
    port: PortPattern,
}

/// The parsed `FA_SF_LOGIN_URL_ALLOWLIST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowlist {
    entries: Vec<Entry>,
}

impl std::str::FromStr for Allowlist {
    type Err = String;

    /// `host`, `host:port`, `*.domain`, `host:*`, comma-separated.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for raw in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let lower = raw.to_ascii_lowercase();
            let (host, port) = split_host_port(&lower);
            let port = match port {
                None => PortPattern::Default,
                Some("*") => PortPattern::Any,
                Some(p) => {
                    PortPattern::Exact(p.parse().map_err(|_| format!("`{raw}`: the port must be a number or `*`"))?)
                }
            };
            let host = match host.strip_prefix("*.") {
                Some(domain) if valid_host(domain) => HostPattern::Subdomain(domain.to_owned()),
                None if valid_host(host) => HostPattern::Exact(host.to_owned()),
                _ => return Err(format!("`{raw}` is not a host name, `*.domain` or an IP address")),
            };
            entries.push(Entry { host, port });
        }
        if entries.is_empty() {
            return Err(
                "names no host; the default is login.salesforce.com,test.salesforce.com,*.my.salesforce.com".to_owned()
            );
        }
        Ok(Self { entries })
    }
}

/// Why a login URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not `scheme://host[:port]` with an optional `/`.
    Malformed,
    /// Plain `http` to a host that is not loopback.
    NotHttps,
    /// The host and port are not on the allowlist.
    NotListed { host: String },
}

impl Refusal {
    /// What to tell the admin.
    pub fn message(&self, url: &str) -> Text {
        match self {
            Self::Malformed => Text::new(
                format!(
                    "login_url `{url}` is not a plain URL such as https://login.salesforce.com (no path, query or user name)."
                ),
                format!(
                    "login_url「{url}」は https://login.salesforce.com のような URL ではありません(パス、クエリ、ユーザー名は付けないでください)。"
                ),
            ),
            Self::NotHttps => Text::new(
                format!(
                    "login_url `{url}` must use https://, e.g. https://login.salesforce.com, https://test.salesforce.com or https://<My Domain>.my.salesforce.com."
                ),
                format!(
                    "login_url「{url}」は https:// で始まる必要があります(例: https://login.salesforce.com、Sandbox は https://test.salesforce.com、または https://<私のドメイン>.my.salesforce.com)。"
                ),
            ),
            Self::NotListed { host } => Text::new(
                format!(
                    "login_url host `{host}` is not allowed. Use https://login.salesforce.com (production), https://test.salesforce.com (sandbox) or your https://<My Domain>.my.salesforce.com."
                ),
                format!(
                    "login_url のホスト「{host}」は使用できません。本番組織は https://login.salesforce.com、Sandbox は https://test.salesforce.com、または https://<私のドメイン>.my.salesforce.com を指定してください。"
                ),
            ),
        }
    }
}

impl Allowlist {
    /// Checks `url` and returns it in its canonical form. Loopback hosts may
    /// use plain `http`, and only when an entry names them explicitly.
    pub fn check(&self, url: &str) -> Result<LoginUrl, Refusal> {
        let trimmed = url.trim();
        let (scheme, rest) = trimmed.split_once("://").ok_or(Refusal::Malformed)?;
        let scheme = scheme.to_ascii_lowercase();
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty()
            || authority.contains(['/', '?', '#', '@', '\\'])
            || authority.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Refusal::Malformed);
        }
        let authority = authority.to_ascii_lowercase();
        let (host, port) = split_host_port(&authority);
        if !valid_host(host) {
            return Err(Refusal::Malformed);
        }
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return Err(Refusal::NotHttps),
        };
        let port: Option<u16> = match port {
            None => None,
            Some(p) => Some(p.parse().map_err(|_| Refusal::Malformed)?),
        };
        let loopback = is_loopback(host);
        if scheme == "http" && !loopback {
            return Err(Refusal::NotHttps);
        }
        let effective_port = port.unwrap_or(default_port);
        let allowed = self.entries.iter().any(|entry| {
            let host_ok = match &entry.host {
                HostPattern::Exact(h) => h == host,
                // A wildcard never admits loopback: it must be listed by name.
                HostPattern::Subdomain(d) => !loopback && host.len() > d.len() + 1 && host.ends_with(&format!(".{d}")),
            };
            let port_ok = match entry.port {
                PortPattern::Default => effective_port == default_port,
                PortPattern::Exact(p) => effective_port == p,
                PortPattern::Any => true,
            };
            host_ok && port_ok
        });
        if !allowed {
            return Err(Refusal::NotListed { host: host.to_owned() });
        }
        Ok(LoginUrl(match port {
            Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
            _ => format!("{scheme}://{host}"),
        }))
    }
}

impl Allowlist {
    /// Whether a bearer token may be sent to `instance_url` (from a token
    /// grant): `https` on a Salesforce host
    /// ([`fa_tokens::instance_url::salesforce`]), or a URL this list admits
    /// as it would a login URL (sfsim on a listed loopback port in
    /// development and tests). The refusal is the Salesforce rule's.
    pub fn check_instance_url(&self, instance_url: &str) -> Result<(), InstanceUrlRefusal> {
        match fa_tokens::instance_url::salesforce(instance_url) {
            Ok(()) => Ok(()),
            Err(_) if self.check(instance_url).is_ok() => Ok(()),
            Err(refusal) => Err(refusal),
        }
    }
}

pub use fa_tokens::instance_url::Refusal as InstanceUrlRefusal;

#[cfg(test)]
mod tests {
    use super::*;

    fn list(text: &str) -> Allowlist {
        text.parse().expect("allowlist")
    }

    #[test]
    fn the_default_list_admits_salesforce_login_hosts_only() {
        let allow = list("login.salesforce.com,test.salesforce.com,*.my.salesforce.com");
        let check = |url: &str, expected: Result<&str, Refusal>| {
            let got = allow.check(url);
            assert_eq!(got.as_ref().map(LoginUrl::as_str), expected.as_ref().map(|s| *s), "{url}");
        };
        check("https://login.salesforce.com", Ok("https://login.salesforce.com"));
        check("https://login.salesforce.com/", Ok("https://login.salesforce.com"));
        check(" HTTPS://Login.Salesforce.com ", Ok("https://login.salesforce.com"));
        check("https://login.salesforce.com:443", Ok("https://login.salesforce.com"));
        check("https://test.salesforce.com", Ok("https://test.salesforce.com"));
        check("https://acme.my.salesforce.com", Ok("https://acme.my.salesforce.com"));
        check("https://acme--uat.sandbox.my.salesforce.com", Ok("https://acme--uat.sandbox.my.salesforce.com"));
        check("https://my.salesforce.com", Err(Refusal::NotListed { host: "my.salesforce.com".into() }));
        check("https://login.salesforce.com:8443", Err(Refusal::NotListed { host: "login.salesforce.com".into() }));
        check("http://login.salesforce.com", Err(Refusal::NotHttps));
        check("ftp://login.salesforce.com", Err(Refusal::NotHttps));
        check("https://evil.example.com", Err(Refusal::NotListed { host: "evil.example.com".into() }));
        check(
            "https://login.salesforce.com.evil.com",
            Err(Refusal::NotListed { host: "login.salesforce.com.evil.com".into() }),
        );
        check("https://evilmy.salesforce.com", Err(Refusal::NotListed { host: "evilmy.salesforce.com".into() }));
        check("https://login.salesforce.com/services/oauth2/token", Err(Refusal::Malformed));
        check("https://user@login.salesforce.com", Err(Refusal::Malformed));
        check("https://login.salesforce.com?x=1", Err(Refusal::Malformed));
        check("login.salesforce.com", Err(Refusal::Malformed));
        check("https://", Err(Refusal::Malformed));
        check("http://127.0.0.1:8090", Err(Refusal::NotListed { host: "127.0.0.1".into() }));
        check("http://169.254.169.254", Err(Refusal::NotHttps));
    }

    #[test]
    fn loopback_needs_an_explicit_entry_and_may_then_use_http() {
        let allow = list("login.salesforce.com, 127.0.0.1:*, localhost:8090");
        let check = |url: &str, ok: bool| assert_eq!(allow.check(url).is_ok(), ok, "{url}");
        check("http://127.0.0.1:8090", true);
        check("http://127.0.0.1:1234/", true);
        check("https://127.0.0.1:1234", true);
        check("http://localhost:8090", true);
        check("http://localhost:8091", false);
        check("http://127.0.0.2:8090", false);
        check("http://[::1]:8090", false);
        assert_eq!(
            allow.check("http://127.0.0.1:8090").map(|u| u.as_str().to_owned()),
            Ok("http://127.0.0.1:8090".to_owned())
        );
        // A wildcard never covers loopback names.
        let wild = list("*.localhost:*");
        assert!(wild.check("http://a.localhost:80").is_err());
    }

    #[test]
    fn a_grant_instance_url_must_be_salesforce_over_https_or_admitted_by_the_list() {
        let allow = list("login.salesforce.com,test.salesforce.com,*.my.salesforce.com,127.0.0.1:*");
        let check = |url: &str, ok: bool| assert_eq!(allow.check_instance_url(url).is_ok(), ok, "{url}");
        check("https://acme.my.salesforce.com", true);
        check("https://na1.salesforce.com", true);
        check("https://acme--uat.sandbox.my.salesforce.com/", true);
        check("http://127.0.0.1:8090", true);
        check("http://acme.my.salesforce.com", false);
        check("https://evil.example.com", false);
        check("http://evil.example.com", false);
        check("https://acme.my.salesforce.com.evil.example", false);
        check("https://acme.my.salesforce.com:8443", false);
        check("http://localhost:8090", false);
        check("https://user@acme.my.salesforce.com", false);
        assert!(matches!(
            allow.check_instance_url("http://acme.my.salesforce.com"),
            Err(InstanceUrlRefusal::NotHttps { .. })
        ));
        assert!(matches!(
            allow.check_instance_url("https://evil.example.com"),
            Err(InstanceUrlRefusal::Foreign { host }) if host == "evil.example.com"
        ));
        // The default list admits nothing beyond the Salesforce rule.
        let default = list(crate::config::DEFAULT_ALLOWLIST);
        assert!(default.check_instance_url("http://127.0.0.1:8090").is_err());
        assert!(default.check_instance_url("https://acme.my.salesforce.com").is_ok());
    }

    #[test]
    fn a_malformed_allowlist_is_refused_with_the_entry_named() {
        let check = |text: &str, fragment: &str| {
            let err = text.parse::<Allowlist>().expect_err(text);
            assert!(err.contains(fragment), "{text}: {err}");
        };
        check("", "names no host");
        check(" , ", "names no host");
        check("login.salesforce.com:abc", "login.salesforce.com:abc");
        check("https://login.salesforce.com", "https://login.salesforce.com");
        check("*.", "*.");
    }
}
