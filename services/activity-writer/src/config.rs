//! The activity-writer's configuration (runtime.md, the runtime contract outside this repository;
//! README.md, "Configuration", lists every variable): the common values plus its own.
//!
//! Every value is parsed into its type at start, so a wrong one stops the service with a line
//! naming the variable (exit code 2) instead of failing the first Task hours later. The time zone
//! in particular becomes a [`jiff::tz::TimeZone`] here: a misspelt `FA_SF_TIMEZONE` must not
//! quietly date every Task in UTC.

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
    /// `FA_SF_TIMEZONE`: the zone of a Task's `ActivityDate`, an IANA name such as `Asia/Tokyo`.
    pub timezone: jiff::tz::TimeZone,
    /// `FA_SF_WRITER_MAX_BATCH`: events of one tenant handled together at most, 1 to 200. Not in
    /// runtime.md: 200 (one sObject Collections call) is right for every org; 1 turns batching
    /// off, which the benchmark uses as its baseline and an operator can use to rule batching
    /// out when chasing a problem.
    pub max_batch: usize,
}

impl Config {
    /// Parses the merged settings; the error names the variable to fix.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_settings(settings, SERVICE, DEFAULT_HTTP_ADDR)?,
            api_version: settings.parse_or("FA_SF_SALESFORCE_API_VERSION", ApiVersion::default())?,
            timezone: timezone(settings)?,
            max_batch: max_batch(settings)?,
        })
    }
}

/// The variable capping a batch.
pub const MAX_BATCH_VAR: &str = "FA_SF_WRITER_MAX_BATCH";

fn max_batch(settings: &Settings) -> Result<usize, ConfigError> {
    let value: usize = settings.parse_or(MAX_BATCH_VAR, crate::MAX_BATCH)?;
    if (1..=crate::MAX_BATCH).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::invalid(MAX_BATCH_VAR, format!("{value} is not between 1 and {}", crate::MAX_BATCH)))
    }
}

/// The variable naming the zone of a Task's `ActivityDate`.
pub const TIMEZONE_VAR: &str = "FA_SF_TIMEZONE";

/// runtime.md's default `FA_SF_TIMEZONE`.
pub const DEFAULT_TIMEZONE: &str = "Asia/Tokyo";

/// Looks `FA_SF_TIMEZONE` up in the IANA database: the system's copy when the machine has one,
/// else the copy compiled into the binary, so a minimal image still knows every zone.
fn timezone(settings: &Settings) -> Result<jiff::tz::TimeZone, ConfigError> {
    let name = settings.string_or(TIMEZONE_VAR, DEFAULT_TIMEZONE);
    jiff::tz::TimeZone::get(&name).map_err(|e| {
        ConfigError::invalid(TIMEZONE_VAR, format!("{name:?} is not a known IANA time zone such as Asia/Tokyo ({e})"))
    })
}

/// runtime.md's default `FA_SF_HTTP_ADDR` of the activity-writer.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8082";

impl ServiceConfig for Config {
    fn common(&self) -> &CommonConfig {
        &self.common
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let settings = Settings::from_env_map(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())?;
        Config::from_settings(&settings)
    }

    #[test]
    fn the_timezone_is_an_iana_zone() {
        fn check(value: Option<&str>, expected: Result<&str, &str>) {
            let pairs: Vec<(&str, &str)> = value.map(|v| (TIMEZONE_VAR, v)).into_iter().collect();
            match (parse(&pairs), expected) {
                (Ok(config), Ok(zone)) => assert_eq!(config.timezone.iana_name(), Some(zone), "{value:?}"),
                (Err(err), Err(start)) => {
                    let text = err.to_string();
                    assert!(text.starts_with(start), "{text:?} does not start with {start:?}");
                    assert!(!text.contains('\n'), "{text:?} is one line");
                }
                (got, want) => panic!("{value:?} gave {got:?}, expected {want:?}"),
            }
        }
        check(None, Ok("Asia/Tokyo"));
        check(Some("Asia/Tokyo"), Ok("Asia/Tokyo"));
        check(Some("UTC"), Ok("UTC"));
        check(Some("America/Los_Angeles"), Ok("America/Los_Angeles"));
        check(Some("Asia/Tokio"), Err("FA_SF_TIMEZONE is invalid: \"Asia/Tokio\""));
        check(Some("JST+9"), Err("FA_SF_TIMEZONE is invalid"));
    }

    #[test]
    fn the_batch_cap_is_between_1_and_200() {
        let cap = |value: &str| parse(&[(MAX_BATCH_VAR, value)]).map(|c| c.max_batch).map_err(|e| e.to_string());
        assert_eq!(parse(&[]).map(|c| c.max_batch).ok(), Some(200));
        assert_eq!(cap("1"), Ok(1));
        assert_eq!(cap("200"), Ok(200));
        for bad in ["0", "201", "-1", "ten"] {
            let err = cap(bad).expect_err(bad);
            assert!(err.starts_with("FA_SF_WRITER_MAX_BATCH"), "{err}");
        }
    }

    #[test]
    fn the_zone_database_is_compiled_in() {
        // What a machine without /usr/share/zoneinfo falls back to.
        let bundled = jiff::tz::TimeZoneDatabase::bundled();
        let tokyo = bundled.get("Asia/Tokyo").expect("Asia/Tokyo is bundled");
        assert_eq!(tokyo.iana_name(), Some("Asia/Tokyo"));
    }
}
