//! Configuration: built-in defaults, then the TOML file named by
//! `FA_SF_CONFIG`, then environment variables (runtime.md, the runtime contract in
//! `../shared/contracts/`, outside this repository; README.md, "Configuration", restates it).
//!
//! Every value is looked up by its environment variable's name
//! (`FA_SF_AMQP_URL`); in the TOML file the same value is the name without
//! the prefix, in lower case (`amqp_url = "..."`). Each accessor parses the
//! value into its type at once, and a missing or malformed value becomes a
//! [`ConfigError`] whose one-line message names the variable, so a service
//! that cannot start says exactly what to set.
//!
//! A name that no program of the connector reads, as a key of the file or
//! as an `FA_SF_*` variable, is a typo: it stops the service too, naming the
//! closest known name ([`known`], which holds the one list of names).

use std::{collections::HashMap, fmt, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use config::{Config, Environment, File, FileFormat, Source as _};
use secrecy::SecretString;

pub mod known;

/// The prefix of every variable of the connector.
pub const PREFIX: &str = "FA_SF_";

/// The variable naming the optional TOML file.
pub const CONFIG_FILE_VAR: &str = "FA_SF_CONFIG";

/// A configuration value that is missing or cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable has no value in the file or the environment.
    #[error("{variable} is required but not set{hint}")]
    Missing { variable: String, hint: String },
    /// A value is present but is not of the expected form.
    #[error("{variable} is invalid: {problem}")]
    Invalid { variable: String, problem: String },
    /// The file named by `FA_SF_CONFIG` cannot be read or parsed.
    #[error("FA_SF_CONFIG names a file that cannot be used: {0}")]
    File(String),
    /// Keys of the file or `FA_SF_*` variables that no program of the
    /// connector reads: typos, which would otherwise leave the default in
    /// place without a word. `first` is told in full (with the closest known
    /// name), the `others` by name, so one start lists them all.
    #[error("{first}{}", also_unknown(.others))]
    Unknown { first: known::Unknown, others: Vec<known::Unknown> },
}

/// The unknown names after the first, as the tail of one line.
fn also_unknown(others: &[known::Unknown]) -> String {
    if others.is_empty() {
        return String::new();
    }
    let names: Vec<String> = others.iter().map(known::Unknown::name).collect();
    format!(" (also unknown: {})", names.join(", "))
}

impl ConfigError {
    /// A value of `variable` that does not have the expected form.
    pub fn invalid(variable: &str, problem: impl fmt::Display) -> Self {
        Self::Invalid { variable: variable.to_owned(), problem: problem.to_string() }
    }
}

/// All configuration values, merged from the three layers.
///
/// Values are kept as strings until a service asks for one in its type, so
/// one service never fails on a variable only another service uses.
#[derive(Clone)]
pub struct Settings {
    values: HashMap<String, String>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values include secrets (the admin token, the key encryption key).
        let mut keys: Vec<_> = self.values.keys().collect();
        keys.sort();
        f.debug_struct("Settings").field("keys", &keys).finish_non_exhaustive()
    }
}

impl Settings {
    /// Reads the file named by `FA_SF_CONFIG` (if set) and the process's
    /// environment.
    pub fn from_process_env() -> Result<Self, ConfigError> {
        Self::from_env_map(std::env::vars().collect())
    }

    /// Like [`Settings::from_process_env`], with the environment given as a
    /// map (tests must not mutate the process environment).
    pub fn from_env_map(env: HashMap<String, String>) -> Result<Self, ConfigError> {
        let file = env.get(CONFIG_FILE_VAR).filter(|v| !v.is_empty()).map(PathBuf::from);
        let fa_env: HashMap<String, String> =
            env.iter().filter(|(k, _)| k.starts_with(PREFIX)).map(|(k, v)| (k.clone(), v.clone())).collect();

        // Unknown names are looked for before any value is read, so a typo
        // is named as such rather than as the value it left at its default.
        let mut unknown = Vec::new();
        let mut builder = Config::builder();
        if let Some(path) = &file {
            if !path.is_file() {
                return Err(ConfigError::File(format!("{} does not exist or is not a file", path.display())));
            }
            let from_file = Config::builder()
                .add_source(File::from(path.as_path()).format(FileFormat::Toml).required(true))
                .build()
                .map_err(|e| ConfigError::File(e.to_string()))?;
            let keys = from_file.collect().map_err(|e| ConfigError::File(e.to_string()))?;
            unknown.extend(known::unknown_file_keys(keys.keys().map(String::as_str), &path.display().to_string()));
            builder = builder.add_source(from_file);
        }
        unknown.extend(known::unknown_variables(fa_env.keys().map(String::as_str)));
        if !unknown.is_empty() {
            let first = unknown.remove(0);
            return Err(ConfigError::Unknown { first, others: unknown });
        }
        // No `try_parsing`: it would turn a value like "0312345678" into a
        // number and drop the leading zero.
        builder = builder.add_source(
            Environment::with_prefix(PREFIX.trim_end_matches('_')).prefix_separator("_").source(Some(fa_env)),
        );
        let merged = builder.build().map_err(|e| ConfigError::File(e.to_string()))?;
        let table =
            merged.try_deserialize::<HashMap<String, config::Value>>().map_err(|e| ConfigError::File(e.to_string()))?;

        let mut values = HashMap::new();
        for (key, value) in table {
            let text =
                value.into_string().map_err(|e| ConfigError::invalid(&format!("{PREFIX}{}", key.to_uppercase()), e))?;
            values.insert(key.to_lowercase(), text);
        }
        // Standard variables without our prefix.
        for var in ["RUST_LOG", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"] {
            if let Some(v) = env.get(var) {
                values.insert(var.to_owned(), v.clone());
            }
        }
        Ok(Self { values })
    }

    /// The raw text of `variable`, when set and not blank.
    pub fn get(&self, variable: &str) -> Option<&str> {
        let key = variable.strip_prefix(PREFIX).map(str::to_lowercase).unwrap_or_else(|| variable.to_owned());
        self.values.get(&key).map(String::as_str).map(str::trim).filter(|v| !v.is_empty())
    }

    /// The text of `variable`, or `default`.
    pub fn string_or(&self, variable: &str, default: &str) -> String {
        self.get(variable).unwrap_or(default).to_owned()
    }

    /// A required secret; `hint` says how to produce one.
    pub fn required_secret(&self, variable: &str, hint: &str) -> Result<SecretString, ConfigError> {
        self.get(variable)
            .map(|v| SecretString::from(v.to_owned()))
            .ok_or_else(|| ConfigError::Missing { variable: variable.to_owned(), hint: hint.to_owned() })
    }

    /// The admin API's bearer token, `FA_SF_ADMIN_TOKEN`: at least
    /// [`MIN_ADMIN_TOKEN_CHARS`] visible ASCII characters. The admin API takes
    /// private keys; a short token (`x` would do before) can be guessed.
    /// The error never quotes the value.
    pub fn admin_token(&self) -> Result<SecretString, ConfigError> {
        use secrecy::ExposeSecret as _;
        const VARIABLE: &str = "FA_SF_ADMIN_TOKEN";
        let token = self.required_secret(VARIABLE, ADMIN_TOKEN_HINT)?;
        let text = token.expose_secret();
        if !text.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ConfigError::invalid(
                VARIABLE,
                format!(
                    "it holds blanks or characters other than visible ASCII, which no HTTP header carries{ADMIN_TOKEN_HINT}"
                ),
            ));
        }
        let length = text.chars().count();
        if length < MIN_ADMIN_TOKEN_CHARS {
            return Err(ConfigError::invalid(
                VARIABLE,
                format!("it has {length} characters; it needs at least {MIN_ADMIN_TOKEN_CHARS}{ADMIN_TOKEN_HINT}"),
            ));
        }
        Ok(token)
    }

    /// A secret with a default (a URL that may carry a password).
    pub fn secret_or(&self, variable: &str, default: &str) -> SecretString {
        SecretString::from(self.string_or(variable, default))
    }

    /// A value parsed by [`FromStr`], or `default`.
    pub fn parse_or<T>(&self, variable: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.get(variable) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|e| ConfigError::invalid(variable, format!("{text:?}: {e}"))),
        }
    }

    /// A duration in the humantime form (`30s`, `24h`, `365d`), or `default`.
    pub fn duration_or(&self, variable: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(variable) {
            None => Ok(default),
            Some(text) => match humantime::parse_duration(text) {
                Ok(d) if !d.is_zero() => Ok(d),
                Ok(_) => Err(ConfigError::invalid(variable, format!("{text:?}: must be longer than zero"))),
                Err(e) => Err(ConfigError::invalid(variable, format!("{text:?}: {e} (write e.g. 30s, 24h or 365d)"))),
            },
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object a line, for Kubernetes.
    Json,
    /// Human-readable, for a terminal.
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            _ => Err("expected json or pretty".to_owned()),
        }
    }
}

/// What every service needs: the broker, the database, its HTTP address and
/// how to log.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    /// The binary's name, also the AMQP `app_id` and the metrics' `service`.
    pub service: &'static str,
    /// `FA_SF_AMQP_URL`; secret, since it may carry a password.
    pub amqp_url: SecretString,
    /// The certificates of `FA_SF_AMQP_CA_FILE` (PEM): for `amqps://`, the
    /// authorities trusted to sign RabbitMQ's certificate besides the
    /// system's own.
    pub amqp_tls_roots: Option<String>,
    /// `FA_SF_DATABASE_URL`; secret, since it may carry a password.
    pub database_url: SecretString,
    /// `FA_SF_HTTP_ADDR`.
    pub http_addr: SocketAddr,
    /// `FA_SF_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `RUST_LOG`.
    pub log_filter: String,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: traces are exported only when set.
    pub otlp_endpoint: Option<String>,
}

/// The defaults of runtime.md.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// The defaults of runtime.md.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/fa_salesforce";

impl CommonConfig {
    /// Reads the common values; `default_http_addr` is the service's own port.
    pub fn from_settings(
        settings: &Settings,
        service: &'static str,
        default_http_addr: &str,
    ) -> Result<Self, ConfigError> {
        let amqp_url = settings.string_or("FA_SF_AMQP_URL", DEFAULT_AMQP_URL);
        if !(amqp_url.starts_with("amqp://") || amqp_url.starts_with("amqps://")) {
            return Err(ConfigError::invalid("FA_SF_AMQP_URL", "must start with amqp:// or amqps://"));
        }
        let amqp_tls_roots = match settings.get("FA_SF_AMQP_CA_FILE") {
            // A CA for a plain connection protects nothing: the setting says
            // TLS was meant (the production overlay sets it), so say so.
            Some(_) if !amqp_url.starts_with("amqps://") => {
                return Err(ConfigError::invalid(
                    "FA_SF_AMQP_URL",
                    "must start with amqps:// when FA_SF_AMQP_CA_FILE is set (RabbitMQ's TLS port is usually 5671)",
                ));
            }
            Some(path) => Some(read_certificates("FA_SF_AMQP_CA_FILE", path)?),
            None => None,
        };
        let database_url = settings.string_or("FA_SF_DATABASE_URL", DEFAULT_DATABASE_URL);
        if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
            return Err(ConfigError::invalid("FA_SF_DATABASE_URL", "must start with postgres://"));
        }
        let http_addr = settings.parse_or(
            "FA_SF_HTTP_ADDR",
            default_http_addr.parse().map_err(|e| ConfigError::invalid("FA_SF_HTTP_ADDR", e))?,
        )?;
        Ok(Self {
            service,
            amqp_url: SecretString::from(amqp_url),
            amqp_tls_roots,
            database_url: SecretString::from(database_url),
            http_addr,
            log_format: settings.parse_or("FA_SF_LOG_FORMAT", LogFormat::Json)?,
            log_filter: settings.string_or("RUST_LOG", "info"),
            otlp_endpoint: settings.get("OTEL_EXPORTER_OTLP_ENDPOINT").map(str::to_owned),
        })
    }
}

/// The PEM certificates in the file at `path`, read at start so that a
/// wrong path stops the service with the variable's name, not a TLS error
/// on every reconnection.
fn read_certificates(variable: &str, path: &str) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::invalid(variable, format!("cannot read {path}: {e}")))?;
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(ConfigError::invalid(
            variable,
            format!("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----): name the CA's certificate file"),
        ));
    }
    Ok(text)
}

/// The shortest admin token accepted: 32 characters (`openssl rand -hex 32`
/// gives 64).
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// How to make the admin API's bearer token, for the error naming it.
pub const ADMIN_TOKEN_HINT: &str = " (a long random string, the admin API's bearer token: `openssl rand -hex 32`)";

/// A Salesforce REST API version, `vNN.N` (`FA_SF_SALESFORCE_API_VERSION`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersion(String);

impl ApiVersion {
    /// As it appears in REST paths: `v61.0`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ApiVersion {
    /// fa-salesforce's [`DEFAULT_API_VERSION`](fa_salesforce::DEFAULT_API_VERSION),
    /// the version its client calls with unless told otherwise.
    fn default() -> Self {
        Self(fa_salesforce::DEFAULT_API_VERSION.to_owned())
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ApiVersion {
    type Err = String;

    /// Accepts `v61.0` and `61.0`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let number = s.strip_prefix('v').unwrap_or(s);
        let valid = match number.split_once('.') {
            Some((major, "0")) => !major.is_empty() && major.len() <= 3 && major.bytes().all(|b| b.is_ascii_digit()),
            _ => false,
        };
        if valid { Ok(Self(format!("v{number}"))) } else { Err("expected a REST API version such as v61.0".to_owned()) }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use secrecy::ExposeSecret;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_env_map(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = settings(&[]).expect("empty environment is valid");
        let c = CommonConfig::from_settings(&s, "importer", "127.0.0.1:8081").expect("defaults are valid");
        assert_eq!(c.amqp_url.expose_secret(), DEFAULT_AMQP_URL);
        assert_eq!(c.database_url.expose_secret(), DEFAULT_DATABASE_URL);
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:8081");
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.log_filter, "info");
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("fa-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("c.toml");
        let mut f = std::fs::File::create(&path).expect("file");
        writeln!(f, "http_addr = \"0.0.0.0:9000\"\nlog_format = \"pretty\"\nimport_max_records_per_run = 500")
            .expect("write");
        let s = settings(&[("FA_SF_CONFIG", path.to_str().expect("utf-8 path")), ("FA_SF_LOG_FORMAT", "json")])
            .expect("valid");
        let c = CommonConfig::from_settings(&s, "importer", "127.0.0.1:8081").expect("valid");
        assert_eq!(c.http_addr.to_string(), "0.0.0.0:9000");
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(s.parse_or("FA_SF_IMPORT_MAX_RECORDS_PER_RUN", 2000u32), Ok(500));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn digits_with_a_leading_zero_stay_text() {
        let s = settings(&[("FA_SF_TOKEN_REQUESTERS", "0312345678")]).expect("valid");
        assert_eq!(s.get("FA_SF_TOKEN_REQUESTERS"), Some("0312345678"));
    }

    #[test]
    fn errors_name_the_variable_in_one_line() {
        fn check(pairs: &[(&str, &str)], expected: &str) {
            let s = settings(pairs).expect("layers merge");
            let err = CommonConfig::from_settings(&s, "importer", "127.0.0.1:8081")
                .map(|_| ())
                .and_then(|()| s.duration_or("FA_SF_IMPORT_INTERVAL", Duration::from_secs(1)).map(|_| ()))
                .and_then(|()| s.admin_token().map(|_| ()))
                .expect_err("must fail");
            let text = err.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert!(text.starts_with(expected), "{text:?} does not start with {expected:?}");
        }
        check(&[("FA_SF_HTTP_ADDR", "localhost")], "FA_SF_HTTP_ADDR is invalid");
        check(&[("FA_SF_LOG_FORMAT", "xml")], "FA_SF_LOG_FORMAT is invalid");
        check(&[("FA_SF_AMQP_URL", "http://x")], "FA_SF_AMQP_URL is invalid");
        let tls = ("FA_SF_AMQP_URL", "amqps://importer:pw@rabbit.example.internal:5671/%2f");
        check(&[tls, ("FA_SF_AMQP_CA_FILE", "/nonexistent/ca.crt")], "FA_SF_AMQP_CA_FILE is invalid: cannot read");
        check(&[tls, ("FA_SF_AMQP_CA_FILE", "Cargo.toml")], "FA_SF_AMQP_CA_FILE is invalid: Cargo.toml holds no PEM");
        check(&[("FA_SF_AMQP_CA_FILE", "Cargo.toml")], "FA_SF_AMQP_URL is invalid: must start with amqps://");
        check(&[("FA_SF_IMPORT_INTERVAL", "3x")], "FA_SF_IMPORT_INTERVAL is invalid");
        check(&[("FA_SF_IMPORT_INTERVAL", "0s")], "FA_SF_IMPORT_INTERVAL is invalid");
        check(&[], "FA_SF_ADMIN_TOKEN is required but not set (a long random string");
        check(&[("FA_SF_ADMIN_TOKEN", "   ")], "FA_SF_ADMIN_TOKEN is required");
    }

    #[test]
    fn an_admin_token_needs_32_visible_characters_and_is_never_quoted() {
        let token = |value: &str| settings(&[("FA_SF_ADMIN_TOKEN", value)]).expect("layers merge").admin_token();
        for short in ["Zq", "test-admin-token", "0123456789abcdef0123456789abcde"] {
            let text = token(short).expect_err(short).to_string();
            assert!(text.starts_with("FA_SF_ADMIN_TOKEN is invalid"), "{text}");
            assert!(text.contains(&format!("it has {} characters; it needs at least 32", short.len())), "{text}");
            assert!(text.contains("openssl rand -hex 32"), "{text}");
            assert!(!text.contains(short), "the value is never quoted: {text}");
        }
        let spaced = "0123456789abcdef 0123456789abcdef";
        let text = token(spaced).expect_err("a blank").to_string();
        assert!(text.contains("visible ASCII") && !text.contains(spaced), "{text}");
        let good = "0123456789abcdef0123456789abcdef";
        assert_eq!(token(good).expect("32 characters").expose_secret(), good);
    }

    #[test]
    fn api_versions_are_checked() {
        fn check(input: &str, expected: Option<&str>) {
            assert_eq!(input.parse::<ApiVersion>().ok().as_ref().map(ApiVersion::as_str), expected, "{input}");
        }
        check("v61.0", Some("v61.0"));
        check("62.0", Some("v62.0"));
        check("v61", None);
        check("latest", None);
        check("v61.1", None);
    }

    #[test]
    fn the_default_api_version_is_the_clients() {
        assert_eq!(ApiVersion::default().as_str(), fa_salesforce::DEFAULT_API_VERSION);
        assert_eq!(fa_salesforce::DEFAULT_API_VERSION.parse::<ApiVersion>(), Ok(ApiVersion::default()));
    }

    /// A TOML file of its own, removed with the value.
    struct TomlFile(std::path::PathBuf);

    impl TomlFile {
        fn new(text: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("fa-config-{}", uuid_like()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let path = dir.join("config.toml");
            std::fs::write(&path, text).expect("write");
            Self(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().expect("utf-8 path")
        }
    }

    impl Drop for TomlFile {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                std::fs::remove_dir_all(dir).ok();
            }
        }
    }

    /// Unique among the tests of this process, which run in parallel.
    fn uuid_like() -> String {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
    }

    #[test]
    fn an_unknown_variable_stops_with_the_closest_known_one() {
        let err = settings(&[("FA_SF_AMQP_ULR", "amqp://x"), ("FA_SF_ADMIN_TOKEN", "t")]).expect_err("a typo");
        assert_eq!(err.to_string(), "unknown variable FA_SF_AMQP_ULR; did you mean FA_SF_AMQP_URL?");
        let err = settings(&[("FA_SF_SOMETHING_ELSE", "1")]).expect_err("unknown");
        assert_eq!(err.to_string(), "unknown variable FA_SF_SOMETHING_ELSE (no program of the connector reads it)");
        // Every unknown name at once, on one line.
        let err = settings(&[("FA_SF_TIMEZON", "UTC"), ("FA_SF_AMQP_ULR", "amqp://x"), ("FA_SF_CONFG", "f")])
            .expect_err("typos");
        assert_eq!(
            err.to_string(),
            "unknown variable FA_SF_AMQP_ULR; did you mean FA_SF_AMQP_URL? (also unknown: FA_SF_CONFG, FA_SF_TIMEZON)"
        );
    }

    #[test]
    fn a_variable_another_binary_reads_is_accepted() {
        // One ConfigMap feeds every service: each starts with the others' variables set.
        let s = settings(&[
            ("FA_SF_TIMEZONE", "UTC"),
            ("FA_SF_KEY_ENCRYPTION_KEY", "k"),
            ("FA_SF_IMPORT_INTERVAL", "1h"),
            ("FA_SF_WRITER_MAX_BATCH", "10"),
            ("FA_SF_TOKEN_REQUESTERS", "importer"),
            ("FA_SF_TEST_AMQP_AUTHORITY", "guest:guest@127.0.0.1:5672"),
            ("OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=x"),
            ("POD_NAME", "x"),
        ])
        .expect("known to some binary");
        CommonConfig::from_settings(&s, "token-broker", "127.0.0.1:8080").expect("valid");
    }

    #[test]
    fn an_unknown_file_key_stops_with_the_closest_known_one() {
        let file = TomlFile::new("amqp_ulr = \"amqp://x\"\nhttp_addr = \"127.0.0.1:9000\"\ntimezone = \"UTC\"\n");
        let err = settings(&[("FA_SF_CONFIG", file.path())]).expect_err("a typo in the file");
        assert_eq!(
            err.to_string(),
            format!("unknown configuration key \"amqp_ulr\" in {}; did you mean \"amqp_url\"?", file.path())
        );
        // The file's keys first, then the variables.
        let err =
            settings(&[("FA_SF_CONFIG", file.path()), ("FA_SF_DATABASE_URI", "postgres://x")]).expect_err("typos");
        assert!(err.to_string().ends_with(r#"did you mean "amqp_url"? (also unknown: FA_SF_DATABASE_URI)"#), "{err}");
        // A table is not a setting: its name is unknown (and not read as a value).
        let file = TomlFile::new("[amqp]\nurl = \"amqp://x\"\n");
        let err = settings(&[("FA_SF_CONFIG", file.path())]).expect_err("a table");
        assert!(err.to_string().starts_with(r#"unknown configuration key "amqp" in "#), "{err}");
    }

    #[test]
    fn a_file_of_known_keys_is_read() {
        let file = TomlFile::new("AMQP_URL = \"amqp://file\"\nkey_encryption_key = \"k\"\n");
        let s = settings(&[("FA_SF_CONFIG", file.path())]).expect("known keys, in any case");
        assert_eq!(s.get("FA_SF_AMQP_URL"), Some("amqp://file"));
        assert_eq!(s.get("FA_SF_KEY_ENCRYPTION_KEY"), Some("k"));
    }

    #[test]
    fn a_missing_config_file_is_named() {
        let err = settings(&[("FA_SF_CONFIG", "/nonexistent/fa.toml")]).expect_err("must fail");
        assert!(err.to_string().contains("/nonexistent/fa.toml"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_values() {
        let s = settings(&[("FA_SF_ADMIN_TOKEN", "very-secret-token")]).expect("valid");
        assert!(!format!("{s:?}").contains("very-secret-token"));
    }
}
