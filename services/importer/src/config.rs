//! The importer's configuration (runtime.md, the runtime contract outside this repository;
//! README.md, "Configuration", lists every variable): the common values plus its own.

use std::time::Duration;

use fa_runtime::config::ApiVersion;
use fa_runtime::{CommonConfig, ConfigError, Settings, launch::ServiceConfig};
use secrecy::SecretString;

use crate::SERVICE;

/// Everything the importer reads at start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Broker, database, HTTP address, logging.
    pub common: CommonConfig,
    /// `FA_SF_ADMIN_TOKEN`: the bearer token of the admin API.
    pub admin_token: SecretString,
    /// `FA_SF_SALESFORCE_API_VERSION`.
    pub api_version: ApiVersion,
    /// `FA_SF_IMPORT_INTERVAL`: time between scheduled runs of one tenant.
    pub interval: Duration,
    /// `FA_SF_IMPORT_MAX_RECORDS_PER_RUN`: records one run publishes at most.
    pub max_records_per_run: u32,
    /// `FA_SF_IMPORT_LOOKBACK`: how far back the first run reaches.
    pub lookback: Duration,
}

impl Config {
    /// Parses the merged settings; the error names the variable to fix.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_settings(settings, SERVICE, DEFAULT_HTTP_ADDR)?,
            admin_token: settings.admin_token()?,
            api_version: settings.parse_or("FA_SF_SALESFORCE_API_VERSION", ApiVersion::default())?,
            interval: settings.duration_or("FA_SF_IMPORT_INTERVAL", Duration::from_secs(24 * 3600))?,
            max_records_per_run: match settings.parse_or("FA_SF_IMPORT_MAX_RECORDS_PER_RUN", 2000u32)? {
                0 => return Err(ConfigError::invalid("FA_SF_IMPORT_MAX_RECORDS_PER_RUN", "must be at least 1")),
                n => n,
            },
            lookback: settings.duration_or("FA_SF_IMPORT_LOOKBACK", Duration::from_secs(365 * 24 * 3600))?,
        })
    }
}

/// runtime.md's default `FA_SF_HTTP_ADDR` of the importer.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8081";

impl ServiceConfig for Config {
    fn common(&self) -> &CommonConfig {
        &self.common
    }
}
