//! The names the connector knows: every `FA_SF_*` variable that some program
//! of this repository reads, in one list ([`VARIABLES`]), and the check that
//! turns any other name into an error suggesting the closest known one.
//!
//! A name is a typo only if *no* program reads it, not merely the service
//! at hand: in Kubernetes one ConfigMap (generated from `k8s/base/connector-config.env`) feeds
//! every service, and a developer's shell or a shared TOML file holds the
//! variables of all three, so the token-broker must start with
//! `FA_SF_TIMEZONE` set. What the check catches is `FA_SF_AMQP_ULR` or
//! `amqp_ulr = ...`, which used to be ignored while the default was used.
//!
//! Keeping the list right:
//! - A new variable goes here in the same change that first reads it (the
//!   test `every_fa_sf_name_in_the_repository_is_known` fails otherwise).
//! - A variable no longer read stays here (with its `read_by` saying so) for
//!   as long as deployed ConfigMaps may still set it: removing it would stop
//!   every service that meets an old ConfigMap.
//! - Variables only tools and tests read (`FA_SF_TEST_*`) are listed too: a
//!   developer exports them in the same shell that runs a service.

/// Where a known name may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A service's setting: an environment variable, or in the TOML file of
    /// `FA_SF_CONFIG` the name without `FA_SF_` in lower case.
    Setting,
    /// An environment variable only: the name of the file itself, and the
    /// variables of tools and tests, which never read the file.
    EnvironmentOnly,
}

/// A variable some program of the repository reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    /// The full name, `FA_SF_...`.
    pub name: &'static str,
    /// Whether the TOML file may hold it.
    pub kind: Kind,
    /// Which programs read it (runtime.md's "used by", for tools and tests
    /// the file that reads it).
    pub read_by: &'static str,
}

const fn setting(name: &'static str, read_by: &'static str) -> Variable {
    Variable { name, kind: Kind::Setting, read_by }
}

const fn environment_only(name: &'static str, read_by: &'static str) -> Variable {
    Variable { name, kind: Kind::EnvironmentOnly, read_by }
}

/// Every `FA_SF_*` variable of the repository: the list of runtime.md (the runtime
/// contract in `../shared/contracts/`, outside this repository) plus the
/// variables runtime.md leaves out (`FA_SF_AMQP_CA_FILE`,
/// `FA_SF_KEY_ENCRYPTION_KEY_PREVIOUS`, `FA_SF_TOKEN_REQUESTERS`,
/// `FA_SF_WRITER_MAX_BATCH`) and those of tools and tests. Standard
/// variables without the prefix (`RUST_LOG`, `OTEL_*`) are not the
/// connector's to judge and are never checked.
pub const VARIABLES: &[Variable] = &[
    setting("FA_SF_AMQP_URL", "all services; frontagent-stub"),
    setting("FA_SF_AMQP_CA_FILE", "all services"),
    setting("FA_SF_DATABASE_URL", "all services"),
    setting("FA_SF_HTTP_ADDR", "all services; sfsim"),
    setting("FA_SF_LOG_FORMAT", "all services"),
    setting("FA_SF_SALESFORCE_API_VERSION", "all services"),
    setting("FA_SF_ADMIN_TOKEN", "token-broker, importer"),
    setting("FA_SF_KEY_ENCRYPTION_KEY", "token-broker"),
    setting("FA_SF_KEY_ENCRYPTION_KEY_PREVIOUS", "token-broker"),
    setting("FA_SF_LOGIN_URL_ALLOWLIST", "token-broker"),
    setting("FA_SF_TOKEN_REQUESTERS", "token-broker"),
    setting("FA_SF_IMPORT_INTERVAL", "importer"),
    setting("FA_SF_IMPORT_MAX_RECORDS_PER_RUN", "importer"),
    setting("FA_SF_IMPORT_LOOKBACK", "importer"),
    setting("FA_SF_TIMEZONE", "activity-writer"),
    setting("FA_SF_WRITER_MAX_BATCH", "activity-writer"),
    environment_only(super::CONFIG_FILE_VAR, "all services: names the TOML file"),
    environment_only("FA_SF_TEST_ADMIN_DATABASE_URL", "fa-testkit; deploy/local/sweep-test-leftovers.sh"),
    environment_only("FA_SF_TEST_AMQP_AUTHORITY", "fa-testkit"),
    environment_only("FA_SF_CONFORMANCE_PYTHON", "sfsim's conformance test"),
    environment_only("FA_SF_BIN_DIR", "deploy/local/run.sh: where `make run` takes the binaries from"),
];

/// A name no program of the connector reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unknown {
    /// A key of the TOML file.
    Key {
        /// As written in the file.
        key: String,
        /// The file, as `FA_SF_CONFIG` names it.
        file: String,
        /// The closest known key, when one is close.
        suggestion: Option<&'static str>,
    },
    /// An `FA_SF_*` environment variable.
    Variable {
        /// As set.
        name: String,
        /// The closest known variable, when one is close.
        suggestion: Option<&'static str>,
    },
}

impl Unknown {
    /// The name alone, for a list of further unknown names.
    pub fn name(&self) -> String {
        match self {
            Self::Key { key, .. } => format!("{key:?}"),
            Self::Variable { name, .. } => name.clone(),
        }
    }
}

impl std::fmt::Display for Unknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Key { key, file, suggestion } => {
                write!(f, "unknown configuration key {key:?} in {file}")?;
                match suggestion {
                    Some(known) => write!(f, "; did you mean {:?}?", file_key(known)),
                    None => f.write_str(" (no program of the connector reads it)"),
                }
            }
            Self::Variable { name, suggestion } => {
                write!(f, "unknown variable {name}")?;
                match suggestion {
                    Some(known) => write!(f, "; did you mean {known}?"),
                    None => f.write_str(" (no program of the connector reads it)"),
                }
            }
        }
    }
}

/// The part of a variable's name after `FA_SF_`, in lower case: a TOML key.
fn file_key(name: &str) -> String {
    name.strip_prefix(super::PREFIX).unwrap_or(name).to_lowercase()
}

/// Whether `key`, a key of the TOML file, is a setting. Case does not
/// matter, as it does not when the value is read.
pub fn is_known_file_key(key: &str) -> bool {
    let key = key.to_lowercase();
    VARIABLES.iter().any(|v| v.kind == Kind::Setting && file_key(v.name) == key)
}

/// Whether `name`, an environment variable, is known; a name without
/// `FA_SF_` is not the connector's and counts as known. After the prefix
/// case does not matter, as it does not when the value is read.
pub fn is_known_variable(name: &str) -> bool {
    match name.strip_prefix(super::PREFIX) {
        None => true,
        Some(rest) => {
            let rest = rest.to_lowercase();
            VARIABLES.iter().any(|v| file_key(v.name) == rest)
        }
    }
}

/// The unknown keys of the file `file`, sorted.
pub fn unknown_file_keys<'a>(keys: impl IntoIterator<Item = &'a str>, file: &str) -> Vec<Unknown> {
    let mut keys: Vec<&str> = keys.into_iter().filter(|k| !is_known_file_key(k)).collect();
    keys.sort_unstable();
    let settings = || VARIABLES.iter().filter(|v| v.kind == Kind::Setting).map(|v| v.name);
    keys.into_iter()
        .map(|key| Unknown::Key { key: key.to_owned(), file: file.to_owned(), suggestion: closest(key, settings()) })
        .collect()
}

/// The unknown `FA_SF_*` variables among `names`, sorted.
pub fn unknown_variables<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<Unknown> {
    let mut names: Vec<&str> = names.into_iter().filter(|n| !is_known_variable(n)).collect();
    names.sort_unstable();
    names
        .into_iter()
        .map(|name| {
            let rest = name.strip_prefix(super::PREFIX).unwrap_or(name);
            Unknown::Variable { name: name.to_owned(), suggestion: closest(rest, VARIABLES.iter().map(|v| v.name)) }
        })
        .collect()
}

/// The known name closest to `input` (compared without `FA_SF_`, ignoring
/// case), if it is close enough to be the name meant: at most one edit in
/// four characters of the known name, and at most three edits, where an
/// edit inserts, deletes or changes a character or swaps two neighbours
/// (`ulr` for `url` is one). On a tie the first in `candidates` wins.
pub fn closest(input: &str, candidates: impl IntoIterator<Item = &'static str>) -> Option<&'static str> {
    let input = file_key(input);
    candidates
        .into_iter()
        .map(|name| {
            let known = file_key(name);
            (name, edit_distance(&input, &known), known.chars().count())
        })
        .filter(|&(_, distance, length)| distance <= (length / 4).clamp(1, 3))
        .min_by_key(|&(_, distance, _)| distance)
        .map(|(name, _, _)| name)
}

/// The optimal string alignment distance: Levenshtein's insertions,
/// deletions and substitutions, plus swaps of two neighbouring characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows of the table: i - 2, i - 1 and i.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let substitution = previous[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            let mut distance = substitution.min(previous[j] + 1).min(current[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                distance = distance.min(before[j - 2] + 1);
            }
            current[j] = distance;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits_and_swaps() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("amqp_url", "amqp_url"), 0);
        assert_eq!(edit_distance("amqp_ulr", "amqp_url"), 1, "a swap of neighbours is one edit");
        assert_eq!(edit_distance("http_adr", "http_addr"), 1);
        assert_eq!(edit_distance("time_zone", "timezone"), 1);
        assert_eq!(edit_distance("databse_url", "database_url"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("ca", "abc"), 3, "optimal string alignment edits a swapped pair no further");
        assert_eq!(edit_distance("タイムゾーン", "タイムゾン"), 1, "characters, not bytes");
    }

    #[test]
    fn the_closest_known_name_is_suggested_only_when_close() {
        let all = || VARIABLES.iter().map(|v| v.name);
        assert_eq!(closest("AMQP_ULR", all()), Some("FA_SF_AMQP_URL"));
        assert_eq!(closest("amqp_ulr", all()), Some("FA_SF_AMQP_URL"));
        assert_eq!(closest("FA_SF_DATABASE_URI", all()), Some("FA_SF_DATABASE_URL"));
        assert_eq!(closest("TIME_ZONE", all()), Some("FA_SF_TIMEZONE"));
        assert_eq!(closest("IMPORT_INTERVALL", all()), Some("FA_SF_IMPORT_INTERVAL"));
        assert_eq!(closest("IMPORT_LOOK_BACK", all()), Some("FA_SF_IMPORT_LOOKBACK"));
        assert_eq!(closest("KEY_ENCRYPTION_KEY_PREVOIUS", all()), Some("FA_SF_KEY_ENCRYPTION_KEY_PREVIOUS"));
        assert_eq!(closest("KEY_ENCRYPTION_KEYS", all()), Some("FA_SF_KEY_ENCRYPTION_KEY"));
        // Too far from every name to be a typo of one.
        assert_eq!(closest("AMQP", all()), None);
        assert_eq!(closest("PORT", all()), None);
        assert_eq!(closest("API_VERSION", all()), None);
        assert_eq!(closest("COLOR", all()), None);
        assert_eq!(closest("", all()), None);
    }

    #[test]
    fn a_variable_of_any_program_is_known() {
        // Each service's own, those of the other services (one ConfigMap
        // feeds all three), and those of the file, tools and tests.
        for name in [
            "FA_SF_AMQP_URL",
            "FA_SF_TIMEZONE",
            "FA_SF_KEY_ENCRYPTION_KEY",
            "FA_SF_IMPORT_LOOKBACK",
            "FA_SF_WRITER_MAX_BATCH",
            "FA_SF_CONFIG",
            "FA_SF_TEST_ADMIN_DATABASE_URL",
            "FA_SF_TEST_AMQP_AUTHORITY",
            "FA_SF_CONFORMANCE_PYTHON",
            // Read as FA_SF_LOG_FORMAT: only the prefix's case matters.
            "FA_SF_Log_Format",
            // Not the connector's to judge.
            "RUST_LOG",
            "OTEL_SERVICE_NAME",
            "OTEL_RESOURCE_ATTRIBUTES",
            "POD_NAME",
            "fa_sf_amqp_ulr",
        ] {
            assert!(is_known_variable(name), "{name}");
        }
        for name in ["FA_SF_AMQP_ULR", "FA_SF_", "FA_SF_TEST_", "FA_SF_ADMIN_TOKEN_FILE", "FA_SF_FA_SF_AMQP_URL"] {
            assert!(!is_known_variable(name), "{name}");
        }
    }

    #[test]
    fn a_file_key_is_known_only_when_it_is_a_setting() {
        for key in ["amqp_url", "timezone", "import_max_records_per_run", "writer_max_batch", "AMQP_URL"] {
            assert!(is_known_file_key(key), "{key}");
        }
        // The file's own name and the tools' variables are never read from
        // it; nor is the prefixed name, nor a standard variable.
        for key in ["amqp_ulr", "config", "test_admin_database_url", "fa_sf_amqp_url", "rust_log", "amqp", ""] {
            assert!(!is_known_file_key(key), "{key}");
        }
    }

    #[test]
    fn unknown_names_are_reported_sorted_with_their_suggestion() {
        let keys = unknown_file_keys(["timezone", "zzz", "amqp_ulr", "http_addr"], "/etc/fa/config.toml");
        assert_eq!(
            keys.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                r#"unknown configuration key "amqp_ulr" in /etc/fa/config.toml; did you mean "amqp_url"?"#,
                r#"unknown configuration key "zzz" in /etc/fa/config.toml (no program of the connector reads it)"#,
            ]
        );
        let variables = unknown_variables(["FA_SF_TIMEZON", "RUST_LOG", "FA_SF_AMQP_ULR", "FA_SF_TIMEZONE"]);
        assert_eq!(
            variables.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "unknown variable FA_SF_AMQP_ULR; did you mean FA_SF_AMQP_URL?",
                "unknown variable FA_SF_TIMEZON; did you mean FA_SF_TIMEZONE?",
            ]
        );
        // The file holds settings only: its suggestions are settings too.
        assert_eq!(
            unknown_file_keys(["confg"], "f")[0],
            Unknown::Key { key: "confg".to_owned(), file: "f".to_owned(), suggestion: None }
        );
        assert_eq!(
            unknown_variables(["FA_SF_CONFG"])[0],
            Unknown::Variable { name: "FA_SF_CONFG".to_owned(), suggestion: Some("FA_SF_CONFIG") }
        );
    }

    #[test]
    fn the_list_has_each_name_once_with_the_prefix() {
        for (i, v) in VARIABLES.iter().enumerate() {
            assert!(v.name.starts_with(super::super::PREFIX) && v.name.len() > super::super::PREFIX.len(), "{v:?}");
            assert!(v.name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'), "{v:?}");
            assert!(VARIABLES[..i].iter().all(|w| w.name != v.name), "{} is listed twice", v.name);
        }
    }

    /// Every `FA_SF_*` name written anywhere in the repository (code, docs,
    /// manifests, scripts) and in runtime.md, when it is beside the
    /// repository, is in [`VARIABLES`]: a variable added without adding it
    /// here would stop every service that meets it.
    #[test]
    fn every_fa_sf_name_in_the_repository_is_known() {
        // Names the tests write on purpose, as the typos they check.
        const TYPOS: &[&str] = &[
            "FA_SF_AMQP_ULR",
            "FA_SF_TIMEZON",
            "FA_SF_CONFG",
            "FA_SF_DATABASE_URI",
            "FA_SF_ADMIN_TOKEN_FILE",
            "FA_SF_FA_SF_AMQP_URL",
            "FA_SF_SOMETHING_ELSE",
        ];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = Vec::new();
        collect_files(&root, &mut files);
        let contract = root.join("../shared/contracts/runtime.md");
        if contract.is_file() {
            files.push(contract);
        }
        assert!(files.len() > 50, "the walk found the repository: {}", files.len());
        let mut unknown = Vec::new();
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else { continue };
            for (at, _) in text.match_indices(super::super::PREFIX) {
                let name: String = text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                // `FA_SF_*` and `FA_SF_TEST_*` in prose name families, not variables.
                if !name.ends_with('_') && !TYPOS.contains(&name.as_str()) && !is_known_variable(&name) {
                    unknown.push(format!("{name} in {}", file.display()));
                }
            }
        }
        assert!(unknown.is_empty(), "add these to VARIABLES (or TYPOS if a test means them):\n{}", unknown.join("\n"));
    }

    fn collect_files(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !(name.starts_with('.') || name == "target") {
                    collect_files(&path, files);
                }
            } else if [".rs", ".md", ".toml", ".yaml", ".yml", ".sh", ".json", "Makefile", "Dockerfile"]
                .iter()
                .any(|end| name.ends_with(end))
            {
                files.push(path);
            }
        }
    }
}
