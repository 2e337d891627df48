//! The activity-writer's configuration (runtime.md): the common values plus its own.

use fa_runtime::config::ApiVersion;
use fa_runtime::{CommonConfig, ConfigError, Settings, launch::ServiceConfig};

use crate::SERVICE;

/// Everything the activity-writer reads at start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Broker, database, HTTP address, logging.
    pub common: CommonConfig,
    /// `FA_SF_SALESFORCE_API_VERSION`.
    pub api_version: ApiVersion,
    /// `FA_SF_TIMEZONE`: the zone of a Task's `ActivityDate`.
    pub timezone: String,
}

impl Config {
    /// Parses the merged settings; the error names the variable to fix.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_settings(settings, SERVICE, DEFAULT_HTTP_ADDR)?,
            api_version: settings.parse_or("FA_SF_SALESFORCE_API_VERSION", ApiVersion::default())?,
            timezone: settings.string_or("FA_SF_TIMEZONE", "Asia/Tokyo"),
        })
    }
}

/// runtime.md's default `FA_SF_HTTP_ADDR` of the activity-writer.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8082";

impl ServiceConfig for Config {
    fn common(&self) -> &CommonConfig {
        &self.common
    }
}
