//! Configuration, loaded once in two stages (STYLE.md 12).
//!
//! 1. **Schema** ([`FileConfig`]): the built-in defaults, overlaid by the TOML file, overlaid by
//!    environment variables, deserialised with unknown keys rejected.
//! 2. **Validation** ([`Settings`]): addresses parsed, ranges and orderings checked, paths
//!    resolved. Every error names the key at fault ([`ConfigError::key`]); the binary exits with
//!    code 64 (`EX_USAGE`) on any of them.
//!
//! Environment variables override single keys: `CLOUDPBX__<SECTION>__<KEY>`, e.g.
//! `CLOUDPBX__SIP__T1_MS=250`, `CLOUDPBX__DATA_DIR=/var/lib/cloudpbx`,
//! `CLOUDPBX__SIP__UDP_LISTEN=127.0.0.1:5060,[::1]:5060`. The double underscore after the prefix
//! keeps other `CLOUDPBX_*` variables (test settings, the operator credential) apart. Values are
//! read as TOML literals where they parse as one of the key's type, otherwise as strings; list
//! keys also take comma-separated strings.

mod schema;
mod settings;

pub use schema::{
    DatabaseSection, FileConfig, HttpSection, LogSection, RegistrarSection, RtpSection, SipSection,
    TftpSection,
};
pub use settings::{LogFormat, Settings, SipTimers};

use toml::{Table, Value};

/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "CLOUDPBX__";

/// Exit code for an invalid configuration (`EX_USAGE` from sysexits.h).
pub const EXIT_INVALID_CONFIG: i32 = 64;

/// A configuration that cannot be used, with the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {reason}")]
    Unreadable {
        /// The path given.
        path: String,
        /// Why it could not be read.
        reason: String,
    },
    /// The file is not valid TOML.
    #[error("config file {path} is not valid TOML: {reason}")]
    Syntax {
        /// The path given.
        path: String,
        /// The TOML parser's message, with line and column.
        reason: String,
    },
    /// A key is unknown, or its value has the wrong type.
    #[error("config key `{key}`: {reason}")]
    Schema {
        /// Dotted path of the key (`sip.t1_ms`).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A value has the right type but cannot be used.
    #[error("config key `{key}`: {reason}")]
    Invalid {
        /// Dotted path of the key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

impl ConfigError {
    /// Dotted path of the key at fault, when one is known.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Schema { key, .. } | Self::Invalid { key, .. } => Some(key),
            Self::Unreadable { .. } | Self::Syntax { .. } => None,
        }
    }

    pub(crate) fn invalid(key: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Loads the configuration: defaults, then the file at `path` (if any), then `env` overrides.
///
/// `env` is passed in (normally `std::env::vars()`) so tests need not touch the process
/// environment.
pub fn load(
    path: Option<&std::path::Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, ConfigError> {
    let text = match path {
        Some(path) => {
            Some(
                std::fs::read_to_string(path).map_err(|err| ConfigError::Unreadable {
                    path: path.display().to_string(),
                    reason: err.to_string(),
                })?,
            )
        }
        None => None,
    };
    let name = path.map(|p| p.display().to_string()).unwrap_or_default();
    let file = parse(text.as_deref(), &name, env)?;
    Settings::from_file_config(file)
}

/// Stage 1 on text already read: defaults, `text` and `env` merged into a [`FileConfig`].
pub fn parse(
    text: Option<&str>,
    file_name: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<FileConfig, ConfigError> {
    let mut table = defaults_table();
    if let Some(text) = text {
        let file: Table = text
            .parse()
            .map_err(|err: toml::de::Error| ConfigError::Syntax {
                path: file_name.to_owned(),
                reason: err.to_string(),
            })?;
        merge(&mut table, file);
    }
    let mut overrides: Vec<(String, String)> = env
        .into_iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX))
        .collect();
    overrides.sort();
    for (name, raw) in overrides {
        apply_env(&mut table, &name, &raw)?;
    }
    serde_path_to_error::deserialize(Value::Table(table)).map_err(|err| {
        let key = err.path().to_string();
        ConfigError::Schema {
            key,
            reason: err.into_inner().to_string(),
        }
    })
}

/// The built-in defaults as a TOML table (the base every file is merged onto).
pub fn defaults_table() -> Table {
    match Value::try_from(FileConfig::default()) {
        Ok(Value::Table(table)) => table,
        // FileConfig serialises to a table by construction (a struct of plain fields); an empty
        // table still yields the defaults through `#[serde(default)]`.
        _ => Table::new(),
    }
}

/// The built-in defaults printed as a commented TOML file (`cloudpbx config defaults`).
pub fn defaults_toml() -> String {
    toml::to_string_pretty(&FileConfig::default()).unwrap_or_default()
}

fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(base_section)), Value::Table(over_section)) => {
                merge(base_section, over_section);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn apply_env(table: &mut Table, name: &str, raw: &str) -> Result<(), ConfigError> {
    let path: Vec<String> = name[ENV_PREFIX.len()..]
        .split("__")
        .map(|part| part.to_ascii_lowercase())
        .collect();
    let dotted = path.join(".");
    if path.iter().any(String::is_empty) {
        return Err(ConfigError::Schema {
            key: dotted,
            reason: format!("malformed variable {name}"),
        });
    }
    let (leaf, sections) = match path.split_last() {
        Some(split) => split,
        None => return Ok(()),
    };
    let mut current = table;
    for section in sections {
        let entry = current
            .entry(section.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        current = match entry {
            Value::Table(inner) => inner,
            _ => {
                return Err(ConfigError::Schema {
                    key: dotted,
                    reason: format!("`{section}` is not a section (set by {name})"),
                });
            }
        };
    }
    let value = env_value(current.get(leaf), raw);
    current.insert(leaf.clone(), value);
    Ok(())
}

/// Reads an environment value guided by the type of the value it replaces.
fn env_value(existing: Option<&Value>, raw: &str) -> Value {
    let literal = format!("v = {raw}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"));
    match (existing, literal) {
        (Some(Value::String(_)), _) | (None, None) => Value::String(raw.to_owned()),
        (Some(Value::Array(_)), Some(Value::Array(items))) => Value::Array(items),
        (Some(Value::Array(_)), _) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_owned()))
                .collect(),
        ),
        (_, Some(literal)) => literal,
        (Some(_), None) => Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests;
