//! Environment overrides: `SIPHON_<SECTION>_<KEY>` for every key of the
//! schema (`sip.trunk.password` is `SIPHON_SIP_TRUNK_PASSWORD`).
//!
//! The variable list is derived from the default config's keys, so a new key
//! gets its variable without anyone listing it here.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use toml::{Table, Value};

use super::error::ConfigError;
use super::schema;

/// Prefix of every variable the config reads.
pub const ENV_PREFIX: &str = "SIPHON_";

/// Variables under the prefix that are not config keys: the CLI reads them.
pub const RESERVED_VARS: &[&str] = &["SIPHON_CONFIG"];

/// Where environment variables come from: the process, or a map in tests.
pub trait Env {
    /// The value of `name`; `None` when unset or not valid Unicode.
    fn var(&self, name: &str) -> Option<String>;
    /// The names of all set variables that start with `prefix`.
    fn names(&self, prefix: &str) -> Vec<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn names(&self, prefix: &str) -> Vec<String> {
        std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .filter(|name| name.starts_with(prefix))
            .collect()
    }
}

impl<S: BuildHasher> Env for HashMap<String, String, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }

    fn names(&self, prefix: &str) -> Vec<String> {
        self.keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }

    fn names(&self, prefix: &str) -> Vec<String> {
        self.keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }
}

/// The variable for a key path: `["sip", "trunk", "uri"]` -> `SIPHON_SIP_TRUNK_URI`.
pub(super) fn var_name(path: &[&str]) -> String {
    format!("{ENV_PREFIX}{}", path.join("_").to_ascii_uppercase())
}

/// Writes every `SIPHON_*` variable of `env` into `table` (over the file's
/// values), typed like the key's default in `defaults`. Bad and unknown
/// variables become errors. Returns which variable set which dotted key.
pub(super) fn apply(
    env: &impl Env,
    defaults: &Table,
    table: &mut Table,
    errors: &mut Vec<ConfigError>,
) -> Vec<(String, String)> {
    let known: HashMap<String, (Vec<&str>, &Value)> = schema::leaves(defaults)
        .into_iter()
        .map(|(path, value)| (var_name(&path), (path, value)))
        .collect();
    let mut names = env.names(ENV_PREFIX);
    names.sort();
    let mut origins = Vec::new();
    for name in names {
        if RESERVED_VARS.contains(&name.as_str()) {
            continue;
        }
        let Some((path, default)) = known.get(&name) else {
            errors.push(ConfigError::new(
                name,
                "unknown variable: no config key has this name",
            ));
            continue;
        };
        let Some(raw) = env.var(&name) else {
            errors.push(ConfigError::new(name, "value is not valid Unicode"));
            continue;
        };
        match parse_var(&raw, default) {
            Ok(value) => {
                insert(table, path, value);
                origins.push((path.join("."), name));
            }
            Err(reason) => errors.push(ConfigError::new(name, reason)),
        }
    }
    origins
}

/// Reads a variable as the TOML type of `like`: arrays are comma-separated.
fn parse_var(raw: &str, like: &Value) -> Result<Value, String> {
    match like {
        Value::Boolean(_) => match raw.trim() {
            "true" => Ok(Value::Boolean(true)),
            "false" => Ok(Value::Boolean(false)),
            _ => Err(format!("expected true or false, got {raw:?}")),
        },
        Value::Integer(_) => raw
            .trim()
            .parse()
            .map(Value::Integer)
            .map_err(|_| format!("expected an integer, got {raw:?}")),
        Value::Array(_) => Ok(Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_owned()))
                .collect(),
        )),
        // Strings are taken verbatim: a secret may have meaningful spaces.
        _ => Ok(Value::String(raw.to_owned())),
    }
}

/// Sets `path` in `table`, creating missing tables. Where the file has a
/// non-table in the way, the reader already reports that key, so skip.
fn insert(table: &mut Table, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = table;
    for parent in parents {
        let entry = current
            .entry(parent.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        let Value::Table(inner) = entry else {
            return;
        };
        current = inner;
    }
    current.insert(last.to_string(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_join_sections_with_underscores() {
        assert_eq!(
            var_name(&["sip", "trunk", "password"]),
            "SIPHON_SIP_TRUNK_PASSWORD"
        );
        assert_eq!(
            var_name(&["limits", "max_calls"]),
            "SIPHON_LIMITS_MAX_CALLS"
        );
    }

    #[test]
    fn variables_take_the_type_of_the_default() {
        let list = Value::Array(vec![]);
        assert_eq!(
            parse_var(" opus, PCMU ,", &list),
            Ok(Value::Array(vec!["opus".into(), "PCMU".into()]))
        );
        assert_eq!(parse_var("", &list), Ok(Value::Array(vec![])));
        assert_eq!(parse_var("42", &Value::Integer(0)), Ok(Value::Integer(42)));
        assert!(parse_var("4x", &Value::Integer(0)).is_err());
        assert_eq!(parse_var("false", &Value::Boolean(true)), Ok(false.into()));
        assert!(parse_var("yes", &Value::Boolean(true)).is_err());
        assert_eq!(parse_var(" s ", &Value::from("")), Ok(Value::from(" s ")));
    }

    #[test]
    fn insert_creates_missing_tables() {
        let mut table = Table::new();
        insert(&mut table, &["sip", "trunk", "uri"], Value::from("sip:x"));
        assert_eq!(table["sip"]["trunk"]["uri"].as_str(), Some("sip:x"));
    }
}
