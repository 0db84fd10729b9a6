//! Reading a TOML table into the typed config, one error per bad value,
//! unknown key or misshapen table, each named by its full key path.

use toml::{Table, Value};

use super::error::ConfigError;
use super::field::Field;
use super::schema::{dotted, element, Section, Visitor};

pub(super) struct Reader<'a> {
    table: &'a Table,
    /// Key path of `table`: empty at the root, `sip.trunk`, `users[1]`.
    path: String,
    /// Keys the schema visited, so the rest can be reported as unknown.
    known: Vec<&'static str>,
    errors: &'a mut Vec<ConfigError>,
}

impl<'a> Reader<'a> {
    /// Reads `table`, found at `path`, into `section`, then reports the keys it does not have.
    pub(super) fn read<S: Section>(
        section: &mut S,
        table: &'a Table,
        path: String,
        errors: &'a mut Vec<ConfigError>,
    ) {
        let mut reader = Reader {
            table,
            path,
            known: Vec::new(),
            errors,
        };
        section.visit(&mut reader);
        reader.report_unknown();
    }

    fn error(&mut self, key: &str, reason: impl std::fmt::Display) {
        let key = dotted(&self.path, key);
        let reason = reason.to_string();
        self.errors.push(ConfigError { key, reason });
    }

    fn report_unknown(self) {
        for key in self.table.keys() {
            if !self.known.contains(&key.as_str()) {
                let key = dotted(&self.path, key);
                let reason = "unknown key".to_owned();
                self.errors.push(ConfigError { key, reason });
            }
        }
    }

    /// The value of `key`, noting that the schema has it.
    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known.push(key);
        self.table.get(key)
    }
}

impl Visitor for Reader<'_> {
    fn field<T: Field>(&mut self, key: &'static str, value: &mut T) {
        let Some(raw) = self.get(key) else {
            return;
        };
        match T::from_toml(raw) {
            Ok(parsed) => *value = parsed,
            Err(reason) => self.error(key, reason),
        }
    }

    fn section<S: Section>(&mut self, key: &'static str, section: &mut S) {
        let Some(raw) = self.get(key) else {
            return;
        };
        let Some(table) = raw.as_table() else {
            let reason = format!("expected a table, got a {}", raw.type_str());
            return self.error(key, reason);
        };
        Reader::read(section, table, dotted(&self.path, key), self.errors);
    }

    fn list<S: Section + Default>(&mut self, key: &'static str, items: &mut Vec<S>) {
        let Some(raw) = self.get(key) else {
            return;
        };
        let Some(array) = raw.as_array() else {
            let reason = format!(
                "expected an array of tables ([[{key}]]), got a {}",
                raw.type_str()
            );
            return self.error(key, reason);
        };
        let path = dotted(&self.path, key);
        // A bad element still takes its place, so that later checks name the
        // same index as the file; its own error is the one reported here.
        *items = array
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                let mut item = S::default();
                match raw.as_table() {
                    Some(table) => Reader::read(&mut item, table, element(&path, i), self.errors),
                    None => {
                        let reason = format!("expected a table, got a {}", raw.type_str());
                        self.errors
                            .push(ConfigError::new(element(&path, i), reason));
                    }
                }
                item
            })
            .collect();
    }
}
