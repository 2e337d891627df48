//! The token-broker's configuration (runtime.md, the runtime contract outside this repository;
//! README.md, "Configuration", lists every variable): the common values plus its own.

use fa_runtime::config::ApiVersion;
use fa_runtime::{CommonConfig, ConfigError, Settings, launch::ServiceConfig};
use secrecy::SecretString;

use crate::{
    SERVICE,
    login_url::Allowlist,
    requesters::{DEFAULT_REQUESTERS, Requesters},
};

/// Everything the token-broker reads at start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Broker, database, HTTP address, logging.
    pub common: CommonConfig,
    /// `FA_SF_ADMIN_TOKEN`: the bearer token of the admin API.
    pub admin_token: SecretString,
    /// `FA_SF_KEY_ENCRYPTION_KEY`: 32 bytes that encrypt private keys at rest.
    pub key_encryption_key: KeyEncryptionKey,
    /// `FA_SF_KEY_ENCRYPTION_KEY_PREVIOUS`: earlier encryption keys, still
    /// read (comma-separated base64) while rows are re-encrypted under the
    /// current one.
    pub previous_key_encryption_keys: Vec<KeyEncryptionKey>,
    /// `FA_SF_LOGIN_URL_ALLOWLIST`: hosts a connection's `login_url` may
    /// name; also the hosts besides Salesforce's own (`https` on
    /// `*.salesforce.com`) whose `instance_url` a token is used for.
    pub login_url_allowlist: Allowlist,
    /// `FA_SF_TOKEN_REQUESTERS`: the RabbitMQ users, besides the broker's
    /// own, whose token requests are answered.
    pub token_requesters: Requesters,
    /// `FA_SF_SALESFORCE_API_VERSION`.
    pub api_version: ApiVersion,
}

impl Config {
    /// Parses the merged settings; the error names the variable to fix.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_settings(settings, SERVICE, DEFAULT_HTTP_ADDR)?,
            admin_token: settings.admin_token()?,
            key_encryption_key: KeyEncryptionKey::from_settings(settings)?,
            previous_key_encryption_keys: KeyEncryptionKey::previous_from_settings(settings)?,
            login_url_allowlist: settings.parse_or(
                "FA_SF_LOGIN_URL_ALLOWLIST",
                DEFAULT_ALLOWLIST.parse().map_err(|e| ConfigError::invalid("FA_SF_LOGIN_URL_ALLOWLIST", e))?,
            )?,
            token_requesters: settings.parse_or(
                "FA_SF_TOKEN_REQUESTERS",
                DEFAULT_REQUESTERS.parse().map_err(|e| ConfigError::invalid("FA_SF_TOKEN_REQUESTERS", e))?,
            )?,
            api_version: settings.parse_or("FA_SF_SALESFORCE_API_VERSION", ApiVersion::default())?,
        })
    }
}

/// runtime.md's default `FA_SF_LOGIN_URL_ALLOWLIST`.
pub const DEFAULT_ALLOWLIST: &str = "login.salesforce.com,test.salesforce.com,*.my.salesforce.com";

/// runtime.md's default `FA_SF_HTTP_ADDR` of the token-broker.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";

impl ServiceConfig for Config {
    fn common(&self) -> &CommonConfig {
        &self.common
    }
}

/// The key that encrypts private keys at rest (AES-256-GCM), with the id
/// stored beside each ciphertext so the key can be rotated.
#[derive(Clone)]
pub struct KeyEncryptionKey {
    /// The 32 key bytes.
    bytes: std::sync::Arc<secrecy::SecretBox<[u8; 32]>>,
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey([redacted])")
    }
}

impl KeyEncryptionKey {
    fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        use secrecy::ExposeSecret as _;
        const VAR: &str = "FA_SF_KEY_ENCRYPTION_KEY";
        let text = settings.required_secret(VAR, " (base64 of 32 random bytes: `openssl rand -base64 32`)")?;
        Self::decode(VAR, text.expose_secret())
    }

    fn previous_from_settings(settings: &Settings) -> Result<Vec<Self>, ConfigError> {
        const VAR: &str = "FA_SF_KEY_ENCRYPTION_KEY_PREVIOUS";
        let Some(text) = settings.get(VAR) else { return Ok(Vec::new()) };
        text.split(',').map(str::trim).filter(|k| !k.is_empty()).map(|k| Self::decode(VAR, k)).collect()
    }

    fn decode(var: &'static str, text: &str) -> Result<Self, ConfigError> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| ConfigError::invalid(var, "not base64 (make one with `openssl rand -base64 32`)"))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            ConfigError::invalid(var, format!("decodes to {} bytes, must be 32 (`openssl rand -base64 32`)", b.len()))
        })?;
        Ok(Self { bytes: std::sync::Arc::new(secrecy::SecretBox::new(Box::new(bytes))) })
    }

    /// The key bytes, for the cipher.
    pub fn expose(&self) -> &[u8; 32] {
        use secrecy::ExposeSecret as _;
        self.bytes.expose_secret()
    }
}
