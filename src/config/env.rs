//! Environment overrides: `SIPHON_<SECTION>_<KEY>` for every key of the
//! schema (`sip.trunk.password` is `SIPHON_SIP_TRUNK_PASSWORD`).
//!
//! The variable list is derived from the default config's keys, so a new key
//! gets its variable without anyone listing it here.
//!
//! An array of tables has no defaults to derive names from, and a variable
//! cannot say where a new element would go; so only the elements the file
//! defines get variables, one per key: `users[0].password` is
//! `SIPHON_USERS_0_PASSWORD`. That is enough to keep secrets out of the file.

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
pub(super) fn var_name<S: AsRef<str>>(path: &[S]) -> String {
    let parts: Vec<&str> = path.iter().map(AsRef::as_ref).collect();
    format!("{ENV_PREFIX}{}", parts.join("_").to_ascii_uppercase())
}

/// Writes every `SIPHON_*` variable of `env` into `table` (over the file's
/// values), typed like the key's value in `template` (see `schema::template`).
/// Bad and unknown variables become errors. Returns which variable set which key.
pub(super) fn apply(
    env: &impl Env,
    template: &Table,
    table: &mut Table,
    errors: &mut Vec<ConfigError>,
) -> Vec<(String, String)> {
    let known: HashMap<String, (Vec<String>, &Value)> = schema::leaves(template)
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
            let reason = unknown(&name).to_string();
            errors.push(ConfigError::new(name, reason));
            continue;
        };
        let parsed = env
            .var(&name)
            .ok_or(VarError::NotUnicode)
            .and_then(|raw| parse_var(&raw, default));
        match parsed {
            Ok(value) => {
                insert(table, path, value);
                origins.push((schema::key_name(path), name));
            }
            Err(e) => errors.push(ConfigError::new(name, e.to_string())),
        }
    }
    origins
}

/// Why a `SIPHON_*` variable was not taken; the config error names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum VarError {
    /// No config key has this variable.
    #[error("unknown variable: no config key has this name")]
    Unknown,
    /// The name looks like an element of a list of tables (`SIPHON_USERS_…`),
    /// which only the elements the file has get.
    #[error(
        "unknown variable: {prefix}_<N>_<KEY> sets a key of element N (from 0) \
         of the [[{list}]] tables in the config file, and only of those it has"
    )]
    UnknownElement {
        /// The list's variable prefix: `SIPHON_USERS`.
        prefix: String,
        /// The list's key: `users`.
        list: String,
    },
    /// The value is not valid Unicode.
    #[error("value is not valid Unicode")]
    NotUnicode,
    /// A boolean key's variable is neither `true` nor `false`.
    #[error("expected true or false, got {0:?}")]
    NotBool(String),
    /// An integer key's variable is not an integer.
    #[error("expected an integer, got {raw:?}")]
    NotInteger {
        /// The variable's value.
        raw: String,
        /// Why it did not parse.
        #[source]
        source: std::num::ParseIntError,
    },
}

/// Reads a variable as the TOML type of `like`: arrays are comma-separated.
fn parse_var(raw: &str, like: &Value) -> Result<Value, VarError> {
    match like {
        Value::Boolean(_) => match raw.trim() {
            "true" => Ok(Value::Boolean(true)),
            "false" => Ok(Value::Boolean(false)),
            _ => Err(VarError::NotBool(raw.to_owned())),
        },
        Value::Integer(_) => {
            raw.trim()
                .parse()
                .map(Value::Integer)
                .map_err(|source| VarError::NotInteger {
                    raw: raw.to_owned(),
                    source,
                })
        }
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

/// Why `name` is not a config variable, with the rule for list elements
/// when it looks like one.
fn unknown(name: &str) -> VarError {
    for list in schema::list_keys() {
        let prefix = var_name(&list.split('.').collect::<Vec<_>>());
        if name.starts_with(&format!("{prefix}_")) {
            return VarError::UnknownElement { prefix, list };
        }
    }
    VarError::Unknown
}

/// Sets `path` in `table`, creating missing tables; an index segment steps
/// into an existing array element. Where the file has a non-table in the
/// way, the reader already reports that key, so skip.
fn insert(table: &mut Table, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = table;
    let mut segments = parents.iter();
    while let Some(segment) = segments.next() {
        let entry = current
            .entry(segment.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        let Some(inner) = child_table(entry, &mut segments) else {
            return;
        };
        current = inner;
    }
    current.insert(last.clone(), value);
}

/// The table `value` is, or for an array the element the next segment indexes.
fn child_table<'a>(
    value: &'a mut Value,
    segments: &mut std::slice::Iter<'_, String>,
) -> Option<&'a mut Table> {
    match value {
        Value::Table(inner) => Some(inner),
        Value::Array(items) => {
            let index = segments.next()?.parse::<usize>().ok()?;
            items.get_mut(index)?.as_table_mut()
        }
        _ => None,
    }
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
    fn bad_values_say_what_was_expected() {
        let err = parse_var("4x", &Value::Integer(0)).unwrap_err();
        assert_eq!(err.to_string(), "expected an integer, got \"4x\"");
        assert!(std::error::Error::source(&err).is_some());
        let err = parse_var("yes", &Value::Boolean(true)).unwrap_err();
        assert_eq!(err.to_string(), "expected true or false, got \"yes\"");
        assert_eq!(
            unknown("SIPHON_NOPE").to_string(),
            "unknown variable: no config key has this name"
        );
        assert_eq!(
            unknown("SIPHON_USERS_3_PASSWORD").to_string(),
            "unknown variable: SIPHON_USERS_<N>_<KEY> sets a key of element N (from 0) \
             of the [[users]] tables in the config file, and only of those it has"
        );
    }

    #[test]
    fn insert_creates_missing_tables() {
        let mut table = Table::new();
        insert(
            &mut table,
            &path(&["sip", "trunk", "uri"]),
            Value::from("sip:x"),
        );
        assert_eq!(table["sip"]["trunk"]["uri"].as_str(), Some("sip:x"));
    }

    #[test]
    fn insert_steps_into_existing_array_elements_only() {
        let mut table: Table = "[[users]]\nname = \"a\"\n[[users]]\nname = \"b\"\n"
            .parse()
            .unwrap();
        insert(&mut table, &path(&["users", "1", "password"]), "pw".into());
        assert_eq!(table["users"][1]["password"].as_str(), Some("pw"));
        assert!(table["users"][0].get("password").is_none());
        let before = table.clone();
        insert(&mut table, &path(&["users", "2", "password"]), "pw".into());
        assert_eq!(table, before, "no element 2 to set");
    }

    fn path(segments: &[&str]) -> Vec<String> {
        segments.iter().map(|s| s.to_string()).collect()
    }
}
